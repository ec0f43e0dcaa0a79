"""Reading a version in bounded batches, and column-wise text encoders for GeoJSON and CSV.

Nothing here loops over rows in Python: values become text with Arrow compute kernels (casts,
substring replacement, element-wise joins), points are read from their WKB with numpy, other
geometries go through shapely's vectorised readers and writers. A batch's text is one Arrow
string array whose data buffer is handed out as bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from hub.api.ogc.geojson import point_xy
from hub.store.geoparquet import BBOX_COLUMN, GEOMETRY_COLUMN
from hub.store.versions import Version

BATCH_BYTES = 1 << 20  # geometry bytes per batch: a few MB of text, whatever the layer
MAX_BATCH_ROWS = 8_192  # 1M points: 16k rows and pre-buffered row groups peaked 80 MB higher,
# 8k rows read page by page 37 MB, at the same speed (~200 MB/s of GeoJSON)
REMOTE_BUFFER = 4 << 20  # S3: a column is read in 4 MiB ranges, not one request per page
# (1M points from moto's server: 0.86 s instead of 1.9 s)
NULL = "null"
_CONTROL = "[\x00-\x1f]"
_JSON_ESCAPES = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}


class Source:
    """One version's data file: its attribute columns and whether it has geometries."""

    def __init__(self, version: Version):
        self.version = version
        source = version.source()  # a path, or a file in object storage read by ranges
        self.file = pq.ParquetFile(source, pre_buffer=False,  # page by page
                                   buffer_size=0 if isinstance(source, str) else REMOTE_BUFFER)
        names = self.file.schema_arrow.names
        self.has_geometry = GEOMETRY_COLUMN in names
        self.attributes = [n for n in names if n not in (GEOMETRY_COLUMN, BBOX_COLUMN)]
        self.schema = self.file.schema_arrow
        self.only_points = version.geometry_types == ["Point"]

    @property
    def columns(self) -> list[str]:
        return self.attributes + ([GEOMETRY_COLUMN] if self.has_geometry else [])

    def batch_rows(self) -> int:
        """Rows per batch so that one batch holds about BATCH_BYTES of geometry."""
        meta = self.file.metadata
        if not self.has_geometry or meta.num_row_groups == 0 or meta.num_rows == 0:
            return MAX_BATCH_ROWS
        index = self.schema.get_field_index(GEOMETRY_COLUMN)
        group = meta.row_group(0)
        per_row = group.column(index).total_uncompressed_size / max(group.num_rows, 1)
        return int(np.clip(BATCH_BYTES / max(per_row, 1), 64, MAX_BATCH_ROWS))

    def missing_geometries(self) -> int:
        """Rows without a geometry (from the footer statistics; counted if they are absent)."""
        if not self.has_geometry:
            return 0
        meta, index = self.file.metadata, self.schema.get_field_index(GEOMETRY_COLUMN)
        stats = [meta.row_group(g).column(index).statistics for g in range(meta.num_row_groups)]
        if all(s is not None and s.has_null_count for s in stats):
            return sum(s.null_count for s in stats)
        return sum(b.column(0).null_count for b in self.file.iter_batches(
            columns=[GEOMETRY_COLUMN]))

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield from self.file.iter_batches(batch_size=self.batch_rows(), columns=self.columns,
                                          use_threads=False)


def buffer_bytes(text: pa.Array) -> bytes:
    """The concatenated values of a string array (its data buffer between the offsets)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if len(text) == 0:
        return b""
    offsets = np.frombuffer(text.buffers()[1], np.int32 if pa.types.is_string(text.type)
                            else np.int64)
    start, stop = int(offsets[text.offset]), int(offsets[text.offset + len(text)])
    return text.buffers()[2].slice(start, stop - start).to_pybytes() if stop > start else b""


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and constants."""
    return pc.binary_join_element_wise(*parts, "")


def json_string(values: pa.Array) -> pa.Array:
    """Strings as JSON string literals (quoted and escaped); nulls stay null."""
    text = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    if pc.any(pc.match_substring_regex(text, _CONTROL)).as_py():
        for code in range(32):
            text = pc.replace_substring(text, chr(code),
                                        _JSON_ESCAPES.get(code, f"\\u{code:04x}"))
    return join('"', text, '"')


def number_text(values: pa.Array) -> pa.Array:
    """Numbers as text, shortest round-trip form; NaN and infinities become null."""
    text = pc.cast(values, pa.string())
    if pa.types.is_floating(values.type):
        text = pc.if_else(pc.is_finite(values), text, pa.scalar(None, pa.string()))
    return text


def iso_text(values: pa.Array) -> pa.Array:
    """Dates as YYYY-MM-DD, timestamps as RFC 3339 in UTC (fractions only when present)."""
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.timestamp(values.type.unit, tz="UTC"))
        text = pc.strftime(values, format="%Y-%m-%dT%H:%M:%SZ")
        return pc.replace_substring_regex(text, r"\.0+Z$", "Z")
    return pc.cast(values, pa.string())


def json_values(values: pa.Array) -> pa.Array:
    """Each value as JSON text, "null" for missing values."""
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = json_string(values)
    elif pa.types.is_boolean(kind):
        text = pc.if_else(values, "true", "false")
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        text = number_text(values)
    elif pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        text = join('"', iso_text(values), '"')
    else:  # types the store does not write today: correct, if slower
        text = pa.array([None if v is None else orjson.dumps(v, default=str).decode()
                         for v in values.to_pylist()], pa.string())
    return pc.fill_null(text, NULL)


def point_coordinates(wkb: pa.Array) -> np.ndarray | None:
    """(n, 2) lon/lat when every value is a finite 2D point; else None."""
    if isinstance(wkb, pa.ChunkedArray):
        wkb = wkb.combine_chunks()
    xy = point_xy(wkb)
    if xy is None or not np.isfinite(xy).all():
        return None
    return xy


def _shapes(wkb: pa.Array) -> np.ndarray:
    return shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))


def geojson_geometries(wkb: pa.Array) -> pa.Array:
    """GeoJSON geometry objects as text ("null" for missing geometries)."""
    xy = point_coordinates(wkb)
    if xy is not None:
        return join('{"type":"Point","coordinates":[', pc.cast(pa.array(xy[:, 0]), pa.string()),
                    ",", pc.cast(pa.array(xy[:, 1]), pa.string()), "]}")
    text = pa.array(shapely.to_geojson(_shapes(wkb)), pa.string())
    return pc.fill_null(text, NULL)


def wkt_geometries(wkb: pa.Array) -> pa.Array:
    """WKT text (null for missing geometries): points at full precision, other geometries to
    12 decimals (a micrometre; GEOS' full precision writes 13.22 as 13.219999999999999)."""
    xy = point_coordinates(wkb)
    if xy is not None:
        return join("POINT (", pc.cast(pa.array(xy[:, 0]), pa.string()), " ",
                    pc.cast(pa.array(xy[:, 1]), pa.string()), ")")
    return pa.array(shapely.to_wkt(_shapes(wkb), rounding_precision=12, trim=True), pa.string())


def lon_lat(wkb: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Longitude and latitude columns of a point layer (null where a row has no point)."""
    xy = point_coordinates(wkb)
    if xy is None:  # some rows without a geometry (or empty points): NaN, then null
        shapes = _shapes(wkb)
        shapes[shapely.is_empty(shapes)] = None
        xy = np.column_stack([shapely.get_x(shapes), shapely.get_y(shapes)])
    lon = pa.array(xy[:, 0], mask=np.isnan(xy[:, 0]))
    lat = pa.array(xy[:, 1], mask=np.isnan(xy[:, 1]))
    return lon, lat
