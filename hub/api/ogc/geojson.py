"""GeoJSON for a page of rows: geometries decoded in bulk, then one orjson call.

Points (the common case, and the big layers) are read straight from their 21-byte WKB with
numpy; other geometries go through shapely's vectorised WKB reader and GeoJSON writer, and the
writer's strings are embedded as `orjson.Fragment`s. Coordinates are transformed with pyproj
for a whole page at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import shapely

from hub.api.ogc.crs import Crs, from_crs84
from hub.api.ogc.layer import Layer

POINT_WKB = 21  # byte order (1) + type (4) + x (8) + y (8)


def feature_ids(layer: Layer, rows: np.ndarray) -> list[Any]:
    f = layer.meta.id_field
    if f is None:  # the 1-based row number in the version (a part knows its rows' numbers)
        return ((rows if layer.numbers is None else layer.numbers[rows]) + 1).tolist()
    return layer.properties.column(f.name).take(pa.array(rows)).to_pylist()


def features(layer: Layer, rows: np.ndarray, crs: Crs, fragments: bool = True
             ) -> list[dict[str, Any]]:
    """GeoJSON Feature objects for `rows`; non-point geometries are orjson fragments (fast to
    serialise) unless `fragments` is False (then plain dicts, e.g. for HTML)."""
    props = layer.properties.take(pa.array(rows)).to_pylist()
    ids = feature_ids(layer, rows)
    geoms = geometries(layer, rows, crs, fragments)
    return [{"type": "Feature", "id": i, "geometry": g, "properties": p}
            for i, g, p in zip(ids, geoms, props, strict=True)]


def geometries(layer: Layer, rows: np.ndarray, crs: Crs, fragments: bool = True) -> list[Any]:
    if layer.geometry is None:
        return [None] * len(rows)
    wkb = layer.geometry.take(pa.array(rows))
    if isinstance(wkb, pa.ChunkedArray):
        wkb = wkb.combine_chunks()
    if layer.points:
        xy = point_xy(wkb)
        if xy is not None:
            return [{"type": "Point", "coordinates": c} for c in from_crs84(xy, crs).tolist()]
    shapes = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
    if not (crs.geographic and not crs.lat_first):
        shapes = shapely.transform(shapes, lambda c: from_crs84(c, crs))
    texts = shapely.to_geojson(shapes)
    wrap = orjson.Fragment if fragments else orjson.loads
    return [wrap(t) if t is not None else None for t in texts]


def point_xy(wkb: pa.BinaryArray) -> np.ndarray | None:
    """(n, 2) coordinates when every value is a little-endian 2D WKB point; else None."""
    n = len(wkb)
    if wkb.null_count or n == 0:
        return None
    offsets_buf, data_buf = wkb.buffers()[1:3]
    offset_type = np.int64 if pa.types.is_large_binary(wkb.type) else np.int32
    offsets = np.frombuffer(offsets_buf, offset_type)[wkb.offset:wkb.offset + n + 1]
    if not (np.diff(offsets) == POINT_WKB).all():
        return None
    raw = np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[0] + n * POINT_WKB]
    raw = raw.reshape(n, POINT_WKB)
    if not ((raw[:, 0] == 1) & (raw[:, 1] == 1) & (raw[:, 2:5] == 0).all(axis=1)).all():
        return None
    return np.ascontiguousarray(raw[:, 5:]).view("<f8").reshape(n, 2)


def dumps(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
