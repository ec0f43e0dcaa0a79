"""Writing versions as GeoParquet 1.1: WKB geometry in CRS84 plus a `bbox` covering column.

The `geo` metadata is written twice, as every reader expects it somewhere else: as a key of
the Parquet footer (GDAL, DuckDB) and in the Arrow schema stored in the footer (`ARROW:schema`,
which `pyarrow.parquet.read_schema` and geopandas read). Both are known only when the last row
is written (geometry types, bbox), so the writer replaces the Arrow schema it stored at
opening by the same schema with the `geo` key (`arrow_schema_metadata`).
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hub.store import faults

GEOMETRY_COLUMN = "geometry"
BBOX_COLUMN = "bbox"
ROW_GROUP_ROWS = 65_536
BBOX_TYPE = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])


def table_schema(attributes: pa.Schema, geometry: bool) -> pa.Schema:
    """The stored schema: attributes, then geometry and its bbox covering."""
    if not geometry:
        return attributes
    return attributes.append(pa.field(GEOMETRY_COLUMN, pa.binary())).append(
        pa.field(BBOX_COLUMN, BBOX_TYPE))


def bbox_array(bounds: np.ndarray) -> pa.Array:
    """Per-row bbox structs from an (n, 4) array; rows with NaN bounds get a null bbox."""
    missing = np.isnan(bounds).any(axis=1)
    children = [pa.array(bounds[:, i], pa.float64()) for i in range(4)]
    mask = pa.array(missing) if missing.any() else None
    return pa.StructArray.from_arrays(children, fields=list(BBOX_TYPE), mask=mask)


def geo_metadata(types: list[str], bbox: list[float] | None) -> dict[str, str]:
    """GeoParquet 1.1 file metadata (CRS omitted = OGC:CRS84)."""
    column = {"encoding": "WKB", "geometry_types": sorted(types),
              "covering": {"bbox": {k: [BBOX_COLUMN, k] for k in ("xmin", "ymin", "xmax", "ymax")}}}
    if bbox:
        column["bbox"] = bbox
    meta = {"version": "1.1.0", "primary_column": GEOMETRY_COLUMN,
            "columns": {GEOMETRY_COLUMN: column}}
    return {"geo": json.dumps(meta)}


def arrow_schema_metadata(schema: pa.Schema, metadata: dict[str, str]) -> dict[str, str]:
    """Footer keys that store `schema` with `metadata` as its Arrow schema (`ARROW:schema`,
    the base64 of the IPC schema message, as pyarrow writes it), besides `metadata` itself."""
    with_meta = schema.with_metadata({**(schema.metadata or {}), **metadata})
    return {**metadata,
            "ARROW:schema": base64.b64encode(with_meta.serialize().to_pybytes()).decode()}


class VersionWriter:
    """Streams tables into one Parquet file from a background thread; geo metadata at close.

    Compression runs in its own thread (pyarrow releases the GIL), overlapping with reading and
    validation; the queue holds at most two tables, so memory stays bounded.
    """

    def __init__(self, path: Path, schema: pa.Schema, geometry: bool):
        self.path, self.schema, self.geometry = path, schema, geometry
        strings = [f.name for f in schema if pa.types.is_string(f.type)]
        self._writer = pq.ParquetWriter(path, schema, compression="zstd", compression_level=1,
                                        use_dictionary=strings, write_statistics=True,
                                        write_page_checksum=True)  # see hub.api.ogc.cold
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="parquet-writer", daemon=True)
        self._thread.start()
        self.rows = 0

    def _drain(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._failure = exc
                else:
                    faults.point("first-batch-staged")

    def write(self, table: pa.Table) -> None:
        if self._failure is not None:
            raise self._failure
        if table.num_rows:
            self._queue.put(table.cast(self.schema))
            self.rows += table.num_rows

    def close(self, types: list[str], bbox: list[float] | None) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.geometry:  # a later key replaces an earlier one: the new ARROW:schema wins
            self._writer.add_key_value_metadata(
                arrow_schema_metadata(self.schema, geo_metadata(types, bbox)))
        self._writer.close()
        if self._failure is not None:
            raise self._failure


def drop_rows(path: Path, drop: np.ndarray) -> int:
    """Rewrite a staged file without the rows at the given positions; return rows kept."""
    source = pq.ParquetFile(path)
    tmp = path.with_suffix(".tmp")
    kept, start = 0, 0
    drop = np.sort(drop)
    with pq.ParquetWriter(tmp, source.schema_arrow, compression="zstd",
                          compression_level=1, write_page_checksum=True) as out:
        for batch in source.iter_batches(batch_size=ROW_GROUP_ROWS):
            n = batch.num_rows
            local = drop[(drop >= start) & (drop < start + n)] - start
            keep = np.ones(n, dtype=bool)
            keep[local] = False
            out.write_batch(batch.filter(pa.array(keep)), row_group_size=ROW_GROUP_ROWS)
            kept += int(keep.sum())
            start += n
        out.add_key_value_metadata({k.decode(): v.decode() for k, v in (
            source.metadata.metadata or {}).items() if k != b"ARROW:schema"})  # keeps "geo"
    tmp.replace(path)
    return kept
