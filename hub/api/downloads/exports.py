"""Files built once per version and format: GeoPackage, FlatGeobuf, GeoParquet.

They live next to the version they come from, `data/<ds>/v<N>/exports/<ds>-v<N>.<terms>.r<REV>
.<ext>`, so retention removes them with their version. A file is written under a temporary
name in the same folder, fsynced and renamed into place: a reader (in this process or another)
sees the whole file or none. Within a process, concurrent first requests for the same file wait
for one build; across processes, each may build and the last rename wins (identical content).

GDAL (through pyogrio) writes GeoPackage and FlatGeobuf from a stream of Arrow batches, so
memory does not grow with the layer. The GeoParquet export is the stored file rewritten batch
by batch with the licence terms added to its key/value metadata.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hub.api.downloads.columns import Source
from hub.api.downloads.formats import REVISION, Terms
from hub.store.geoparquet import GEOMETRY_COLUMN, ROW_GROUP_ROWS
from hub.store.versions import Version, fsync

EXPORTS = "exports"
CRS84 = "OGC:CRS84"


def export_path(version: Version, ext: str, terms: Terms) -> Path:
    return (version.path / EXPORTS /
            f"{version.dataset}-v{version.version}.{terms.digest}.r{REVISION}.{ext}")


class Exports:
    """Builds export files on first use and hands out their paths."""

    def __init__(self) -> None:
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def file(self, version: Version, ext: str, terms: Terms) -> Path:
        target = export_path(version, ext, terms)
        if target.exists():
            return target
        with self._guard:
            lock = self._locks.setdefault(target, threading.Lock())
        with lock:
            if not target.exists():
                _build(version, ext, terms, target)
        with self._guard:
            self._locks.pop(target, None)
        return target


def _build(version: Version, ext: str, terms: Terms, target: Path) -> None:
    target.parent.mkdir(exist_ok=True)
    tmp = target.parent / f".tmp-{uuid.uuid4().hex[:12]}-{target.name}"
    try:
        WRITERS[ext](Source(version), terms, tmp)
        fsync(tmp)
        os.replace(tmp, target)
        fsync(target.parent)
    finally:
        for leftover in target.parent.glob(f"{tmp.name}*"):  # also GDAL's -journal, -wal
            leftover.unlink(missing_ok=True)
    for older in target.parent.glob(f"{version.dataset}-v{version.version}.*.{ext}"):
        if older != target:  # made under earlier terms or revisions; never served again
            older.unlink(missing_ok=True)


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


WRITERS: dict[str, Callable[[Source, Terms, Path], None]] = {
    "gpkg": write_gpkg, "fgb": write_fgb, "parquet": write_parquet}
