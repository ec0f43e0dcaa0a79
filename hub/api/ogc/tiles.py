"""OGC API – Tiles for the collections: WebMercatorQuad vector tiles made from the layer in memory.

A tile z/y/x holds one MVT layer named after the collection (extent 4096, buffer 64):

* **Points.** A tile with at most `raw_max` points (from the size budget and the layer's
  bytes per feature, at most 20,000) carries every point, with its attributes and the 1-based
  row number as MVT id, plus those in the 64-unit buffer. A fuller tile carries *clusters*
  instead: the points inside the tile are binned into 64 × 64 cells, and each non-empty cell is
  one point at its members' mean position with `point_count` (so the counts of a tile add up to
  the points inside it). `detailZoom` in the tileset metadata is the zoom from which every tile
  of the layer is unclustered. Points are kept sorted by their Morton code (30 bits per axis),
  so a tile's points, and each cluster cell's, are one contiguous slice: counting a tile is a
  binary search, clustering it a `reduceat` over the slice.
* **Lines and polygons** are projected, clipped to the buffered tile, simplified with a
  tolerance of half a 512-px screen pixel (4 units) and snapped to the integer grid (rounded;
  what rounding makes invalid goes through `shapely.set_precision`, which keeps polygons
  valid); polygon rings are oriented as the spec asks (exterior positive area in tile
  coordinates). Polygons smaller than a pixel of a 512-px tile are left out. A tile that would
  be over the size budget is made with four times the tolerance and the smallest area (a
  *level*; up to three times). Both are decided before any geometry is touched, from facts
  about each row computed once per version (`Shapes`: box, area, coordinates): polygons well
  under the smallest area are not projected at all (at low zooms, most of a dense layer), and
  the level is the first whose features are estimated to fit (`_estimate`); only when the
  estimate was too low is the tile encoded again at the next level.
* No tile exceeds `MAX_TILE_BYTES` (500 KB). An empty tile answers 204.

Why numpy and our own encoder rather than DuckDB's ST_AsMVT: the layer is already in memory
with its boxes and grid index; selecting a tile's rows there costs microseconds, whereas DuckDB
would re-scan the Parquet file (or keep a second copy of the data) per tile. Points are
projected once per version to Web Mercator (unit square), so a tile is a few vectorised passes:
select, scale, bin (clusters) and encode (`mvt.py`). Encoded tiles are kept in an LRU per
(dataset, version, z, x, y).
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

from hub import memory
from hub.api.ogc import mvt, tilefiles
from hub.api.ogc.layer import Layer
from hub.api.ogc.work import SingleFlight

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
MVT_MEDIA = "application/vnd.mapbox-vector-tile"
MAX_TILE_BYTES = 500_000
BUFFER = 64  # tile units around the tile that features may reach into
CELLS = 64  # clusters: cells per tile side (at most 4096 clusters per tile); 2 ** 6
RAW_CAP = 20_000
TOLERANCE = 4.0  # tile units (of 4096): half a pixel of a 512-px tile
LEVELS = 4  # polygon tiles: tolerance and smallest area grow fourfold per level (`_shapes`)
PREFILTER = 0.8  # polygons under this share of a level's smallest area are not even simplified
BYTES_PER_VERTEX = 2.5  # an MVT vertex: two zigzag varints of deltas of at most a few hundred
EMPTY_POLYGON = shapely.Polygon()
EARTH = 6378137.0
ORIGIN = math.pi * EARTH
MAX_LAT = 85.0511287798066
ENCODER = "2"  # part of the ETag: change when tiles of the same data would differ


def max_zoom() -> int:
    """HUB_OGC_TILES_MAXZOOM (0–24, default 20)."""
    value = int(os.environ.get("HUB_OGC_TILES_MAXZOOM", "20"))
    if not 0 <= value <= 24:
        raise ValueError("HUB_OGC_TILES_MAXZOOM must be between 0 and 24")
    return value


# -- tile grid -----------------------------------------------------------------------------------

def mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat as Web Mercator in the unit square (x right, y down); NaN beyond ±85.05°."""
    x = (np.asarray(lon, float) + 180.0) / 360.0
    lat = np.asarray(lat, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = 0.5 - np.arcsinh(np.tan(np.radians(lat))) / (2 * math.pi)
    y = np.where(np.abs(lat) <= MAX_LAT, y, np.nan)
    return x, y


def tile_bounds(z: int, x: int, y: int, pad: float = 0.0) -> tuple[float, float, float, float]:
    """The lon/lat box of a tile, widened by `pad` tile widths."""
    n = 2 ** z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))
    return ((x - pad) / n * 360 - 180, lat(min(n, y + 1 + pad)), (x + 1 + pad) / n * 360 - 180,
            lat(max(0.0, y - pad)))


