"""The core functions behind the workspace's "Daten" pages: which dataset the user may bring
data into (asked of `hub.access`), its files, the preview and proposed mapping, saving the
mapping as a pipeline definition (recorded in the audit trail), and its runs (jobs of the
queue, recorded there when they end)."""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hub.access import Viewer, require_editor_of
from hub.catalog.index import Catalog
from hub.catalog.model import Record
from hub.catalog.uploads import Uploads
from hub.config import Settings
from hub.errors import HubError, PipelineError
from hub.ingest.definitions import DefinedByFile, Definitions, Revision
from hub.ingest.pipeline import Pipeline, Source
from hub.ingest.readers import detect_format
from hub.ingest.sources import fetch
from hub.intake import mapping as mapping_
from hub.intake import runs
from hub.intake.files import Intake, Kept
from hub.intake.preview import Preview, preview, sheet_names
from hub.intake.runs import Run
from hub.schema import TableSchema, load_schema
from hub.store.versions import Store

STATES = ("active", "draft")


class UnknownDataset(HubError):
    """No dataset of this name the user may see (404: hidden ones are not told apart)."""

    http_status = 404

    def __init__(self, name: str):
        super().__init__(f"no dataset {name!r}")


@dataclass
class Workbench:
    settings: Settings
    catalog: Catalog
    uploads: Uploads

    @property
    def store(self) -> Store:
        return self.catalog.store

    @property
    def intake(self) -> Intake:
        return Intake(self.uploads, self.store.root)

    @property
    def definitions(self) -> Definitions:
        return Definitions(self.store, self.settings.pipelines_dir, self.settings.schemas_dir)

    def dataset(self, viewer: Viewer, name: str) -> Record:
        """The record of `name` if `viewer` may bring data into it: `UnknownDataset` if they
        may not see it, `Forbidden` if they may see but not edit it."""
        record = self.catalog.get(name, viewer, states=STATES)
        if record is None or record.name != name:
            raise UnknownDataset(name)
        require_editor_of(viewer, record.publisher)
        return record

    def schemas(self) -> dict[str, TableSchema]:
        """The project's table schemas by name (schemas/<name>.json|yaml)."""
        found = {}
        for path in sorted(Path(self.settings.schemas_dir).glob("*")):
            if path.suffix in (".json", ".yaml", ".yml"):
                found[path.stem] = load_schema(path)
        return found

    def look(self, files: list[Kept], remote: mapping_.Remote | None,
             sheet: str = "") -> Preview | None:
        """The preview of the first file (or of the remote source, fetched now); `sheet`:
        the sheet of a workbook to show (its first if empty)."""
        options = {"sheet": sheet} if sheet else {}
        if remote is not None:
            return self._look_remote(remote, options)
        if not files:
            return None
        first = files[0]
        if first.format != "xlsx":
            options = {}
        stat = first.path.stat()
        return _preview(str(first.path), stat.st_mtime_ns, stat.st_size, first.format,
                        self.settings, sheet if options else "")

    def sheets(self, files: list[Kept]) -> list[str]:
        """The sheets of the first file if it is a workbook (to choose another sheet when the
        first cannot be previewed)."""
        if not files or files[0].format != "xlsx":
            return []
        return sheet_names(files[0].path)

    def _look_remote(self, remote: mapping_.Remote, options: dict[str, str]) -> Preview:
        spec = remote.spec()
        kind = remote.kind
        source = Source(kind=kind, location=spec[kind], format=remote.format or None)
        with tempfile.TemporaryDirectory(prefix="hub-intake-") as scratch:
            fetched = fetch(source, Path(scratch), Path(scratch), self.settings.fetch)
            path, name = fetched.files[0]
            fmt = source.format or ("geojson" if kind in ("wfs", "oapif")
                                    else detect_format(path))
            return preview(path, fmt, name, self.settings.extent,
                           options if fmt == "xlsx" else None)

    def save(self, viewer: Viewer, record: Record, chosen: mapping_.Mapping,
             remote: mapping_.Remote | None) -> Revision:
        """The mapping as the dataset's next pipeline revision (`PipelineError` naming the
        key if the ingest's loader refuses it)."""
        if (path := self.definitions.file_of(record.name)) is not None:
            raise DefinedByFile(record.name, path)
        text = mapping_.definition(record.name, record, chosen, self.intake.files(record.name),
                                   remote)
        revision = self.definitions.save(record.name, text, viewer.user)
        return revision

    def pipeline(self, name: str) -> Pipeline | None:
        return self.definitions.load(name)

    def start_run(self, viewer: Viewer, record: Record) -> Run:
        """Queue a run of the saved definition (`PipelineError` if there is none)."""
        latest = self.definitions.latest(record.name)
        if latest is None:
            raise PipelineError("save the mapping first: there is no pipeline to run")
        self.definitions.check(record.name, latest.text)  # still valid (schemas may change)
        return runs.start(self.store, record.name, record.publisher, latest.revision,
                          viewer.user)

    def last_run(self, name: str) -> Run | None:
        return runs.last(self.store, name)


@functools.lru_cache(maxsize=16)
def _preview(path: str, mtime: int, size: int, fmt: str, settings: Settings,
             sheet: str) -> Preview:
    """A file's preview, computed once per version of the file (`mtime`, `size`) and sheet."""
    return preview(Path(path), fmt, Path(path).name, settings.extent,
                   {"sheet": sheet} if sheet else None)
