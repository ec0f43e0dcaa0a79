"""One ingest run: fetch → read → map → cast and validate → geometry → stage → commit.

`ingest` is the only way data enters the store: the CLI, the API and tests all call it.
`validate_file` runs the same scan without writing anything (a dry run).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from hub.config import Settings
from hub.errors import HubError, PipelineError, SourceError, ValidationFailed, Violation
from hub.ingest import derived, guard
from hub.ingest import geometry as geo
from hub.ingest.definitions import fetch_uploads
from hub.ingest.delimited import Batch, Numbering
from hub.ingest.derived import Derivation
from hub.ingest.pipeline import Pipeline, Source
from hub.ingest.readers import GEOMETRY, Opened, open_source, prefetched
from hub.ingest.sources import Fetched, fetch, fingerprint, source_key
from hub.problem_codes import CODES_COLUMN, dumped, failing, noted
from hub.schema import (
    Checked,
    Field,
    NumberStyle,
    Problem,
    TableSchema,
    check_columns,
    problem_rows,
)
from hub.store.geoparquet import VersionWriter, bbox_array, drop_rows, table_schema
from hub.store.versions import Draft, Store, Version, now

MAX_VIOLATIONS = 1000  # kept in the report; all of them are counted


class Progress(Protocol):
    """What a run reports while it works: its phase ("fetch", "read", "check", "commit"),
    and while reading, each file with its size (bytes or rows) and how far it got."""

    def phase(self, name: str) -> None: ...
    def start(self, name: str, total: int, unit: str) -> None: ...
    def advance(self, amount: int) -> None: ...
    def done(self) -> None: ...


class _Silent:
    def phase(self, name: str) -> None:
        pass

    def start(self, name: str, total: int, unit: str) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


@dataclass
class RunReport:
    """What a run did, for the summary table, `hub history` and the version's metadata."""

    dataset: str
    status: str = "running"  # committed | unchanged | failed | valid | invalid
    version: int | None = None
    # rows_read = rows_valid + rows_quarantined + rows_filtered + rows_outside, always
    rows_read: int = 0  # every data row of the sources
    rows_valid: int = 0
    rows_quarantined: int = 0  # rows with a problem (under on_error: reject, those refused)
    rows_filtered: int = 0  # dropped by the source's `filter` (by design, not by error)
    rows_outside: int = 0  # outside the district, skipped by `outside_extent: skip`
    repaired: int = 0
    reprojected: int = 0
    violation_count: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    error_code: str = ""  # the error as data (hub.problem_codes.FAILURES), if it has a code
    error_params: dict[str, Any] = field(default_factory=dict)
    source_crs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    started: str = field(default_factory=now)
    duration: float = 0.0

    def add(self, violation: Violation) -> None:
        self.violation_count += 1
        if len(self.violations) < MAX_VIOLATIONS:
            self.violations.append(violation)

    def as_dict(self) -> dict[str, Any]:
        keys = ("dataset", "status", "version", "rows_read", "rows_valid", "rows_quarantined",
                "rows_filtered", "rows_outside", "repaired", "reprojected", "violation_count",
                "notes", "error", "source_crs", "started", "duration")
        out = {k: getattr(self, k) for k in keys}
        out["violations"] = [str(v) for v in self.violations[:100]]
        return out


@dataclass
class _Plan:
    """How one source's columns become the schema's columns."""

    source: Source
    fields: list[Field]
    columns: dict[str, str]  # schema field -> source column
    geometry_field: Field | None
    crs: str | None
    styles: dict[str, NumberStyle] = field(default_factory=dict)  # number columns so far


