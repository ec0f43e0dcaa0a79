"""Running several pipelines: inputs first, and after a dataset the derived datasets that read
it (transitively), so a new version of an input is followed by new versions of what is derived
from it — and so is a rollback, which changes the input's current version too (`derived_from`).
A derived dataset whose input failed in the same batch is not derived again: its run fails
naming the input, and its current version stays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hub.config import Settings
from hub.errors import HubError
from hub.ingest import allowances
from hub.ingest.derived import Derivation, access_for, dependents, in_order
from hub.ingest.pipeline import Pipeline, discover, load_pipeline
from hub.ingest.run import Progress, RunReport, current_user, ingest
from hub.store.versions import Store


@dataclass
class Batch:
    """The runs in order, every pipeline loaded (for the derivation rule) and what could not
    be considered."""

    runs: list[Pipeline]
    pipelines: dict[str, Pipeline]
    chosen: set[str]  # the datasets asked for (`force` applies to these only)
    warnings: list[str] = field(default_factory=list)


def everything(settings: Settings) -> Batch:
    """Every pipeline of the project and every definition saved in the workspace, in
    dependency order (any error in any of them stops it)."""
    found = discover(settings.pipelines_dir, settings.schemas_dir,
                     Store(settings.store, settings.database()))
    return Batch(found, {p.dataset: p for p in found}, {p.dataset for p in found})


def around(settings: Settings, chosen: list[Pipeline]) -> Batch:
    """The chosen pipelines and, after them, the derived pipelines that read them. The other
    pipeline files are read only to find those; one that cannot be loaded is a warning (with
    the derived pipelines that would need it), not a reason to refuse the chosen runs."""
    warnings: list[str] = []
    names = {p.dataset for p in chosen}
    others: list[Pipeline] = []
    for path in sorted(Path(settings.pipelines_dir).glob("*.y*ml")):
        if any(p.path.resolve() == path.resolve() for p in chosen):
            continue
        try:
            pipeline = load_pipeline(path, settings.schemas_dir)
        except HubError as exc:
            warnings.append(f"not checked for datasets derived from {', '.join(sorted(names))}:"
                            f" {exc}")
            continue
        if pipeline.dataset not in names:
            others.append(pipeline)
    loaded = [*chosen, *others]
    while True:  # leave out derived pipelines whose inputs could not be loaded
        known = {p.dataset for p in loaded}
        lacking = [p for p in loaded if not set(p.inputs) <= known and p not in chosen]
        if not lacking:
            break
        for p in lacking:
            warnings.append(f"{p.path}: not run: it reads "
                            f"{', '.join(sorted(set(p.inputs) - known))}, whose pipeline could "
                            "not be loaded")
        loaded = [p for p in loaded if p not in lacking]
    ordered = in_order(loaded, allowances.allowed(
        Store(settings.store, settings.database()).db))
    runs = [p for p in ordered if p.dataset in names]
    runs += dependents(names, ordered)
    position = {p.dataset: i for i, p in enumerate(ordered)}
    return Batch(sorted(runs, key=lambda p: position[p.dataset]),
                 {p.dataset: p for p in ordered}, names, warnings)


def derived_from(settings: Settings, store: Store, name: str) -> Batch:
    """The derived pipelines that read `name` (directly or through others), in order, without
    `name`'s own: the runs that follow when its current version changed without a run of its
    pipeline (`hub rollback`), the same as follow a new version (`around`)."""
    from hub.ingest.definitions import Definitions, pipeline_of

    if not ((Path(settings.pipelines_dir) / f"{name}.yaml").exists() or Definitions(
            store, settings.pipelines_dir, settings.schemas_dir).latest(name) is not None):
        return Batch([], {}, set())  # made by no pipeline, so read by none
    found = around(settings, [pipeline_of(settings, store, name)])
    return Batch([p for p in found.runs if p.dataset != name], found.pipelines, set(),
                 found.warnings)


def run(batch: Batch, store: Store, settings: Settings, force: bool = False,
        progress: Callable[[], Progress] | None = None) -> list[RunReport]:
    """Run the batch in order; a derived dataset of an input that failed here fails too."""
    derivation = Derivation(batch.pipelines, access_for(settings))
    failed: set[str] = set()
    reports = []
    for pipeline in batch.runs:
        broken = sorted(set(pipeline.inputs) & failed)
        if broken:
            report = RunReport(pipeline.dataset, status="failed", error=(
                f"input {', '.join(repr(b) for b in broken)} failed in this run, so "
                f"{pipeline.dataset!r} was not derived again; its current version (if any) "
                "stays"))
            store.log(pipeline.dataset, "failed", current_user(), report.error or "")
        else:
            report = ingest(pipeline, store, settings,
                            force=force and pipeline.dataset in batch.chosen,
                            progress=progress() if progress else None, derivation=derivation)
        if report.status == "failed":
            failed.add(pipeline.dataset)
        reports.append(report)
    return reports
