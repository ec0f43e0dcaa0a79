"""Files built once per version and format: GeoPackage, FlatGeobuf, GeoParquet, and the
gzipped GeoJSON and CSV (per dialect) that clients accepting gzip get (`packed_name`).

They live next to the version they come from, `data/<ds>/v<N>/exports/<ds>-v<N>.<terms>.r<REV>
.<ext>`, so retention removes them with their version. A file is written under a temporary
name in the same folder, fsynced and renamed into place: a reader (in this process or another)
sees the whole file or none. Within a process, concurrent first requests for the same file wait
for one build; across processes, each may build and the last rename wins (identical content).

Each file's SHA-256 is written beside it (`<file>.sha256`) before the file is renamed into
place. A process checks a file against it the first time it serves the file, `hub check` checks
them all; a damaged file (or one without a checksum) is deleted and built again on next use.
A builder holds an flock on `.tmp-<id>.lock` while it writes `.tmp-<id>-<file>`: temporary files
whose lock is free belong to a builder that died (a server killed mid-build) and are removed when
the folder is next built into, and by `hub check`, once older than a grace period.

With S3 storage (hub.storage) the folder above is each replica's local copy, served from disk
with HTTP ranges: a file built by one replica is put beside its version in the storage
(`data/<ds>/v<N>/exports/…`, the checksum first), and another replica fetches it from there
instead of building it again. Retention deletes both.

GDAL (through pyogrio) writes GeoPackage and FlatGeobuf from a stream of Arrow batches, so
memory does not grow with the layer. The GeoParquet export is the stored file rewritten batch
by batch with the licence terms added to its key/value metadata.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hub.api.downloads import csv_text, geojson
from hub.api.downloads.columns import Source
from hub.api.downloads.formats import REVISION, Terms
from hub.api.downloads.http import gzipped
from hub.store import faults
from hub.store.geoparquet import GEOMETRY_COLUMN, ROW_GROUP_ROWS
from hub.store.integrity import sha256
from hub.store.versions import Version, fsync

EXPORTS = "exports"
CRS84 = "OGC:CRS84"
CHECKSUM = ".sha256"  # suffix of the file beside an export that holds its SHA-256
TMP = ".tmp-"
GRACE_SECONDS = 5.0  # a temporary file this fresh may belong to a builder taking its lock


def export_path(version: Version, ext: str, terms: Terms) -> Path:
    return (version.path / EXPORTS /
            f"{version.dataset}-v{version.version}.{terms.digest}.r{REVISION}.{ext}")


class Exports:
    """Builds export files on first use and hands out their paths."""

    def __init__(self) -> None:
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()
        self._sound: set[Path] = set()  # checked against their checksum by this process

    def file(self, version: Version, ext: str, terms: Terms) -> Path:
        target = export_path(version, ext, terms)
        if target in self._sound and target.exists():  # retention may have removed it
            return target
        with self._guard:
            lock = self._locks.setdefault(target, threading.Lock())
        with lock:
            if target not in self._sound or not target.exists():
                if damage(target) is not None:  # missing, or not what was written
                    discard(target)
                    if not _fetched(version, target):
                        _build(version, ext, terms, target)
                        _share(version, target)
                self._sound.add(target)
        with self._guard:
            self._locks.pop(target, None)
        return target


def _key(version: Version, path: Path) -> str:
    return f"{version.key}/{path.relative_to(version.path).as_posix()}"


def _fetched(version: Version, target: Path) -> bool:
    """Whether another replica's build of the file was copied from the storage (and is
    sound); on local storage the file is the one just found missing, so never."""
    files = version.files
    if files is None:
        return False
    digest = target.with_name(target.name + CHECKSUM)
    if not (files.fetch(_key(version, digest), digest) and files.fetch(_key(version, target),
                                                                          target)):
        return False
    if damage(target) is None:
        return True
    discard(target)
    return False


def _share(version: Version, target: Path) -> None:
    """Put a file just built beside its version in the storage (nothing on local storage:
    it is there already); the checksum first, so a reader never takes an unchecked file."""
    files = version.files
    if files is not None:
        digest = target.with_name(target.name + CHECKSUM)
        files.put(digest, _key(version, digest))
        files.put(target, _key(version, target))


def damage(path: Path) -> str | None:
    """Why an export file cannot be served (None when it matches its recorded checksum)."""
    try:
        recorded = path.with_name(path.name + CHECKSUM).read_text().strip()
        found = sha256(path)
    except FileNotFoundError as exc:
        return f"{Path(exc.filename or path).name} is missing"
    return None if found == recorded else (f"checksum mismatch: recorded {recorded[:12]}…, "
                                           f"file has {found[:12]}…")


def discard(path: Path) -> None:
    """Delete an export and its checksum (it is built again when next asked for)."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + CHECKSUM).unlink(missing_ok=True)