class _Sink:
    """Where rows go: the version file, the quarantine file, and the unique-key ledger."""

    def __init__(self, schema: TableSchema, staging: Path | None, policy: str):
        self.schema = schema
        self.policy = policy
        self.has_geometry = schema.geometry is not None
        self.data = (VersionWriter(staging / "data.parquet",
                                   table_schema(schema.arrow_schema(), self.has_geometry),
                                   self.has_geometry) if staging else None)
        self.staging = staging
        self.quarantine: pq.ParquetWriter | None = None
        self.keys: list[pa.Table] = []
        self.files: dict[str, tuple[Numbering, dict[str, str]]] = {}  # how to name rows
        self.types: set[str] = set()
        self.bounds = np.array([np.inf, np.inf, -np.inf, -np.inf])
        self.writing = staging is not None
        self.kept = 0  # rows given to the version file so far (written or not)

    def stop_writing(self) -> None:
        self.writing = False

    def add(self, columns: dict[str, pa.Array], geoms: geo.Geometries | None,
            keep: np.ndarray, listed: np.ndarray, file: str, records: np.ndarray) -> None:
        """Write the kept rows; list the keys of the `listed` ones (kept or invalid, not
        skipped) so a duplicate is found even when its first occurrence is invalid.
        `records` are the rows' indices among the file's records."""
        if self.schema.unique_keys and listed.any():
            # a compact ledger: keys, record index, file number, place in the version file
            sel = pa.array(listed)
            key_cols = {n: columns[n].filter(sel) for k in self.schema.unique_keys for n in k}
            file_no = list(self.files).index(file)
            place = np.where(keep, self.kept + np.cumsum(keep) - 1, -1)
            self.keys.append(pa.table({**key_cols, "_rec": pa.array(records[listed]),
                                       "_file": pa.array(np.full(int(listed.sum()), file_no,
                                                                 dtype=np.int16)),
                                       "_data": pa.array(place[listed])}))
        if not keep.any():
            return
        self.kept += int(keep.sum())
        sel = pa.array(keep)
        table = pa.table({f.name: columns[f.name].filter(sel) for f in self.schema.columns})
        if geoms is not None:
            b = geoms.bounds[keep]
            table = table.append_column("geometry", geoms.wkb.filter(sel))
            table = table.append_column("bbox", bbox_array(b))
            if len(b):
                self.bounds = np.concatenate([np.fmin(self.bounds[:2], np.nanmin(b[:, :2], 0)),
                                              np.fmax(self.bounds[2:], np.nanmax(b[:, 2:], 0))])
            self.types |= geoms.types
        if self.writing and self.data is not None:
            self.data.write(table)

    def park(self, raw: dict[str, pa.Array], geometry_text: pa.Array | None, errors: list[str],
             rows: np.ndarray, file: str, text: list[str] | None = None,
             codes: list[str | None] | None = None) -> None:
        """Keep invalid rows with their errors (and unparsed text, if any) in quarantine;
        `codes`: each row's problems as data (`hub.problem_codes.dumped`)."""
        if self.policy != "quarantine" or self.staging is None or not len(rows):
            return
        cols: dict[str, pa.Array] = {
            "_file": pa.array([file] * len(rows), pa.string()),
            "_row": pa.array(rows, pa.int64()),
            "_errors": pa.array(errors, pa.string()),
            CODES_COLUMN: pa.array(codes or [None] * len(rows), pa.string()),
            "_raw": pa.array(text or [None] * len(rows), pa.string()),
        }
        for f in self.schema.columns:
            value = raw.get(f.name)
            cols[f.name] = (pc.cast(value, pa.string()) if value is not None
                            else pa.nulls(len(rows), pa.string()))
        if self.has_geometry:
            cols["_geometry"] = (geometry_text if geometry_text is not None
                                 else pa.nulls(len(rows), pa.string()))
        table = pa.table(cols)
        if self.quarantine is None:
            self.quarantine = pq.ParquetWriter(self.staging / "quarantine.parquet", table.schema,
                                               compression="zstd")
        self.quarantine.write_table(table)

    def amend(self, extra: dict[tuple[str, int], _Duplicate]) -> None:
        """Add errors found once all rows were read to rows already in the quarantine."""
        if not extra or self.quarantine is None or self.staging is None:
            return
        self.quarantine.close()
        path = self.staging / "quarantine.parquet"
        table = pq.read_table(path)
        keys = list(zip(table["_file"].to_pylist(), table["_row"].to_pylist(), strict=True))
        errors = ["; ".join([e, *(extra[k].errors if k in extra else ())]) for k, e in zip(
            keys, table["_errors"].to_pylist(), strict=True)]
        codes = [dumped([*json.loads(c or "[]"), *(extra[k].codes if k in extra else ())])
                 for k, c in zip(keys, table[CODES_COLUMN].to_pylist(), strict=True)]
        table = table.set_column(table.schema.get_field_index("_errors"), "_errors",
                                 pa.array(errors, pa.string()))
        table = table.set_column(table.schema.get_field_index(CODES_COLUMN), CODES_COLUMN,
                                 pa.array(codes, pa.string()))
        self.quarantine = pq.ParquetWriter(path, table.schema, compression="zstd")
        self.quarantine.write_table(table)

    @property
    def bbox(self) -> list[float] | None:
        return [round(float(v), 7) for v in self.bounds] if np.isfinite(self.bounds).all() \
            else None

    def close(self) -> None:
        if self.data is not None:
            self.data.close(sorted(self.types), self.bbox)
        if self.quarantine is not None:
            self.quarantine.close()


