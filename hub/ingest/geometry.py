"""Geometry: build from lon/lat, WKT or native WKB, reproject to OGC:CRS84, check and repair.

Points from coordinate columns take a numpy fast path (no per-row Python objects); other
geometries go through shapely's vectorised functions. Every problem becomes a `schema.Problem`
(rule `geometry`, `crs`, `swapped-axes` or `extent`; its code from `hub.problem_codes`) so the
run treats it like any other validation error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyarrow as pa
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from hub.errors import SourceError
from hub.schema import Problem, problem_rows

STORAGE_CRS = "OGC:CRS84"
_GEOGRAPHIC = {"OGC:CRS84", "EPSG:4326", "EPSG:4258", "EPSG:4937"}
TYPE_NAMES = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                       "MultiLineString", "MultiPolygon", "GeometryCollection"])
_POINT_WKB = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


@dataclass(frozen=True)
class Extent:
    """The district's bounding box in CRS84 (with a buffer), used to catch misplaced rows."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    @classmethod
    def around(cls, bbox: list[float], buffer_km: float = 5.0) -> Extent:
        minx, miny, maxx, maxy = bbox
        dlat = buffer_km / 111.0
        dlon = buffer_km / (111.0 * np.cos(np.radians((miny + maxy) / 2)))
        return cls(minx - dlon, miny - dlat, maxx + dlon, maxy + dlat)

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x >= self.minx) & (x <= self.maxx) & (y >= self.miny) & (y <= self.maxy)


@lru_cache(maxsize=64)
def parse_crs(text: str) -> CRS:
    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise SourceError(f"unknown CRS {text!r} (use e.g. EPSG:25833, EPSG:25832, EPSG:31468, "
                          "EPSG:4326)") from None


def crs_name(crs: CRS) -> str:
    """A short identifier such as EPSG:25833, or the CRS's name if it has no authority code."""
    auth = crs.to_authority(min_confidence=70)
    return f"{auth[0]}:{auth[1]}" if auth else crs.name


@lru_cache(maxsize=64)
def to_storage(source: str) -> Transformer | None:
    """Transformer from `source` to CRS84 (lon, lat), or None when no change is needed."""
    crs = parse_crs(source)
    if crs_name(crs) in _GEOGRAPHIC:
        return None
    return Transformer.from_crs(crs, STORAGE_CRS, always_xy=True)


@dataclass
class Geometries:
    """A batch's geometry column in CRS84, plus what happened to it."""

    wkb: pa.Array
    bounds: np.ndarray  # (n, 4) xmin, ymin, xmax, ymax; NaN for missing geometries
    problems: list[Problem] = field(default_factory=list)
    outside: np.ndarray | None = None  # rows outside the district (policy decides)
    reprojected: int = 0
    repaired: int = 0
    types: set[str] = field(default_factory=set)


