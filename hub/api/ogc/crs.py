"""Coordinate reference systems offered by the OGC API (Features Part 2, CRS by reference).

The store keeps every geometry in OGC:CRS84 (lon, lat). Output in another CRS follows that CRS's
authority axis order: EPSG:4326 is (lat, lon); the projected systems are (easting, northing).
A `bbox` given with `bbox-crs` is read in that CRS's axis order and turned into a CRS84 box.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from pyproj import Transformer

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


@dataclass(frozen=True)
class Crs:
    """One offered CRS: its URI, the pyproj code and how its axes are ordered."""

    uri: str
    code: str  # for pyproj
    title: str
    geographic: bool
    lat_first: bool  # authority axis order is (lat, lon)

    @property
    def header(self) -> str:
        """The value of a `Content-Crs` header: the URI in angle brackets."""
        return f"<{self.uri}>"


SUPPORTED: dict[str, Crs] = {c.uri: c for c in (
    Crs(CRS84, "OGC:CRS84", "WGS 84 (Länge, Breite)", True, False),
    Crs(EPSG + "4326", "EPSG:4326", "WGS 84 (Breite, Länge)", True, True),
    Crs(EPSG + "25832", "EPSG:25832", "ETRS89 / UTM Zone 32N", False, False),
    Crs(EPSG + "25833", "EPSG:25833", "ETRS89 / UTM Zone 33N", False, False),
    Crs(EPSG + "3857", "EPSG:3857", "WGS 84 / Pseudo-Mercator", False, False),
)}
DEFAULT = SUPPORTED[CRS84]
PROJECTED_DECIMALS = 3  # millimetres are plenty for metre-based output

_local = threading.local()  # pyproj transformers are not shared between threads


def _transformer(source: str, target: str) -> Transformer:
    cache: dict[tuple[str, str], Transformer] = _local.__dict__.setdefault("cache", {})
    key = (source, target)
    if key not in cache:
        cache[key] = Transformer.from_crs(source, target, always_xy=True)
    return cache[key]


def lookup(uri: str) -> Crs | None:
    return SUPPORTED.get(uri.strip())


def bbox_to_crs84(box: tuple[float, float, float, float], crs: Crs
                  ) -> tuple[float, float, float, float]:
    """A box given in `crs` (its axis order) as (minlon, minlat, maxlon, maxlat)."""
    a, b, c, d = box
    if crs.geographic:
        return (b, a, d, c) if crs.lat_first else (a, b, c, d)
    xmin, ymin, xmax, ymax = _transformer(crs.code, "OGC:CRS84").transform_bounds(
        a, b, c, d, densify_pts=21)
    return (float(xmin), float(ymin), float(xmax), float(ymax))


def to_crs(xy: np.ndarray, crs: Crs) -> np.ndarray:
    """(n, 2) lon/lat as (n, 2) x/y of a projected `crs`, unrounded (for filtering)."""
    x, y = _transformer("OGC:CRS84", crs.code).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def to_crs84(xy: np.ndarray, crs: Crs) -> np.ndarray:
    """(n, 2) x/y of a projected `crs` as (n, 2) lon/lat."""
    x, y = _transformer(crs.code, "OGC:CRS84").transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def from_crs84(xy: np.ndarray, crs: Crs) -> np.ndarray:
    """(n, 2) lon/lat coordinates as (n, 2) coordinates in `crs`, in its axis order."""
    if crs.geographic:
        return xy[:, ::-1] if crs.lat_first else xy
    x, y = _transformer("OGC:CRS84", crs.code).transform(xy[:, 0], xy[:, 1])
    return np.round(np.column_stack([x, y]), PROJECTED_DECIMALS)


def box_from_crs84(box: list[float], crs: Crs) -> list[float]:
    """A CRS84 box (e.g. a collection extent) in `crs`, in its axis order."""
    if crs.geographic:
        return [box[1], box[0], box[3], box[2]] if crs.lat_first else list(box)
    return [round(v, PROJECTED_DECIMALS) for v in _transformer("OGC:CRS84", crs.code)
            .transform_bounds(*box, densify_pts=21)]