def limits(bbox: list[float] | None, zooms: range) -> list[dict[str, Any]]:
    """tileMatrixSetLimits covering a lon/lat box (all columns if it crosses the antimeridian)."""
    if not bbox:
        return []
    lon0, lat0, lon1, lat1 = bbox

    def unit_y(lat: float) -> float:  # as `mercator`, for one value (called on every tile)
        lat = math.radians(min(MAX_LAT, max(-MAX_LAT, lat)))
        return 0.5 - math.asinh(math.tan(lat)) / (2 * math.pi)
    left, right = (lon0 + 180.0) / 360.0, (lon1 + 180.0) / 360.0
    top, bottom = unit_y(lat1), unit_y(lat0)
    out = []
    for z in zooms:
        n = 2 ** z

        def at(v: float, n: int = n) -> int:
            return int(min(n - 1, max(0, math.floor(v * n))))
        cols = (at(left), at(right)) if lon0 <= lon1 else (0, n - 1)
        out.append({"tileMatrix": str(z), "minTileRow": at(top), "maxTileRow": at(bottom),
                    "minTileCol": cols[0], "maxTileCol": cols[1]})
    return out


def tile_matrix_set(zooms: range) -> dict[str, Any]:
    """The WebMercatorQuad definition (OGC 2D Tile Matrix Set 2.0, JSON)."""
    matrices = []
    for z in zooms:
        cell = 2 * ORIGIN / 256 / 2 ** z
        matrices.append({"id": str(z), "scaleDenominator": cell / 0.00028, "cellSize": cell,
                         "cornerOfOrigin": "topLeft", "pointOfOrigin": [-ORIGIN, ORIGIN],
                         "tileWidth": 256, "tileHeight": 256, "matrixWidth": 2 ** z,
                         "matrixHeight": 2 ** z})
    return {"id": TMS_ID, "title": "Google Maps Compatible for the World", "uri": TMS_URI,
            "crs": EPSG3857, "orderedAxes": ["X", "Y"],
            "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
            "tileMatrices": matrices}


# -- what a layer needs for tiling (built once per version) ------------------------------------

LEVEL = 30  # bits per axis of the points' Morton codes: zoom 24 plus 6 bits of cluster cells


@dataclass
class Source:
    """What tiling needs from a version, built once: for points their Web Mercator position
    (unit square) and Morton codes at LEVEL, sorted, so that the points of any tile, and of any
    cluster cell in it, are one contiguous slice; the raw-point limit; the geometry kind."""

    mx: np.ndarray | None  # points only, per row (NaN beyond ±85.05°)
    my: np.ndarray | None
    codes: np.ndarray | None  # sorted Morton codes of the valid points
    sorted_mx: np.ndarray | None  # their positions in that order
    sorted_my: np.ndarray | None
    raw_max: int
    dimension: int  # 0 points, 1 lines, 2 polygons (the layer's highest)
    attributes: mvt.Attributes  # the attribute columns made ready for encoding
    shapes: Shapes | None = None  # lines and polygons only


@dataclass
class Shapes:
    """Per row of a line or polygon layer, what choosing a tile's features needs before any
    geometry is touched: the box in Web Mercator (unit square), the polygon's area there
    (0 for lines and points) and its number of coordinates; and the bytes a feature's
    attributes take in a tile (the layer's mean)."""

    left: np.ndarray
    top: np.ndarray
    right: np.ndarray
    bottom: np.ndarray
    area: np.ndarray
    coords: np.ndarray
    polygonal: np.ndarray  # bool
    attribute_bytes: float


def source(layer: Layer) -> Source:
    found = layer.derived.get("tiles")
    if found is None:
        with layer.derived_lock:
            found = layer.derived.get("tiles")
            if found is None:
                found = layer.derived["tiles"] = _build_source(layer)
    return found


def _spread(v: Any) -> Any:
    """The bits of 30-bit integers (a uint64 array, or an int) moved to the even positions of
    64-bit ones."""
    for shift, mask in ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF),
                        (4, 0x0F0F0F0F0F0F0F0F), (2, 0x3333333333333333),
                        (1, 0x5555555555555555)):
        v = (v | (v << shift)) & mask
    return v