@dataclass
class FolderCheck:
    """What `check_folder` found in one version's exports folder."""

    sound: list[str] = field(default_factory=list)
    removed: dict[str, str] = field(default_factory=dict)  # damaged file -> why
    leftovers: list[str] = field(default_factory=list)  # temporary files of dead builders


def check_folder(version: Version, grace: float = GRACE_SECONDS) -> FolderCheck:
    """Check every export of a version; delete damaged ones and dead builders' leftovers."""
    out = FolderCheck()
    folder = version.path / EXPORTS
    if not folder.is_dir():
        return out
    out.leftovers = clean_leftovers(folder, grace)
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name.endswith(CHECKSUM):
            continue
        reason = damage(path)
        if reason is None:
            out.sound.append(path.name)
        else:
            discard(path)
            out.removed[path.name] = reason
    for orphan in folder.glob(f"*{CHECKSUM}"):  # its export was deleted
        if not orphan.with_name(orphan.name.removesuffix(CHECKSUM)).exists():
            orphan.unlink(missing_ok=True)
    return out


def clean_leftovers(folder: Path, grace: float = GRACE_SECONDS) -> list[str]:
    """Remove temporary files whose builder is gone (lock free) and that are older than
    `grace` seconds; return their names."""
    removed = []
    cutoff = time.time() - grace
    for path in sorted(folder.glob(f"{TMP}*")):
        build = path.name[len(TMP):].split("-", 1)[0].split(".", 1)[0]
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime > cutoff or _building(folder, build):
                continue
            path.unlink()
            removed.append(path.name)
    return removed


def _building(folder: Path, build: str) -> bool:
    """Whether a live builder holds the lock of build `build` in `folder`."""
    try:
        fd = os.open(folder / f"{TMP}{build}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def _builder_lock(folder: Path, build: str) -> Iterator[None]:
    path = folder / f"{TMP}{build}.lock"
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _build(version: Version, ext: str, terms: Terms, target: Path) -> None:
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)  # on S3 the local folder holds only exports
    clean_leftovers(folder)
    build = uuid.uuid4().hex[:12]
    tmp = folder / f"{TMP}{build}-{target.name}"
    digest = folder / f"{TMP}{build}-{target.name}{CHECKSUM}"
    with _builder_lock(folder, build):
        try:
            WRITERS[ext](Source(version), terms, tmp)
            faults.point("export-written")
            digest.write_text(sha256(tmp) + "\n")
            for path in (tmp, digest):
                fsync(path)
            os.replace(digest, target.with_name(target.name + CHECKSUM))
            os.replace(tmp, target)
            fsync(folder)
        finally:
            for leftover in folder.glob(f"{TMP}{build}-*"):  # also GDAL's -journal, -wal
                leftover.unlink(missing_ok=True)
    for older in folder.glob(f"{version.dataset}-v{version.version}.*.{ext}"):
        if older != target:  # made under earlier terms or revisions; never served again
            discard(older)


