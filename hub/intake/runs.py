"""Runs of a saved pipeline definition started in the workspace, and their validation reports.

A run goes through `hub.ingest.run.ingest`, the one way data enters the store; what it found
is kept in the table `pipeline_runs`: the counts, the error, and the problems by file, row,
column, value and rule (the first `KEPT_PROBLEMS`; all are counted). The rows a committed run
quarantined are in its version's quarantine file (`quarantined_csv` gives them as CSV).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import bindparam, select

from hub.config import Settings
from hub.db.schema import pipeline_runs as table
from hub.errors import HubError, Violation
from hub.ingest.pipeline import Pipeline
from hub.ingest.run import RunReport, ingest
from hub.store.versions import Store, now

KEPT_PROBLEMS = 1000
Report = Callable[[float, str], None]  # progress: fraction 0–1 and what is being done

_LAST = select(table).where(table.c.dataset == bindparam("dataset")).order_by(
    table.c.started.desc()).limit(1)
_ONE = select(table).where(table.c.id == bindparam("id"))


@dataclass
class Run:
    id: str
    dataset: str
    revision: int
    run_by: str
    started: str
    status: str  # running | committed | unchanged | failed
    finished: str | None = None
    version: int | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[dict[str, Any]]:
        return list(self.report.get("problems", []))

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> Run:
        return cls(**{**row, "report": json.loads(row["report"] or "{}")})


class Runs:
    """The workspace's runs of one store."""

    def __init__(self, store: Store):
        self.store = store

    def start(self, dataset: str, revision: int, by: str) -> Run:
        run = Run(uuid.uuid4().hex, dataset, revision, by, now(), "running")
        with self.store.db.write() as conn:
            conn.execute(table.insert().values(
                id=run.id, dataset=dataset, revision=revision, run_by=by, started=run.started,
                status=run.status, report="{}"))
        return run

    def finish(self, run: Run, report: RunReport) -> Run:
        run.status, run.version, run.finished = report.status, report.version, now()
        run.report = summary(report)
        with self.store.db.write() as conn:
            conn.execute(table.update().where(table.c.id == run.id).values(
                status=run.status, version=run.version, finished=run.finished,
                report=json.dumps(run.report, ensure_ascii=False)))
        return run

    def get(self, run_id: str) -> Run | None:
        rows = self.store.db.rows(_ONE, {"id": run_id})
        return Run.of_row(rows[0]) if rows else None

    def last(self, dataset: str) -> Run | None:
        rows = self.store.db.rows(_LAST, {"dataset": dataset})
        return Run.of_row(rows[0]) if rows else None


def summary(report: RunReport) -> dict[str, Any]:
    """What the validation report page shows of a run."""
    keys = ("rows_read", "rows_valid", "rows_quarantined", "rows_filtered", "rows_outside",
            "repaired", "reprojected", "violation_count", "notes", "error", "duration")
    return {**{k: getattr(report, k) for k in keys},
            "problems": [_problem(v) for v in report.violations[:KEPT_PROBLEMS]]}


def _problem(v: Violation) -> dict[str, Any]:
    return {"file": v.file, "row": v.row, "column": v.column, "value": v.value,
            "rule": v.rule, "message": v.message}


class _Progress:
    """The ingest's progress (`hub.ingest.run.Progress`) as a fraction of the rows read."""

    def __init__(self, report: Report):
        self.report = report
        self.total = self.read = 0
        self.name = ""

    def start(self, name: str, total: int, unit: str) -> None:
        self.name, self.total, self.read = name, total, 0
        self.report(0.0, f"{name}: reading")

    def advance(self, amount: int) -> None:
        self.read += amount
        if self.total:
            self.report(min(self.read / self.total, 0.99), f"{self.name}: {self.read:,} read")

    def done(self) -> None:
        self.report(0.99, f"{self.name}: checked")


def execute(pipeline: Pipeline, store: Store, settings: Settings, run: Run,
            progress: Report | None = None) -> Run:
    """Run the pipeline (a new version, or the store left as it was) and keep its report."""
    report = progress or (lambda fraction, message: None)
    try:
        result = ingest(pipeline, store, settings, who=run.run_by, progress=_Progress(report))
    except HubError as exc:  # ingest reports its own errors; this is a last resort
        result = RunReport(pipeline.dataset, status="failed", error=str(exc))
    report(1.0, result.status)
    return Runs(store).finish(run, result)


def quarantined_csv(store: Store, run: Run) -> Iterator[bytes] | None:
    """The rows the run's version quarantined, as CSV (with their problems in `_errors`);
    None if the run made no version or quarantined nothing."""
    if run.version is None:
        return None
    path = store.version(run.dataset, run.version).quarantine_file
    if not path.exists():
        return None
    return _csv(pq.ParquetFile(path))


def _csv(source: pq.ParquetFile) -> Iterator[bytes]:
    names = [n for n in source.schema_arrow.names if n != "geometry"]
    yield b"\xef\xbb\xbf"  # so spreadsheet programs read it as UTF-8
    header = True
    for batch in source.iter_batches(batch_size=10_000, columns=names):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(batch, sink, write_options=pacsv.WriteOptions(include_header=header))
        header = False
        yield sink.getvalue().to_pybytes()


def problems_csv(run: Run) -> bytes:
    """The run's problems (the first KEPT_PROBLEMS) as CSV."""
    rows = run.problems
    columns = ("file", "row", "column", "value", "rule", "message")
    table_ = pa.table({c: pa.array([str(r.get(c) if r.get(c) is not None else "")
                                     for r in rows], pa.string()) for c in columns})
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table_, sink)
    return b"\xef\xbb\xbf" + sink.getvalue().to_pybytes()


class Runner:
    """Runs in one background thread of the server (off the event loop, one after the
    other); their progress is kept in memory while they run."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="intake-run")
        self._progress: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def submit(self, run_id: str, work: Callable[[Report], Run]) -> None:
        self._note(run_id, 0.0, "queued")

        def report(fraction: float, message: str) -> None:
            self._note(run_id, fraction, message)

        def task() -> None:
            try:
                work(report)
            finally:
                with self._lock:
                    self._progress.pop(run_id, None)

        self._pool.submit(task)

    def _note(self, run_id: str, fraction: float, message: str) -> None:
        with self._lock:
            self._progress[run_id] = (fraction, message)

    def state(self, run_id: str) -> tuple[float, str] | None:
        with self._lock:
            return self._progress.get(run_id)
