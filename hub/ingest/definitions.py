"""Pipeline definitions saved in the workspace: the YAML of `pipelines/`, kept with every
revision (who saved it, when) in the hub's database, table `pipeline_definitions`.

The newest revision of a dataset is its pipeline; `hub.ingest.pipeline.discover` lists these
beside the files of `pipelines/`. A definition is checked by the same loader as a file, as if
it were the file `uploads/workspace/<dataset>/pipeline.yaml` of the store: the dataset's
uploaded files lie in that folder, so its `path:` sources name them relative to it. A dataset
that has a file in `pipelines/` is defined there: saving a definition for it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select

from hub import audit
from hub.config import Settings
from hub.db.schema import pipeline_definitions as table
from hub.errors import Conflict, PipelineError
from hub.ingest.pipeline import Pipeline, load_pipeline, parse_pipeline
from hub.storage import mirror
from hub.store.versions import Store, now

FILE_NAME = "pipeline.yaml"
WORKSPACE = "uploads/workspace"  # the datasets' uploaded files: one folder (key) per dataset

_LATEST = select(table).where(table.c.dataset == bindparam("dataset")).order_by(
    table.c.revision.desc()).limit(1)
_HISTORY = select(table).where(table.c.dataset == bindparam("dataset")).order_by(
    table.c.revision.desc())
_NEWEST = select(table.c.dataset, func.max(table.c.revision).label("revision")).group_by(
    table.c.dataset)


def folder(store_root: Path, dataset: str) -> Path:
    """The folder of a dataset's uploaded files (and the place a saved definition is read
    as if it were a file there)."""
    return Path(store_root) / WORKSPACE / dataset


@dataclass(frozen=True)
class Revision:
    dataset: str
    revision: int
    text: str
    saved_by: str
    saved: str


def _audited(row: Any) -> dict[str, Any] | None:
    return None if row is None else {"revision": row["revision"], "text": row["text"]}


class DefinedByFile(Conflict):
    """The dataset's pipeline is a file in pipelines/: the workspace does not replace it."""

    def __init__(self, dataset: str, path: Path):
        super().__init__(f"the pipeline of {dataset!r} is the file {path.name} in the project's "
                         "pipelines/ folder; change it there")


class Definitions:
    """The saved definitions of one store, checked against the project's schemas."""

    def __init__(self, store: Store, pipelines_dir: Path, schemas_dir: Path | None):
        self.store = store
        self.pipelines_dir = Path(pipelines_dir)
        self.schemas_dir = schemas_dir

    def path(self, dataset: str) -> Path:
        return folder(self.store.root, dataset) / FILE_NAME

    def file_of(self, dataset: str) -> Path | None:
        """The file in pipelines/ that defines `dataset`, if there is one."""
        for path in sorted(self.pipelines_dir.glob("*.y*ml")):
            if path.stem == dataset:
                return path
        return None

    def check(self, dataset: str, text: str) -> Pipeline:
        """The definition as the ingest would load it; `PipelineError` naming the key."""
        if (path := self.file_of(dataset)) is not None:
            raise DefinedByFile(dataset, path)
        pipeline = parse_pipeline(text, self.path(dataset), self.schemas_dir)
        if pipeline.dataset != dataset:
            raise PipelineError(f"dataset: {pipeline.dataset!r} is not {dataset!r}, the "
                                "dataset this definition is saved for")
        return pipeline

    def save(self, dataset: str, text: str, by: str) -> Revision:
        """Check and keep the definition as the dataset's next revision; the audit trail
        records it ("pipeline.save", the previous and the new text) in the same transaction."""
        self.check(dataset, text)
        db = self.store.db
        with db.write() as conn:
            before = conn.execute(_LATEST, {"dataset": dataset}).mappings().first()
            revision = Revision(dataset, (before["revision"] if before else 0) + 1, text, by,
                                now())
            conn.execute(table.insert().values(
                dataset=dataset, revision=revision.revision, text=text, saved_by=by,
                saved=revision.saved))
            audit.record(db, actor=by, action="pipeline.save", subject=dataset,
                         before=_audited(before), after=_audited(revision.__dict__),
                         connection=conn)
        return revision

    def latest(self, dataset: str) -> Revision | None:
        rows = self.store.db.rows(_LATEST, {"dataset": dataset})
        return Revision(**rows[0]) if rows else None

    def history(self, dataset: str) -> list[Revision]:
        """Every revision, newest first."""
        return [Revision(**row) for row in self.store.db.rows(_HISTORY, {"dataset": dataset})]

    def load(self, dataset: str) -> Pipeline | None:
        """The pipeline in force for `dataset` from its newest saved revision (None if none)."""
        found = self.latest(dataset)
        return None if found is None else self._parse(found)

    def names(self) -> list[str]:
        """The datasets with a saved definition, sorted."""
        return sorted(row["dataset"] for row in self.store.db.rows(_NEWEST))

    def pipelines(self) -> list[Pipeline]:
        """The newest revision of every dataset with a saved definition, by name."""
        return [p for name in self.names() if (p := self.load(name)) is not None]

    def _parse(self, found: Revision) -> Pipeline:
        try:
            return parse_pipeline(found.text, self.path(found.dataset), self.schemas_dir)
        except PipelineError as exc:
            raise PipelineError(f"saved definition of {found.dataset!r} (revision "
                                f"{found.revision}): {exc}") from None


def fetch_uploads(store: Store, pipeline: Pipeline) -> None:
    """Before a saved definition runs: make its folder a copy of the dataset's uploaded files
    in the store's storage (with S3, another replica may have received them; see
    hub.intake.files). Nothing for a pipeline file of the project."""
    here = pipeline.path.parent
    if here.resolve() == folder(store.root, pipeline.dataset).resolve():
        mirror(store.files, f"{WORKSPACE}/{pipeline.dataset}", here)


def pipeline_of(settings: Settings, store: Store, dataset: str) -> Pipeline:
    """The pipeline of `dataset`: its file in pipelines/, else its saved definition
    (`PipelineError` if it has neither)."""
    path = Path(settings.pipelines_dir) / f"{dataset}.yaml"
    if path.exists():
        return load_pipeline(path, settings.schemas_dir)
    saved = Definitions(store, settings.pipelines_dir, settings.schemas_dir).load(dataset)
    if saved is None:
        raise PipelineError(f"no pipeline for {dataset!r}: neither {path} nor a definition "
                            "saved in the workspace")
    return saved