def _batches(source: Source) -> pa.RecordBatchReader:
    schema = pa.schema([source.schema.field(n) for n in source.columns])
    return pa.RecordBatchReader.from_batches(schema, source.batches())


def _geometry_type(version: Version) -> str:
    types = version.geometry_types
    return types[0] if len(types) == 1 else "Unknown"


def _write_ogr(source: Source, terms: Terms, path: Path, driver: str,
               options: dict[str, str]) -> None:
    import pyogrio.raw  # imported on first export: GDAL is not needed for the other formats

    geometry = {"geometry_name": GEOMETRY_COLUMN, "geometry_type":
                _geometry_type(source.version), "crs": CRS84} if source.has_geometry else {}
    pyogrio.raw.write_arrow(
        _batches(source), str(path), layer=source.version.dataset, driver=driver,
        layer_metadata=terms.metadata() or None, layer_options=options, **geometry)


def write_gpkg(source: Source, terms: Terms, path: Path) -> None:
    options = {"IDENTIFIER": terms.title or source.version.dataset}
    if terms.sentence():
        options["DESCRIPTION"] = terms.sentence()
    _write_ogr(source, terms, path, "GPKG", options)
    with sqlite3.connect(path) as db:  # same bytes on every build: the version's time, not now
        db.execute("UPDATE gpkg_contents SET last_change = ?", (source.version.finished,))
    db.close()


def write_fgb(source: Source, terms: Terms, path: Path) -> None:
    options = {"TITLE": terms.title or source.version.dataset}
    if not source.has_geometry or source.missing_geometries():
        options["SPATIAL_INDEX"] = "NO"  # GDAL's index cannot hold rows without a geometry
    if terms.sentence():
        options["DESCRIPTION"] = terms.sentence()
    _write_ogr(source, terms, path, "FlatGeobuf", options)


def write_parquet(source: Source, terms: Terms, path: Path) -> None:
    stored = {k: v for k, v in (source.file.metadata.metadata or {}).items()
              if k != b"ARROW:schema"}  # "geo" among them
    schema = source.schema.with_metadata({**(source.schema.metadata or {}), **stored, **{
        k.encode(): v.encode() for k, v in terms.metadata().items()}})
    strings = [f.name for f in schema if pa.types.is_string(f.type)]
    with pq.ParquetWriter(path, schema, compression="zstd", compression_level=1,
                          use_dictionary=strings, write_statistics=True) as out:
        for batch in source.file.iter_batches(batch_size=ROW_GROUP_ROWS, use_threads=False):
            out.write_batch(batch, row_group_size=ROW_GROUP_ROWS)


def packed_name(ext: str, dialect: csv_text.Dialect | None = None) -> str:
    """The export "format" of a gzipped text download: `geojson.gz`, `<dialect>.csv.gz`."""
    return f"{dialect.name}.{ext}.gz" if dialect is not None else f"{ext}.gz"


def _write_packed(chunks: Iterable[bytes], path: Path) -> None:
    """The gzip member a streamed download would send (same bytes: level, no name, mtime 0)."""
    with open(path, "wb") as out:
        for part in gzipped(chunks):
            out.write(part)


def write_geojson_gz(source: Source, terms: Terms, path: Path) -> None:
    _write_packed(geojson.stream(source, terms, geojson.id_field(source)), path)


def _csv_gz_writer(dialect: csv_text.Dialect) -> Callable[[Source, Terms, Path], None]:
    def write(source: Source, terms: Terms, path: Path) -> None:
        _write_packed(csv_text.stream(source, dialect), path)
    return write


WRITERS: dict[str, Callable[[Source, Terms, Path], None]] = {
    "gpkg": write_gpkg, "fgb": write_fgb, "parquet": write_parquet,
    packed_name("geojson"): write_geojson_gz,
    **{packed_name("csv", d): _csv_gz_writer(d) for d in csv_text.DIALECTS.values()}}
