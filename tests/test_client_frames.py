"""A GeoParquet file read by the Python API is the GeoDataFrame `geopandas.read_parquet` makes:
same columns, dtypes, index, CRS and geometries (WKB byte for byte), whether the points are
decoded from their coordinates (hub/client/frames.py) or any other layer through WKB."""

from __future__ import annotations

from pathlib import Path

import geopandas
import numpy as np
import pyarrow as pa
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from hub.client.base import _read_parquet
from hub.client.frames import _points, geometries, to_geodataframe

POINTS = [shapely.Point(13.1, 51.7), shapely.Point(-0.5, 1e-300), shapely.Point(14.25, 52.0)]
OTHERS = [shapely.LineString([(13, 51), (13.5, 51.2)]),
          shapely.Polygon([(13, 51), (14, 51), (14, 52), (13, 51)]),
          shapely.MultiPoint([(13, 51), (13.1, 51.1)])]
LAYERS = {
    "points": POINTS * 40,
    "points with nulls": [None, *POINTS, None] * 30,
    "points, empty and NaN": [shapely.Point(), *POINTS, shapely.Point(np.nan, 51.0), None] * 20,
    "only nulls": [None] * 7,
    "3D points": [shapely.Point(13.1, 51.7, 80.0), shapely.Point(13.2, 51.8, 81.5)] * 20,
    "lines and polygons with nulls": [*OTHERS, None] * 30,
    "points and polygons": [*POINTS, *OTHERS] * 30,
}
DECODED_AS_POINTS = {"points", "points with nulls", "points, empty and NaN", "only nulls"}


def _frame(shapes: list[shapely.Geometry | None]) -> geopandas.GeoDataFrame:
    n = len(shapes)
    return geopandas.GeoDataFrame(
        {"id": np.arange(n, dtype="int64"), "name": [f"Ort {i}" if i % 5 else None
                                                     for i in range(n)],
         "wert": np.linspace(0, 1, n), "geometry": shapes}, crs="OGC:CRS84")


@pytest.fixture(params=sorted(LAYERS))
def layer(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "layer.parquet"
    # as a store writes them: a bbox covering column, several row groups
    _frame(LAYERS[request.param]).to_parquet(path, write_covering_bbox=True, row_group_size=16)
    return request.param, path


def test_read_is_what_geopandas_reads(layer: tuple[str, Path]) -> None:
    name, path = layer
    table = _read_parquet(path)
    assert "bbox" not in table.column_names  # the covering column is not read at all
    ours, theirs = to_geodataframe(table), geopandas.read_parquet(path)
    assert_geodataframe_equal(ours, theirs, check_less_precise=False)
    assert list(ours.dtypes) == list(theirs.dtypes) and ours.crs == theirs.crs
    assert list(shapely.to_wkb(ours.geometry.array)) == list(shapely.to_wkb(theirs.geometry.array))
    assert (_points(table.column("geometry")) is not None) == (name in DECODED_AS_POINTS)


@pytest.mark.parametrize("byte_order", [0, 1])
def test_geometries_are_what_from_wkb_reads(byte_order: int) -> None:
    """Big-endian points and sliced arrays too (an OGC selection hands over slices)."""
    shapes = [None, *POINTS, shapely.Point(), *OTHERS[:1]] * 3
    wkb = pa.array([None if s is None else shapely.to_wkb(s, byte_order=byte_order)
                    for s in shapes], pa.binary())
    for column in (wkb, wkb.slice(1, 4), pa.chunked_array([wkb.slice(0, 5), wkb.slice(5, 4)]),
                   pa.chunked_array([], pa.binary())):
        expected = shapely.from_wkb(np.array(column.to_pylist(), dtype=object))
        assert list(shapely.to_wkb(geometries(column))) == list(shapely.to_wkb(expected))
    assert (_points(wkb.slice(1, 4)) is not None) == (byte_order == 1)