def point_wkb(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> pa.Array:
    """WKB points built directly in one buffer; rows not `valid` are null."""
    n = len(x)
    records = np.empty(n, dtype=_POINT_WKB)
    records["order"], records["type"], records["x"], records["y"] = 1, 1, x, y
    offsets = np.arange(0, 21 * (n + 1), 21, dtype=np.int32)
    nulls = int(n - valid.sum())
    validity = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.BinaryArray.from_buffers(
        pa.binary(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(records.tobytes())],
        null_count=nulls)


def from_points(x: np.ndarray, y: np.ndarray, raw: pa.Array, crs: str, extent: Extent | None,
                swapped: str) -> Geometries:
    """Points from coordinate columns (NaN = missing or unparseable, reported elsewhere)."""
    problems: list[Problem] = []
    transformer = to_storage(crs)
    known = np.isfinite(x) & np.isfinite(y)
    if transformer is not None:
        lon, lat = transformer.transform(x, y, errcheck=False)
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    else:
        lon, lat = x.astype(np.float64, copy=True), y.astype(np.float64, copy=True)
    ok = known & np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    outside = None
    if extent is not None:
        inside = ok & extent.contains(lon, lat)
        suspicious = np.flatnonzero(known & ~inside)
        if suspicious.size:
            sx, sy = _transformed(transformer, y[suspicious], x[suspicious])
            flip = extent.contains(sx, sy)
            rows = suspicious[flip]
            if rows.size and swapped == "fix":
                lon[rows], lat[rows] = sx[flip], sy[flip]
                ok[rows] = True
            elif rows.size:
                problems.append(Problem("geometry", "swapped-axes",
                                        "coordinates look swapped (x/y or lon/lat): swapped "
                                        "they lie inside the district", rows, raw.take(rows)))
                ok[rows] = False
            outside_rows = suspicious[~flip]
            outside = np.zeros(len(x), dtype=bool)
            outside[outside_rows[ok[outside_rows]]] = True
    bad = np.flatnonzero(known & ~ok & ~problem_rows(len(x), problems))
    if bad.size:
        problems.append(Problem("geometry", "crs",
                                f"coordinates are not valid in {crs} (cannot be transformed)",
                                bad, raw.take(bad), {"crs": crs}))
    wkb = point_wkb(lon, lat, ok)
    bounds = np.column_stack([lon, lat, lon, lat])
    bounds[~ok] = np.nan
    return Geometries(wkb, bounds, problems, outside,
                      reprojected=int(ok.sum()) if transformer else 0,
                      types={"Point"} if ok.any() else set())


def _transformed(transformer: Transformer | None, x: np.ndarray,
                 y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if transformer is None:
        return x, y
    tx, ty = transformer.transform(x, y, errcheck=False)
    return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)



def from_shapes(geoms: np.ndarray, raw: pa.Array, crs: str, extent: Extent | None,
                allowed: tuple[str, ...]) -> Geometries:
    """Any geometries (shapely array; None = missing): check type, reproject, repair.

    A geometry of a type not allowed is still checked for its CRS and extent (every problem
    of a row is reported), but never kept.
    """
    problems: list[Problem] = []
    present = ~shapely.is_missing(geoms)
    wrong = np.zeros(len(geoms), dtype=bool)
    if allowed:
        types = TYPE_NAMES[np.clip(shapely.get_type_id(geoms), 0, 7)]
        wrong = present & ~np.isin(types, allowed)
        if wrong.any():
            rows = np.flatnonzero(wrong)
            problems.append(Problem("geometry", "geometry.type",
                                    f"geometry type not allowed (expected {' or '.join(allowed)})",
                                    rows, pa.array(types[rows]), {"allowed": list(allowed)}))
    transformer = to_storage(crs)
    if transformer is not None and present.any():
        geoms = shapely.transform(
            geoms, lambda x, y: transformer.transform(x, y, errcheck=False), interleaved=False)
    repaired = 0
    invalid = np.flatnonzero(present & ~wrong & ~shapely.is_valid(geoms))
    if invalid.size:
        fixed = shapely.make_valid(geoms[invalid])
        fixed = np.array([_keep_dimension(g, o) for g, o in zip(fixed, geoms[invalid],
                                                                 strict=True)], dtype=object)
        geoms = geoms.copy()
        geoms[invalid] = fixed
        repaired = int(invalid.size)
    bounds = shapely.bounds(geoms)
    finite = present & np.isfinite(bounds).all(axis=1)
    broken = np.flatnonzero(present & ~finite)
    if broken.size:
        problems.append(Problem("geometry", "crs",
                                f"geometry cannot be transformed from {crs}", broken,
                                raw.take(broken), {"crs": crs}))
    outside = None
    if extent is not None:
        hits = ((bounds[:, 2] >= extent.minx) & (bounds[:, 0] <= extent.maxx)
                & (bounds[:, 3] >= extent.miny) & (bounds[:, 1] <= extent.maxy))
        outside = finite & ~hits
    keep = finite & ~wrong
    wkb = pa.array(shapely.to_wkb(np.where(keep, geoms, None)), pa.binary())
    bounds[~keep] = np.nan
    return Geometries(wkb, bounds, problems, outside,
                      reprojected=int(keep.sum()) if transformer else 0, repaired=repaired,
                      types=set(TYPE_NAMES[np.unique(shapely.get_type_id(geoms[keep]))].tolist()))


def _keep_dimension(fixed: shapely.Geometry, original: shapely.Geometry) -> shapely.Geometry:
    """make_valid may return a collection; keep the parts of the original's dimension."""
    if fixed.geom_type != "GeometryCollection":
        return fixed
    dim = shapely.get_dimensions(original)
    parts = [p for p in shapely.get_parts(fixed) if shapely.get_dimensions(p) == dim]
    if not parts:
        return fixed
    return shapely.union_all(parts) if len(parts) > 1 else parts[0]


def parse(values: pa.Array, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Shapely geometries from WKB or WKT; returns them and the rows that did not parse."""
    arr = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    reader = shapely.from_wkb if encoding == "wkb" else shapely.from_wkt
    geoms = reader(arr, on_invalid="ignore")
    given = np.array([v is not None for v in arr], dtype=bool)
    return geoms, np.flatnonzero(given & shapely.is_missing(geoms))