def morton(ix: Any, iy: Any) -> Any:
    """Interleaved bits (x in the even, y in the odd positions) of uint64 arrays, or of ints
    (one tile's code: Python's integers take a microsecond where numpy takes twenty)."""
    return _spread(ix) | (_spread(iy) << 1)


def _build_source(layer: Layer) -> Source:
    kinds = {t.removeprefix("Multi") for t in layer.version.geometry_types}
    dimension = 2 if "Polygon" in kinds else 1 if "LineString" in kinds else 0
    mx = my = codes = sorted_mx = sorted_my = None
    shapes = None
    if layer.points and layer.boxes is not None:
        mx, my, codes, sorted_mx, sorted_my = _shared_points(layer)
    per_row = layer.properties.nbytes / max(layer.rows, 1)
    per_feature = 16 + 3 * layer.properties.num_columns + per_row
    raw_max = int(min(RAW_CAP, 0.8 * MAX_TILE_BYTES / per_feature))
    if not layer.points and layer.geometry is not None and layer.boxes is not None:
        shapes = _shape_facts(layer, 4 + 3 * layer.properties.num_columns + per_row)
    attributes = mvt.Attributes(layer.properties, _shared(
        layer, "values", mvt.Attributes.NAMES, lambda: mvt.Attributes.prepare(layer.properties),
        "codes"))
    return Source(mx, my, codes, sorted_mx, sorted_my, max(raw_max, 100), dimension, attributes,
                  shapes)


POINT_ARRAYS = ("mx", "my", "codes", "sorted_mx", "sorted_my")


def _shared_points(layer: Layer) -> tuple[np.ndarray, ...]:
    """`_point_index` (see `_shared`)."""
    found = _shared(layer, "index", POINT_ARRAYS, lambda: dict(zip(
        POINT_ARRAYS, _point_index(layer), strict=True)), "mx")
    return tuple(found[name] for name in POINT_ARRAYS)


def _shared(layer: Layer, kind: str, names: tuple[str, ...],
            build: Callable[[], dict[str, np.ndarray]], per_row: str) -> dict[str, np.ndarray]:
    """Arrays built from a version (`build`), for a mapped layer from files in its folder that
    the first worker to need them writes (`tilefiles.save_arrays`), so the workers share one
    copy; `per_row` names an array with one item per row (a check that they fit)."""
    if layer.folder is None:
        return build()
    where = tilefiles.index_of(layer.folder, layer.version, ENCODER, kind)
    found = tilefiles.arrays(where, names)
    if found is None:
        with tilefiles.exclusive(where):
            found = tilefiles.arrays(where, names)
            if found is None:
                built = build()
                try:
                    tilefiles.save_arrays(where, built)
                except OSError:  # the cache folder cannot be written: kept in memory
                    return built
                found = tilefiles.arrays(where, names)
    if found is None or len(found[per_row]) != layer.rows:
        return build()
    return found


def _point_index(layer: Layer) -> tuple[np.ndarray, ...]:
    """The points' Web Mercator positions per row, and the valid ones' Morton codes, sorted,
    with their positions in that order."""
    assert layer.boxes is not None
    mx, my = mercator(layer.boxes[0], layer.boxes[1])
    valid = np.flatnonzero(~np.isnan(mx) & ~np.isnan(my))
    top = 2 ** LEVEL - 1
    ix = np.clip(np.floor(mx[valid] * 2 ** LEVEL), 0, top).astype(np.uint64)
    iy = np.clip(np.floor(my[valid] * 2 ** LEVEL), 0, top).astype(np.uint64)
    code = morton(ix, iy)
    order = np.argsort(code, kind="stable")
    return mx, my, code[order], mx[valid][order], my[valid][order]