def ingest(pipeline: Pipeline, store: Store, settings: Settings, who: str | None = None,
           force: bool = False, progress: Progress | None = None,
           derivation: Derivation | None = None) -> RunReport:
    """Run a pipeline and commit a new version, or leave the store exactly as it was.
    `derivation`: the pipelines and access a derived pipeline (`sql:` source) is checked
    against (default: its folder's pipelines and the settings' catalog)."""
    report = RunReport(pipeline.dataset)
    who = who or current_user()
    clock = time.perf_counter()
    progress = progress or _Silent()
    try:
        fetch_uploads(store, pipeline)
        fetch = _fetcher(pipeline, store, settings, derivation)
        with store.writing(pipeline.dataset) as staging:
            progress.phase("fetch")
            current = store.current(pipeline.dataset)
            previous = current.source_state if current else {}
            fetched = [fetch(s, pipeline.base_dir, staging, settings.fetch,
                             previous.get(source_key(s))) for s in pipeline.sources]
            same_pipeline = not force and current is not None and not current.broken \
                and current.pipeline_hash == pipeline.digest
            if same_pipeline and all(f.not_modified or f.state == previous.get(source_key(s))
                                     for s, f in zip(pipeline.sources, fetched, strict=True)):
                return _unchanged(report, store, current.version, who, clock)
            if any(f.not_modified for f in fetched):  # some changed: need all data again
                fetched = [fetch(s, pipeline.base_dir, staging, settings.fetch)
                           if f.not_modified else f for s, f in zip(pipeline.sources, fetched,
                                                                    strict=True)]
            hashing = _Fingerprints(fetched)
            sink = _Sink(pipeline.schema, staging, pipeline.on_error)
            try:
                progress.phase("read")
                _scan(pipeline, fetched, sink, report, settings, progress)
                progress.phase("check")
                _check_unique(pipeline.schema, sink, report, staging)
                fingerprint = hashing.result()
            finally:
                hashing.stop()
                sink.close()
            if same_pipeline and fingerprint == current.source_fingerprint:
                return _unchanged(report, store, current.version, who, clock)  # touched only
            _judge(pipeline, report)
            _guard(pipeline, report, settings, current, staging, force)
            draft = Draft(
                rows=report.rows_valid, quarantined=report.rows_quarantined,
                schema=pipeline.schema.as_dict(), bbox=sink.bbox,
                geometry_types=sorted(sink.types), source_crs=report.source_crs,
                source_fingerprint=fingerprint,
                source_state={source_key(s): f.state for s, f in zip(pipeline.sources, fetched,
                                                                     strict=True)},
                pipeline_hash=pipeline.digest, started=report.started, run_by=who,
                report=report.as_dict())
            meta = {"title": pipeline.title, "organization": pipeline.organization,
                    "access": pipeline.access, "update_frequency": pipeline.update_frequency,
                    "pipeline": str(pipeline.path), "attribution": pipeline.attribution}
            progress.phase("commit")
            version = store.commit(staging, pipeline.dataset, meta, draft)
            report.status, report.version = "committed", version.version
            # under the writer lock: a rollback (which takes it too) cannot make a version
            # current while retention decides which versions are old
            store.apply_retention(pipeline.dataset, pipeline.retention or settings.retention)
    except HubError as exc:
        report.status, report.error = "failed", str(exc)
        report.error_code = getattr(exc, "failure_code", "")
        report.error_params = getattr(exc, "failure_params", {})
        _log_failure(store, pipeline.dataset, who, report)
    return _finish(report, clock)


def _fetcher(pipeline: Pipeline, store: Store, settings: Settings,
             derivation: Derivation | None) -> Callable[..., Fetched]:
    """`sources.fetch`, with queries over the store for the `sql:` sources of derived
    pipelines."""
    if not pipeline.inputs:
        return fetch
    context = derivation or Derivation.of(settings, pipeline, store)

    def fetch_any(source: Source, base: Path, staging: Path, fetch_settings: Any,
                  previous: dict[str, Any] | None = None) -> Fetched:
        if source.kind == "sql":
            return derived.fetch(source, pipeline, store, staging, context, previous)
        return fetch(source, base, staging, fetch_settings, previous)

    return fetch_any


