"""Arrow tables with a WKB `geometry` column as GeoDataFrames, as `geopandas.read_parquet`
makes them, only cheaper.

Two savings (bench/RESULTS.md, "Python API"): a column of two-dimensional points is decoded
straight from the WKB bytes in Arrow's buffer — the coordinates of each 21-byte point are read
as a strided NumPy view and handed to `shapely.points`, so no Python `bytes` object per row is
made and no WKB is parsed; and Python's cyclic garbage collector is paused while the million
new objects are made. Any other column (lines, polygons, 3D, big-endian, …) goes through
`shapely.from_wkb`. The result is the same either way: the same geometries, nulls and empty
points as `from_wkb` gives (tests/test_client_frames.py).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import geopandas
    import numpy as np
    import pandas
    import pyarrow as pa

GEOMETRY_COLUMN = "geometry"  # as hub.store.geoparquet writes it
CRS = "OGC:CRS84"
POINT_SIZE = 21  # WKB point: byte order, uint32 type, two float64
POINT_HEADER = (1, 1, 0, 0, 0)  # little-endian, type 1 (Point, 2D)


def to_geodataframe(table: pa.Table) -> geopandas.GeoDataFrame | pandas.DataFrame:
    """A GeoDataFrame (CRS84) from a table with a WKB `geometry` column, else a DataFrame.

    Python's cyclic garbage collector is paused while the rows become objects: a million
    geometries would otherwise set off collections that walk every object of the process
    (in a process with the hub's modules loaded, 1.1–1.4 s of a 1M-point decode that takes
    0.25 s without them; none of these objects can form a cycle)."""
    with _collector_paused():
        if GEOMETRY_COLUMN not in table.column_names:
            return table.to_pandas()
        import geopandas

        column = table.column(GEOMETRY_COLUMN)
        frame = table.drop_columns([GEOMETRY_COLUMN]).to_pandas()
        shapes = geometries(column)
        geometry = geopandas.GeoSeries(shapes, crs=CRS, index=frame.index)
        return geopandas.GeoDataFrame(frame, geometry=geometry)


def geometries(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Shapely geometries (None for null) of a WKB column, as `shapely.from_wkb` reads it."""
    import pyarrow as pa
    import shapely

    points = _points(column)
    if points is not None:
        return points
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return shapely.from_wkb(column.to_numpy(zero_copy_only=False))


def _points(column: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """The column's geometries if every value is a 2D little-endian WKB point (or null),
    made from the coordinates in Arrow's buffer; None for any other column."""
    import numpy as np
    import pyarrow as pa
    import shapely

    if not pa.types.is_binary(column.type) or len(column) == 0:
        return None
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    xy = np.empty((len(column), 2), dtype=np.float64)
    valid = np.ones(len(column), dtype=bool)
    start = 0
    for chunk in chunks:
        coordinates = _chunk_points(chunk)
        if coordinates is None:
            return None
        end = start + len(chunk)
        if chunk.null_count:
            present = chunk.is_valid().to_numpy(zero_copy_only=False)
            valid[start:end] = present
            xy[start:end][present] = coordinates
        else:
            xy[start:end] = coordinates
        start = end
    shapes = np.full(len(column), None, dtype=object)
    odd = valid & np.isnan(xy).any(axis=1)  # empty points (NaN NaN) and NaN coordinates
    plain = valid & ~odd
    shapes[plain] = shapely.points(xy[plain])
    if odd.any():
        wkb = (column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
        shapes[odd] = shapely.from_wkb(wkb.take(pa.array(np.flatnonzero(odd)))
                                       .to_numpy(zero_copy_only=False))
    return shapes


def _chunk_points(chunk: pa.BinaryArray) -> np.ndarray | None:
    """An (n, 2) view of the coordinates of a chunk's non-null values if all are 2D
    little-endian WKB points (nulls empty), else None."""
    import numpy as np

    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=len(chunk) + 1,
                            offset=chunk.offset * 4)
    lengths = np.diff(offsets)
    if chunk.null_count:
        present = chunk.is_valid().to_numpy(zero_copy_only=False)
        if (lengths[present] != POINT_SIZE).any() or lengths[~present].any():
            return None
    elif (lengths != POINT_SIZE).any():
        return None
    first, size = int(offsets[0]), int(offsets[-1] - offsets[0])
    if size == 0:  # nulls only
        return np.empty((0, 2), dtype=np.float64)
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8, count=size, offset=first)
    rows = data.reshape(-1, POINT_SIZE)
    if not (rows[:, :5] == np.array(POINT_HEADER, dtype=np.uint8)).all():
        return None
    return np.ndarray((len(rows), 2), dtype="<f8", buffer=data, offset=5,
                      strides=(POINT_SIZE, 8))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