def _shape_facts(layer: Layer, attribute_bytes: float) -> Shapes:
    assert layer.boxes is not None
    xmin, ymin, xmax, ymax = layer.boxes
    left, top = mercator(xmin, np.clip(ymax, -MAX_LAT, MAX_LAT))
    right, bottom = mercator(xmax, np.clip(ymin, -MAX_LAT, MAX_LAT))
    geoms = layer.shapes()
    polygonal = np.isin(_kinds(layer), (3, 6))
    # degrees² to the unit square: 1/360 per degree across, 1/(360 cos φ) per degree up
    # (at the box's middle latitude; exact enough for a pixel-sized threshold)
    middle = np.radians(np.clip((ymin + ymax) / 2, -MAX_LAT, MAX_LAT))
    with np.errstate(invalid="ignore"):
        area = np.where(polygonal, shapely.area(geoms) / 360.0 ** 2 / np.cos(middle), 0.0)
    return Shapes(left, top, right, bottom, np.nan_to_num(area), shapely.get_num_coordinates(
        geoms), polygonal, attribute_bytes)


def _slice(src: Source, z: int, x: int, y: int) -> tuple[int, int]:
    """The positions in the sorted points of those inside tile z/y/x."""
    assert src.codes is not None
    shift = 2 * (LEVEL - z)
    t = morton(int(x), int(y))
    lo, hi = np.uint64(t << shift), np.uint64((t + 1) << shift)
    return (int(np.searchsorted(src.codes, lo)), int(np.searchsorted(src.codes, hi)))


def detail_zoom(layer: Layer, zooms: range) -> int | None:
    """The lowest zoom at which no tile of a point layer has more than `raw_max` points."""
    src = source(layer)
    if src.codes is None:
        return None
    found = layer.derived.get("detail_zoom")
    if found is None:
        found = zooms.stop - 1
        for z in zooms:
            tiles = src.codes >> np.uint64(2 * (LEVEL - z))
            edges = np.flatnonzero(np.diff(tiles)) if len(tiles) else np.empty(0, np.int64)
            largest = np.diff(np.concatenate([[0], edges + 1, [len(tiles)]])).max() \
                if len(tiles) else 0
            if largest <= src.raw_max:
                found = z
                break
        layer.derived["detail_zoom"] = found
    return found


# -- making a tile -------------------------------------------------------------------------------

POINT_WEIGHT = 50  # cost of encoding one point of a tile, in row-conditions: about that of a
# feature of a page of items (`hub.api.ogc.features.PAGE_WEIGHT`)


def cost(layer: Layer, z: int, x: int, y: int) -> float:
    """The work of rendering tile z/y/x, in row-conditions (`hub.api.ogc.work`): a tile of
    every point costs by its points, counted by two binary searches. A tile of clusters, of
    lines or polygons, or of a layer whose tile source is not built yet grows with the data.
    (A tile that costs little is rendered on the event loop: in a worker thread it would hold
    the GIL just as long, and the way there and back costs more than a small tile.)"""
    src = layer.derived.get("tiles")
    if src is None or src.codes is None:
        return math.inf
    start, stop = _slice(src, z, x, y)
    return math.inf if stop - start > src.raw_max else (stop - start) * POINT_WEIGHT


def render(layer: Layer, name: str, z: int, x: int, y: int) -> bytes:
    """The MVT bytes of tile z/y/x (b"" when nothing is in it)."""
    src = source(layer)
    parts = []
    if src.mx is not None:
        encoded = _points(layer, src, name, z, x, y)
        if encoded:
            parts.append(encoded)
    elif layer.geometry is not None:
        encoded = _shapes(layer, name, z, x, y)
        if encoded:
            parts.append(encoded)
    return mvt.tile(*parts) if parts else b""


def _rows_near(layer: Layer, z: int, x: int, y: int) -> np.ndarray:
    """Rows whose box meets the buffered tile (a superset of what the tile shows)."""
    assert layer.boxes is not None and layer.index is not None
    x0, y0, x1, y1 = tile_bounds(z, x, y, pad=BUFFER / mvt.EXTENT)
    candidates, count = layer.index.candidates((x0, y0, x1, y1))
    xmin, ymin, xmax, ymax = layer.boxes
    if count > layer.rows // 4:
        return np.flatnonzero((xmin <= x1) & (xmax >= x0) & (ymin <= y1) & (ymax >= y0))
    c = candidates
    return np.sort(c[(xmin[c] <= x1) & (xmax[c] >= x0) & (ymin[c] <= y1) & (ymax[c] >= y0)])


