"""Job kind "ingest": run a dataset's pipeline through the core (hub.ingest.run.ingest), as
`hub ingest NAME` does, with its progress written to the job.

Parameters: {"dataset": NAME} runs pipelines/NAME.yaml of the project, or else the definition
saved in the workspace (hub.ingest.definitions); the result holds the run's problems by file,
row, column, value and rule (`problems`, at most 1000); "force": true makes a
new version even if nothing changed. The datasets derived from it are queued as jobs of their
own after it committed (each dataset has one writer at a time; see hub.jobs.queue).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hub.errors import HubError
from hub.jobs.kinds import Context, ReportProgress, kind

# The share of the job each phase of a run takes (reading the files is most of the work).
PHASES = {"fetch": (0.0, 0.05, "Quelle wird abgerufen"),
          "read": (0.05, 0.9, "Daten werden gelesen"),
          "check": (0.9, 0.95, "Daten werden geprüft"),
          "commit": (0.95, 1.0, "Neue Version wird gespeichert")}


class RunFailed(HubError):
    """The pipeline ran and failed (the store is as it was): the job fails with its report."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


class JobProgress:
    """hub.ingest.run's progress hook, reported as one fraction and a German message."""

    def __init__(self, report: ReportProgress, dataset: str):
        self.report, self.dataset = report, dataset
        self.low, self.high, self.label = 0.0, 0.05, ""
        self.total, self.done_amount, self.unit, self.file = 0, 0, "rows", ""

    def phase(self, name: str) -> None:
        self.low, self.high, self.label = PHASES[name]
        self.report(self.low, self.label)

    def start(self, name: str, total: int, unit: str) -> None:
        self.file = name.split(": ", 1)[-1]
        self.total, self.done_amount, self.unit = total, 0, unit
        self.advance(0)

    def advance(self, amount: int) -> None:
        self.done_amount += amount
        share = min(self.done_amount / self.total, 1.0) if self.total else 0.0
        if self.unit == "bytes":
            amount_text = f"{self.done_amount / 1e6:.1f} von {self.total / 1e6:.1f} MB"
        else:
            amount_text = f"{self.done_amount:,} Zeilen".replace(",", ".")
        self.report(self.low + (self.high - self.low) * share,
                    f"{self.label}: {self.file} ({amount_text})")

    def done(self) -> None:
        self.report(self.high, self.label)


@kind("ingest")
def run_pipeline(params: dict[str, Any], progress: ReportProgress,
                 context: Context) -> dict[str, Any]:
    from hub.ingest import batch
    from hub.ingest.definitions import pipeline_of
    from hub.ingest.run import ingest
    from hub.jobs.queue import submit

    name = params.get("dataset")
    if not isinstance(name, str) or not name:
        raise RunFailed("an ingest job needs the parameter 'dataset'", {})
    settings, store, job = context.settings, context.store, context.job
    pipeline = pipeline_of(settings, store, name)
    report = ingest(pipeline, store, settings, who=job.submitted_by,
                    force=bool(params.get("force")), progress=JobProgress(progress, name))
    result = report.as_dict()
    result["problems"] = [dataclasses.asdict(v) for v in report.violations]
    if report.error_code:  # for the workspace, which says it in its languages
        result["error_code"], result["error_params"] = report.error_code, report.error_params
    if report.status == "failed":
        raise RunFailed(report.error or "the run failed", result)
    if report.status == "committed":
        derived = batch.around(settings, [pipeline]).runs
        result["derived_jobs"] = [
            submit(store.db, "ingest", {"dataset": p.dataset}, by=job.submitted_by,
                   organization=p.organization) for p in derived if p.dataset != name]
    return result