def _unchanged(report: RunReport, store: Store, version: int, who: str,
               clock: float) -> RunReport:
    report.status, report.version = "unchanged", version
    report.notes.append(f"sources and pipeline unchanged since version {version}; "
                        "no new version")
    store.log(report.dataset, "unchanged", who, version=version)
    return _finish(report, clock)


class _Fingerprints:
    """Content hashes of the fetched files, computed in a thread while they are read."""

    def __init__(self, fetched: list[Fetched]):
        self._fetched, self._stop = fetched, threading.Event()
        self._result: list[str] = []
        self._thread = threading.Thread(target=self._run, name="fingerprint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._result = [f.fingerprint or fingerprint(f.files, self._stop) for f in self._fetched]

    def result(self) -> str:
        self._thread.join()
        return "+".join(self._result)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _log_failure(store: Store, dataset: str, who: str, report: RunReport) -> None:
    with contextlib.suppress(Exception):  # the run's own error matters more than the log
        store.log(dataset, "failed", who, report.error or "")


def validate_file(pipeline: Pipeline, settings: Settings,
                  progress: Progress | None = None) -> RunReport:
    """Dry run: read and check every row of a pipeline's sources, write nothing."""
    report = RunReport(pipeline.dataset)
    clock = time.perf_counter()
    try:
        fetch_any = _fetcher(pipeline, Store(settings.store, settings.database()), settings, None)
        with tempfile.TemporaryDirectory(prefix="hub-validate-") as scratch:
            fetched = [fetch_any(s, pipeline.base_dir, Path(scratch), settings.fetch)
                       for s in pipeline.sources]
            sink = _Sink(pipeline.schema, None, pipeline.on_error)
            _scan(pipeline, fetched, sink, report, settings, progress or _Silent())
            _check_unique(pipeline.schema, sink, report, None)
        report.status = "valid" if report.violation_count == 0 else "invalid"
    except HubError as exc:
        report.status, report.error = "failed", str(exc)
    return _finish(report, clock)


def _finish(report: RunReport, clock: float) -> RunReport:
    report.duration = round(time.perf_counter() - clock, 3)
    return report


def current_user() -> str:
    """The login name recorded as `run_by` ("unknown" when the system has none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _judge(pipeline: Pipeline, report: RunReport) -> None:
    if report.rows_read == 0:
        raise failing(SourceError(f"{', '.join(report.files)}: no data rows (only a header, "
                                  "or nothing at all)"), "no-rows", files=report.files)
    if report.rows_read == report.rows_filtered:
        raise failing(SourceError(f"{', '.join(report.files)}: the source's `filter` keeps "
                                  f"none of its {report.rows_read:,} rows"),
                      "filter-keeps-none", files=report.files, rows=report.rows_read)
    if report.violation_count and pipeline.on_error == "reject":
        shown = "\n".join(f"  {v}" for v in report.violations[:20])
        more = report.violation_count - min(20, len(report.violations))
        raise failing(ValidationFailed(
            f"{report.violation_count} violation(s) of schema {pipeline.schema.name!r}; "
            f"nothing was written (on_error: reject)\n{shown}"
            + (f"\n  … and {more} more" if more > 0 else "")), "rejected",
            count=report.violation_count)
    if report.rows_valid == 0:
        skipped = report.rows_filtered + report.rows_outside
        raise failing(ValidationFailed(
            f"no valid rows: of {report.rows_read:,} rows read, {report.rows_quarantined:,} "
            f"break the schema and {skipped:,} were skipped "
            "(filter, outside_extent: skip); the previous version stays current"),
            "no-valid-rows", read=report.rows_read, quarantined=report.rows_quarantined,
            skipped=skipped)


def _guard(pipeline: Pipeline, report: RunReport, settings: Settings,
           current: Version | None, staging: Path, force: bool) -> None:
    """Refuse a near-empty version (see `hub.ingest.guard`); `force` records it and goes on."""
    outcome = guard.Outcome(report.rows_read - report.rows_filtered, report.rows_valid,
                            report.rows_quarantined,
                            report.rows_outside, current.rows if current else None,
                            current.version if current else None)
    try:
        guard.check(outcome, settings.guard.merged(pipeline.guard), set(pipeline.guard),
                    pipeline.path, settings.extent, settings.district,
                    staging / "quarantine.parquet")
    except guard.GuardFailed as exc:
        if not force:
            raise
        report.notes.append("committed with --force although " + "; ".join(exc.reasons))


def _scan(pipeline: Pipeline, fetched: list[Fetched], sink: _Sink, report: RunReport,
          settings: Settings, progress: Progress) -> None:
    for source, got in zip(pipeline.sources, fetched, strict=True):
        for path, name in got.files:
            plan, opened = _open(pipeline, source, path, name)
            report.files.append(name)
            if plan.crs and plan.crs not in report.source_crs:
                report.source_crs.append(plan.crs)
            unit = "bytes" if opened.format in ("csv", "gtfs") else "rows"
            progress.start(f"{pipeline.dataset}: {name}", opened.size, unit)
            by_bytes = progress.advance if unit == "bytes" else None
            try:
                for batch in _batches(opened, plan, report, sink, by_bytes):
                    _process(batch, plan, opened, pipeline, sink, report, settings)
                    if by_bytes is None:
                        progress.advance(batch.length)
            finally:
                progress.done()


def _batches(opened: Opened, plan: _Plan, report: RunReport, sink: _Sink,
             on_bytes: Any) -> Iterator[Batch]:
    wanted = sorted({*plan.columns.values(), *plan.source.geometry.values(),
                     *plan.source.filter, *([GEOMETRY] if opened.has_geometry else [])})
    malformed: list[tuple[int, str]] = []
    for batch in prefetched(opened.stream(wanted, on_bytes, malformed)):
        sink.files.setdefault(opened.name, (batch.numbering, plan.columns))
        yield batch
    for number, text in malformed:  # rows with too many or too few fields
        report.rows_read += 1
        v = Violation(opened.name, number, "", text[:200], "row-structure",
                      "the row has a different number of fields than the header",
                      "row-structure")
        report.add(v)
        report.rows_quarantined += 1
        sink.park({}, None, [f"{v.message} [{v.rule}]"], np.array([number]), opened.name,
                  [text], [dumped([noted("", "row-structure", {}, None)])])


def _open(pipeline: Pipeline, source: Source, path: Path, name: str) -> tuple[_Plan, Opened]:
    schema = pipeline.schema
    wanted = set(source.mapping.values()) | set(source.geometry.values())
    reader_options = {k: v for k, v in source.options.items() if k != "swapped_axes"}
    opened = open_source(path, source.format, reader_options, name, wanted or None)
    available = set(opened.columns)
    columns: dict[str, str] = {}
    for f in schema.columns:
        if f.name in source.constants:
            continue
        column = source.mapping.get(f.name, f.name)
        if column in available:
            columns[f.name] = column
        elif f.name in source.mapping or f.required:
            raise failing(SourceError(
                f"{name}: the header has no column {column!r}"
                + (f" (needed for the required field {f.name!r})" if f.required else "")
                + f"; it has: {', '.join(opened.columns[:30])}"), "no-column", file=name,
                column=column, field=f.name if f.required else None)
    for column in [*source.geometry.values(), *source.filter]:
        if column not in available:
            raise failing(SourceError(f"{name}: the header has no column {column!r}; it has: "
                                      f"{', '.join(opened.columns[:30])}"), "no-column",
                          file=name, column=column)
    fields = []
    for f in schema.columns:  # a `decimal` reader option is a setting; a sniffed mark is not
        if f.type == "number" and "decimal" in source.options \
                and "decimalChar" not in source.casts.get(f.name, {}):
            f = replace(f, decimalChar=source.options["decimal"])
        fields.append(f.with_options(source.casts[f.name]) if f.name in source.casts else f)
    geometry = source.geometry
    if opened.format == "gtfs" and not geometry:
        geometry = {"lon": "stop_lon", "lat": "stop_lat"}
        source = replace(source, geometry=geometry, crs=source.crs or "EPSG:4326")
    crs = source.crs or (opened.crs if opened.has_geometry else None)
    gfield = schema.geometry
    if gfield is not None:
        if not geometry and not opened.has_geometry:
            raise failing(PipelineError(
                f"{name}: schema {schema.name!r} has a geometry but the source has none; set "
                "geometry: {lon, lat} or {wkt} in the pipeline"), "no-geometry", file=name)
        if crs is None:
            hint = (".prj file missing?" if opened.format == "shapefile"
                    else "the file declares none")
            raise failing(SourceError(f"{name}: unknown coordinate reference system ({hint}); "
                                      "set `crs:` in the pipeline, e.g. crs: EPSG:25833"),
                          "unknown-crs", file=name)
        crs = geo.crs_name(geo.parse_crs(crs))
    return _Plan(source, fields, columns, gfield, crs), opened


def _process(batch: Batch, plan: _Plan, opened: Opened, pipeline: Pipeline, sink: _Sink,
             report: RunReport, settings: Settings) -> None:
    """Check one batch; every row ends valid, quarantined (with all its problems) or skipped."""
    n, source = batch.length, plan.source
    report.rows_read += n
    pos = np.arange(n)  # positions in the batch of the rows still in play
    if source.filter:
        keep = np.ones(n, dtype=bool)
        for column, values in source.filter.items():
            col = batch.columns[column]
            wanted = pa.array([str(v) for v in values]).cast(col.type) \
                if pa.types.is_string(col.type) else pa.array(values).cast(col.type)
            keep &= np.asarray(pc.fill_null(pc.is_in(col, value_set=wanted), False))
        report.rows_filtered += int(n - keep.sum())
        sel = pa.array(keep)
        batch.columns = {k: v.filter(sel) for k, v in batch.columns.items()}
        pos, n = pos[keep], int(keep.sum())
        if n == 0:
            return
    raw = {f: batch.columns[c] for f, c in plan.columns.items()}
    for f, value in source.constants.items():
        raw[f] = pa.array([None if value is None else str(value)] * n, pa.string())
    checked: Checked = check_columns(raw, plan.fields, pipeline.schema.missing_values, n,
                                     plan.styles)
    problems = list(checked.problems)
    geoms, geometry_text = None, None
    if plan.geometry_field is not None:
        geoms, geometry_text, gproblems = _geometry(batch, plan, opened, settings, n)
        problems += gproblems
        report.repaired += geoms.repaired
        report.reprojected += geoms.reprojected
    skipped = np.zeros(n, dtype=bool)
    outside_policy = source.outside_extent or pipeline.outside_extent
    if geoms is not None and geoms.outside is not None and outside_policy == "error":
        idx = np.flatnonzero(geoms.outside)  # also for rows with other problems
        if idx.size:
            problems.append(Problem(plan.geometry_field.name, "extent",
                                    "the location is outside the district", idx,
                                    geometry_text.take(idx)))
    invalid = problem_rows(n, problems)
    if geoms is not None and geoms.outside is not None and outside_policy == "skip":
        skipped = geoms.outside & ~invalid  # an invalid row is quarantined with its problems
        report.rows_outside += int(skipped.sum())
    bad_rows = np.flatnonzero(invalid)
    if bad_rows.size:
        _report_problems(problems, batch, pos, plan, opened.name, report)
        if pipeline.on_error == "reject":
            sink.stop_writing()
        report.rows_quarantined += int(bad_rows.size)
        messages, codes = _row_messages(problems, n)
        take = pa.array(bad_rows)
        sink.park({k: v.take(take) for k, v in raw.items()},
                  None if geometry_text is None else geometry_text.take(take),
                  [messages[i] for i in bad_rows], batch.rows(pos[bad_rows]), opened.name,
                  codes=[dumped(codes[i]) for i in bad_rows])
    keep = ~invalid & ~skipped
    report.rows_valid += int(keep.sum())
    sink.add(checked.columns, geoms, keep, ~skipped, opened.name, batch.first + pos)


def _report_problems(problems: list[Problem], batch: Batch, pos: np.ndarray, plan: _Plan,
                     file: str, report: RunReport) -> None:
    """Count every problem; keep the first MAX_VIOLATIONS as violations with row numbers."""
    for p in problems:
        shown = p.rows[: max(0, MAX_VIOLATIONS - len(report.violations))]
        numbers = batch.rows(pos[shown]) if shown.size else shown
        for i, number in enumerate(numbers.tolist()):
            value = p.values[i].as_py() if i < len(p.values) else None
            report.violations.append(Violation(
                file, number, _source_column(plan, p.column),
                None if value is None else str(value), p.rule, p.message, p.code, p.params))
        report.violation_count += len(p.rows)


def _source_column(plan: _Plan, field_name: str) -> str:
    if field_name == "geometry" or (plan.geometry_field and field_name == plan.geometry_field.name):
        g = plan.source.geometry
        return "/".join(g.values()) if g else field_name
    return plan.columns.get(field_name, field_name)


def _row_messages(problems: list[Problem],
                  n: int) -> tuple[list[str], list[list[dict[str, Any]]]]:
    """Each row's problems: in English (`_errors`) and as codes (`_codes`)."""
    messages: list[list[str]] = [[] for _ in range(n)]
    codes: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for p in problems:
        values = p.values.to_pylist()
        for i, r in enumerate(p.rows.tolist()):
            messages[r].append(f"{p.column}: {p.message} [{p.rule}]")
            codes[r].append(noted(p.column, p.code, p.params,
                                  values[i] if i < len(values) else None))
    return ["; ".join(m) for m in messages], codes


def _geometry(batch: Any, plan: _Plan, opened: Opened, settings: Settings,
              n: int) -> tuple[geo.Geometries, pa.Array, list[Problem]]:
    source, gfield = plan.source, plan.geometry_field
    assert gfield is not None and plan.crs is not None
    problems: list[Problem] = []
    swapped = str(source.options.get("swapped_axes", "error"))
    if "lon" in source.geometry:
        lon_col, lat_col = source.geometry["lon"], source.geometry["lat"]
        number = Field(gfield.name, "number", decimalChar=opened.decimal)
        coords = []
        for column in (lon_col, lat_col):
            checked = check_columns({gfield.name: batch.columns[column]}, [number], ("",), n)
            for p in checked.problems:
                problems.append(Problem(
                    gfield.name, "type.coordinate", f"coordinate {column!r} is not a number "
                    f"(expected one with the decimal mark {opened.decimal!r}, like "
                    f"51{opened.decimal}62; if the file uses another, set options: "
                    "{decimal: MARK} in the pipeline)", p.rows, p.values,
                    {"column": column, "decimal": opened.decimal}))
            coords.append(np.asarray(pc.fill_null(checked.columns[gfield.name], np.nan)))
        text = _CoordinateText(batch.columns[lon_col], batch.columns[lat_col])
        missing = np.flatnonzero((np.isnan(coords[0]) | np.isnan(coords[1]))
                                 & ~problem_rows(n, problems))
        if missing.size and gfield.required:
            problems.append(Problem(gfield.name, "required.coordinates",
                                    "coordinates are missing", missing, text.take(missing)))
        result = geo.from_points(coords[0], coords[1], text, plan.crs, settings.extent, swapped)
    else:
        if "wkt" in source.geometry:
            values = batch.columns[source.geometry["wkt"]]
            shapes, bad = geo.parse(values, "wkt")
            text = pc.cast(values, pa.string())
            code, rule_msg = "geometry.wkt", "not valid WKT"
        else:
            values = batch.columns[GEOMETRY]
            shapes, bad = geo.parse(values, "wkb")
            text = pa.array([None if s is None else s.wkt[:200] for s in shapes], pa.string())
            code, rule_msg = "geometry.wkb", "unreadable geometry"
        if bad.size:
            problems.append(Problem(gfield.name, code, rule_msg, bad, text.take(bad)))
        missing = np.flatnonzero(shapely.is_missing(shapes) & ~problem_rows(n, problems))
        if missing.size and gfield.required:
            problems.append(Problem(gfield.name, "required.geometry", "the geometry is missing",
                                    missing, text.take(missing)))
        result = geo.from_shapes(shapes, text, plan.crs, settings.extent, gfield.geometryTypes)
    problems += result.problems
    return result, text, problems



class _CoordinateText:
    """"x y" text of coordinate cells, built only for the rows a message or quarantine needs."""

    def __init__(self, x: pa.Array, y: pa.Array):
        self.x, self.y = x, y

    def take(self, rows: Any) -> pa.Array:
        return pc.binary_join_element_wise(pc.cast(self.x.take(rows), pa.string()),
                                           pc.cast(self.y.take(rows), pa.string()), " ")


def _check_unique(schema: TableSchema, sink: _Sink, report: RunReport,
                  staging: Path | None) -> None:
    """`unique` and `primaryKey` over all rows: later duplicates are violations.

    The ledger holds every row that is not skipped, valid or not, so a duplicate of an invalid
    row is reported too. A duplicate that was valid moves to the quarantine (counted the same
    with or without a staging folder, so a dry run counts what an ingest does); one that was
    already quarantined gets the duplicate added to its errors.
    A distinct count settles the usual case (no duplicates) in one hash pass; only when it
    finds some does a DuckDB query name every duplicate and its first occurrence.
    """
    if not sink.keys:
        return
    table = pa.concat_tables(sink.keys)
    sink.keys.clear()
    suspects = [key for key in schema.unique_keys if _has_duplicates(table, key)]
    if not suspects:
        return
    import duckdb  # only when there are duplicates to name

    table = table.append_column("_pos", pa.array(np.arange(table.num_rows)))
    names = list(sink.files)
    duplicates: dict[int, _Duplicate] = {}  # ledger position -> the row and its messages
    con = duckdb.connect()
    try:
        con.register("k", table)
        for key in suspects:
            cols = ", ".join(f'"{c}"' for c in key)
            not_null = " AND ".join(f'"{c}" IS NOT NULL' for c in key)
            found = con.execute(
                f"SELECT _pos, _rec, _file, _data, concat_ws(', ', {cols}) AS v, "
                f"first(_rec) OVER (PARTITION BY {cols} ORDER BY _pos) AS first_rec, "
                f"first(_file) OVER (PARTITION BY {cols} ORDER BY _pos) AS first_file "
                f"FROM k WHERE {not_null} "
                f"QUALIFY row_number() OVER (PARTITION BY {cols} ORDER BY _pos) > 1 "
                "ORDER BY _pos").to_arrow_table()
            rows = _row_numbers(sink, found.column("_file"), found.column("_rec"))
            firsts = _row_numbers(sink, found.column("first_file"), found.column("first_rec"))
            for pos, data, file_no, row, value, first_no, first in zip(
                    found.column("_pos").to_pylist(), found.column("_data").to_pylist(),
                    found.column("_file").to_pylist(), rows.tolist(),
                    found.column("v").to_pylist(), found.column("first_file").to_pylist(),
                    firsts.tolist(), strict=True):
                file = names[file_no]
                label = "+".join(sink.files[file][1].get(c, c) for c in key)
                where = f"row {first}" + ("" if first_no == file_no else f" of {names[first_no]}")
                params = {"first_row": first,
                          "first_file": None if first_no == file_no else names[first_no]}
                report.add(Violation(file, row, label, value, "unique", f"duplicate of {where}",
                                     "unique", params))
                entry = duplicates.setdefault(pos, _Duplicate(file, row, data))
                entry.errors.append(f"{label}: duplicate of {where} [unique]")
                entry.codes.append(noted(label, "unique", params, value))
    finally:
        con.close()
    moved = [d for _, d in sorted(duplicates.items()) if d.data >= 0]
    report.rows_valid -= len(moved)
    report.rows_quarantined += len(moved)
    if sink.policy == "quarantine" and staging is not None and sink.data is not None:
        sink.data.close(sorted(sink.types), sink.bbox)
        sink.data = None
        sink.amend({(d.file, d.row): d for d in duplicates.values() if d.data < 0})
        if moved:
            _quarantine_duplicates(staging, moved, sink)


@dataclass
class _Duplicate:
    """A row whose key repeats an earlier row's: where it is and what the run says about it."""

    file: str
    row: int
    data: int  # its place in the version file, or -1 if the row was invalid anyway
    errors: list[str] = field(default_factory=list)
    codes: list[dict[str, Any]] = field(default_factory=list)  # the same as data


def _has_duplicates(table: pa.Table, key: tuple[str, ...]) -> bool:
    """Whether two rows share a (complete) key; rows with an empty key part never clash."""
    if len(key) == 1:
        column = table.column(key[0]).drop_null()
        return len(pc.unique(column)) != len(column)
    complete = table.select(list(key)).drop_null()
    return complete.group_by(list(key)).aggregate([]).num_rows != complete.num_rows


def _row_numbers(sink: _Sink, files: pa.ChunkedArray, records: pa.ChunkedArray) -> np.ndarray:
    """Ledger entries (file number, record index) → row numbers in their source files."""
    file_nos = files.to_numpy()
    recs = records.to_numpy()
    out = np.empty(len(recs), dtype=np.int64)
    for file_no, (numbering, _) in enumerate(sink.files.values()):
        mask = file_nos == file_no
        if mask.any():
            out[mask] = numbering(recs[mask])
    return out


def _quarantine_duplicates(staging: Path, moved: list[_Duplicate], sink: _Sink) -> None:
    """Move later duplicates from the staged file into the quarantine."""
    data = staging / "data.parquet"
    drop = np.array([d.data for d in moved], dtype=np.int64)
    dup_rows = pq.read_table(data, columns=[f.name for f in sink.schema.columns]).take(
        pa.array(drop))
    cols = {f.name: dup_rows.column(f.name).combine_chunks() for f in sink.schema.columns}
    files = np.array([d.file for d in moved], dtype=object)
    for file in dict.fromkeys(files.tolist()):
        mine = pa.array(files == file)
        sink.park({k: v.filter(mine) for k, v in cols.items()}, None,
                  ["; ".join(d.errors) for d in moved if d.file == file],
                  np.array([d.row for d in moved if d.file == file]), file,
                  codes=[dumped(d.codes) for d in moved if d.file == file])
    drop_rows(data, drop)