def _points(layer: Layer, src: Source, name: str, z: int, x: int, y: int) -> bytes:
    assert src.mx is not None and src.my is not None and src.sorted_mx is not None
    start, stop = _slice(src, z, x, y)
    count = stop - start
    if count == 0:
        return b""
    n = 2 ** z
    if count <= src.raw_max:  # every point, and those in the buffer
        rows = _rows_near(layer, z, x, y)
        px = (src.mx[rows] * n - x) * mvt.EXTENT
        py = (src.my[rows] * n - y) * mvt.EXTENT
        with np.errstate(invalid="ignore"):
            near = (px >= -BUFFER) & (px < mvt.EXTENT + BUFFER) & (py >= -BUFFER) \
                & (py < mvt.EXTENT + BUFFER)
        keep = rows[near]
        xy = np.column_stack([px[near], py[near]]).round().astype(np.int64)
        cmd, off = mvt.point_commands(xy)
        return mvt.layer(name, np.full(len(keep), mvt.POINT, np.uint8), cmd, off,
                         src.attributes.tags(keep), ids=keep + 1)
    # clusters: cells of 1/64 tile are contiguous runs of the Morton-sorted points
    assert src.codes is not None and src.sorted_my is not None
    cells = src.codes[start:stop] >> np.uint64(2 * (LEVEL - z - 6))
    starts = np.concatenate([[0], np.flatnonzero(np.diff(cells)) + 1])
    counts = np.diff(np.concatenate([starts, [count]]))
    sx = np.add.reduceat(src.sorted_mx[start:stop], starts)
    sy = np.add.reduceat(src.sorted_my[start:stop], starts)
    xy = np.column_stack([(sx / counts * n - x) * mvt.EXTENT, (sy / counts * n - y) * mvt.EXTENT])
    xy = np.clip(xy.round(), 0, mvt.EXTENT - 1).astype(np.int64)
    cmd, off = mvt.point_commands(xy)
    return mvt.layer(name, np.full(len(counts), mvt.POINT, np.uint8), cmd, off,
                     {"point_count": pa.array(counts)})


def _shapes(layer: Layer, name: str, z: int, x: int, y: int) -> bytes:
    rows = _rows_near(layer, z, x, y)
    facts = source(layer).shapes
    if not len(rows) or facts is None:
        return b""
    scale = 2 ** z * mvt.EXTENT  # unit square to tile units
    polygonal = facts.polygonal[rows]
    area = facts.area[rows] * scale ** 2
    # the tile's level is chosen before any geometry is touched: the first whose features
    # (polygons of at least its smallest area) are estimated to fit the size budget
    level = 0
    while level < LEVELS - 1 and _estimate(facts, rows, polygonal, area, scale, level) \
            > MAX_TILE_BYTES:
        level += 1
    first = ~polygonal | (area >= PREFILTER * _min_area(level))
    rows, polygonal, area = rows[first], polygonal[first], area[first]
    if not len(rows):
        return b""
    n = 2 ** z

    def to_tile(lonlat: np.ndarray) -> np.ndarray:
        mx, my = mercator(lonlat[:, 0], np.clip(lonlat[:, 1], -MAX_LAT, MAX_LAT))
        return np.column_stack([(mx * n - x) * mvt.EXTENT, (my * n - y) * mvt.EXTENT])
    projected = shapely.transform(layer.shapes()[rows], to_tile)
    clipped = shapely.clip_by_rect(projected, -BUFFER, -BUFFER, mvt.EXTENT + BUFFER,
                                   mvt.EXTENT + BUFFER)
    for at in range(level, LEVELS):  # a coarser level only when the estimate was too low
        keep = np.flatnonzero(~polygonal | (area >= PREFILTER * _min_area(at)))
        if not len(keep):
            return b""
        encoded = _encode_shapes(layer, name, rows[keep], clipped[keep],
                                 TOLERANCE * 4 ** at, _min_area(at))
        if len(encoded) <= MAX_TILE_BYTES - 16:
            return encoded
    return b""  # cannot be made small enough: no worse answer than an oversized tile


def _estimate(facts: Shapes, rows: np.ndarray, polygonal: np.ndarray, area: np.ndarray,
              scale: float, level: int) -> float:
    """The bytes a level's features would take in a tile, from their attributes and a
    vertex count bounded by their coordinates and by their box's perimeter over the
    tolerance (what simplifying leaves of a ring at most, measured: 0.7-1.0 of it)."""
    keep = ~polygonal | (area >= PREFILTER * _min_area(level))
    picked = rows[keep]
    if not len(picked):
        return 0.0
    span = mvt.EXTENT + 2 * BUFFER
    width = np.minimum((facts.right[picked] - facts.left[picked]) * scale, span)
    height = np.minimum((facts.bottom[picked] - facts.top[picked]) * scale, span)
    vertices = np.minimum(facts.coords[picked],
                          np.maximum(4, 2 * (width + height) / (TOLERANCE * 4 ** level)))
    return float(len(picked) * facts.attribute_bytes + BYTES_PER_VERTEX * vertices.sum())


def _min_area(level: int) -> float:
    """The smallest polygon area (tile units) a level keeps: a pixel of a 512-px tile, growing
    fourfold per level as the tolerance does."""
    return (mvt.EXTENT / 512) ** 2 * 4 ** level


def _kinds(layer: Layer) -> np.ndarray:
    """Each row's shapely geometry type id (built once per version)."""
    found = layer.derived.get("kinds")
    if found is None:
        found = layer.derived["kinds"] = shapely.get_type_id(layer.shapes())
    return found


def _snap(shapes: np.ndarray) -> np.ndarray:
    """Geometries on the integer grid. Rounding the coordinates is what `shapely.set_precision`
    does for nearly every geometry (but the repeated points, dropped when encoding), at a
    twentieth of its cost; polygons that rounding flattens are dropped as set_precision drops
    them, and the few others it makes invalid go through set_precision, which keeps them
    valid."""
    rounded = shapely.set_coordinates(shapes.copy(), np.round(shapely.get_coordinates(shapes)))
    invalid = ~shapely.is_valid(rounded) & ~shapely.is_empty(rounded)
    flat = invalid & np.isin(shapely.get_type_id(rounded), (3, 6)) & (shapely.area(rounded) == 0)
    rounded[flat] = EMPTY_POLYGON  # collapsed onto the grid: set_precision drops them too
    bad = np.flatnonzero(invalid & ~flat)
    if len(bad):
        rounded[bad] = shapely.set_precision(shapes[bad], 1.0)
    return rounded


def _encode_shapes(layer: Layer, name: str, rows: np.ndarray, shapes: np.ndarray,
                   tolerance: float, min_area: float) -> bytes:
    simple = shapely.simplify(shapes, tolerance, preserve_topology=False)
    snapped = _snap(simple)
    kind = shapely.get_type_id(snapped)
    if min_area:
        polygonal = np.isin(kind, (3, 6))
        small = polygonal & (shapely.area(snapped) < min_area)
        kind = np.where(small, -1, kind)
    ok = ~shapely.is_empty(snapped) & (kind >= 0)
    groups = [((3, 6), mvt.POLYGON), ((1, 5), mvt.LINESTRING), ((0, 4), mvt.POINT)]
    types, commands, offsets, keep = [], [], [], []
    for ids, geom_type in groups:
        pick = np.flatnonzero(ok & np.isin(kind, ids))
        if not len(pick):
            continue
        geoms = snapped[pick]
        if geom_type == mvt.POLYGON:
            geoms = shapely.orient_polygons(geoms, exterior_cw=False)
        cmd, off = _commands(geoms, geom_type)
        types.append(np.full(len(pick), geom_type, np.uint8))
        commands.append(cmd)
        offsets.append(off)
        keep.append(pick)
    if not keep:
        return b""
    shift = np.cumsum([0] + [len(c) for c in commands[:-1]])
    offs = np.concatenate([offsets[0]] + [o[1:] + s for o, s in
                                          zip(offsets[1:], shift[1:], strict=True)])
    picked = np.concatenate(keep)
    chosen = rows[picked]
    return mvt.layer(name, np.concatenate(types), np.concatenate(commands), offs,
                     source(layer).attributes.tags(chosen), ids=chosen + 1)


def _commands(geoms: np.ndarray, geom_type: int) -> tuple[np.ndarray, np.ndarray]:
    _, coords, offsets = shapely.to_ragged_array(geoms)
    xy = coords.astype(np.int64)
    n = len(geoms)
    if geom_type == mvt.POINT:
        if len(offsets) == 0:  # Points
            return mvt.point_commands(xy)
        # MultiPoints: one MoveTo(count) with all points
        counts = np.diff(offsets[0])
        prev = np.roll(xy, 1, axis=0)
        starts = offsets[0][:-1]
        prev[starts] = 0
        out, offs = [], [0]
        for i in range(n):  # rare (multipoints in a point-and-polygon layer): keep it simple
            part = mvt.zigzag(xy[starts[i]:starts[i] + counts[i]] - prev[starts[i]:starts[i]
                                                                           + counts[i]])
            out.append(np.concatenate([[mvt.MOVE_TO | (int(counts[i]) << 3)], part.ravel()]))
            offs.append(offs[-1] + len(out[-1]))
        return np.concatenate(out).astype(np.uint64), np.array(offs, np.int64)
    if geom_type == mvt.LINESTRING:
        line_at = offsets[0]  # coordinates per line
        line_feature = np.arange(n) if len(offsets) == 1 else \
            np.repeat(np.arange(n), np.diff(offsets[1]))
        xy, counts = _distinct(xy, line_at, np.ones(len(xy), bool))
        return mvt.path_commands(xy, counts, line_feature, n, closed=False)
    ring_at, polygon_at = offsets[0], offsets[1]
    ring_polygon = np.repeat(np.arange(len(polygon_at) - 1), np.diff(polygon_at))
    polygon_feature = np.arange(len(polygon_at) - 1) if len(offsets) == 2 else \
        np.repeat(np.arange(n), np.diff(offsets[2]))
    ring_feature = polygon_feature[ring_polygon]
    keep = np.ones(len(xy), bool)
    keep[ring_at[1:] - 1] = False  # drop each ring's closing point
    xy, counts = _distinct(xy, ring_at, keep)
    return mvt.path_commands(xy, counts, ring_feature, n, closed=True)


def _distinct(xy: np.ndarray, part_at: np.ndarray, keep: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The kept points of each part (line or ring, starting at `part_at`) without those equal
    to the point before them (snapping to the grid makes such repeats), and the points per
    part."""
    repeat = np.zeros(len(xy), bool)
    repeat[1:] = (xy[1:] == xy[:-1]).all(axis=1)
    repeat[part_at[:-1]] = False  # a part's first point is never a repeat
    keep = keep & ~repeat
    part = np.repeat(np.arange(len(part_at) - 1), np.diff(part_at))
    return xy[keep], np.bincount(part[keep], minlength=len(part_at) - 1)


# -- the cache of encoded tiles ----------------------------------------------------------------

CACHE_MB = 128  # default of HUB_OGC_TILE_CACHE_MB


def cache_bytes() -> int:
    """HUB_OGC_TILE_CACHE_MB (MiB per worker, default 128; 0: keep no tiles)."""
    return memory.megabytes("HUB_OGC_TILE_CACHE_MB", CACHE_MB)


class TileCache:
    """Encoded tiles by (dataset, version, z, x, y), least recently used dropped first.

    A tile is rendered once however many requests ask for it at the same time (`make`): the
    first renders, the others wait for its bytes (on the event loop: `pending`). Without that,
    a map opened by many users at once (or a new version of a layer) has every worker render
    the same low-zoom tile, and the pool answers 503 to the rest."""

    def __init__(self, max_bytes: int = CACHE_MB << 20):
        self.max_bytes = max_bytes
        self.rendered: Counter[str] = Counter()  # per dataset: tiles rendered (not from cache)
        self._tiles: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._making = SingleFlight()

    def pending(self, key: tuple[Any, ...]) -> Future[None] | None:
        """Done when the tile now being rendered is (None: none is)."""
        return self._making.pending(key)

    def make(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> bytes:
        """The cached tile, or `render()`'s bytes, rendered by one caller at a time per key.
        `key[0]` is the dataset's name."""
        def rendered() -> bytes:
            self.rendered[key[0]] += 1
            found = render()
            self.put(key, found)
            return found
        return self._making.run(key, lambda: self.get(key), rendered)

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            found = self._tiles.get(key)
            if found is not None:
                self._tiles.move_to_end(key)
            return found

    def discard(self, key: tuple[Any, ...]) -> None:
        """Forget a tile (one served from elsewhere now)."""
        with self._lock:
            found = self._tiles.pop(key, None)
            if found is not None:
                self._bytes -= len(found) + 100

    @property
    def nbytes(self) -> int:
        """Bytes held (each tile's and 100 for its entry)."""
        return self._bytes

    def put(self, key: tuple[Any, ...], data: bytes) -> None:
        with self._lock:
            if key in self._tiles:
                return
            self._tiles[key] = data
            self._bytes += len(data) + 100
            while self._bytes > self.max_bytes and self._tiles:
                _, old = self._tiles.popitem(last=False)
                self._bytes -= len(old) + 100
