"""Versions of the answering datasets in memory: rows, shapes and one point per row.

Versions are immutable, so a table read once is kept, keyed by (dataset, version, checksum);
a new version gets a new key and the old table ages out. Reading costs time that grows with the
data: callers do it off the event loop (see `hub.places.routes`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import shapely
from pyproj import Geod

from hub.store.geoparquet import BBOX_COLUMN, GEOMETRY_COLUMN
from hub.store.versions import Store, Version

GEOD = Geod(ellps="WGS84")
DISTANCE_KIND = "straight-line"  # along the earth's surface (WGS84 geodesic), not by road


@dataclass(frozen=True)
class Table:
    """One version: its rows (JSON-ready values), shapes and a point per row (lon, lat)."""

    name: str
    version: int
    checksum: str
    rows: list[dict[str, Any]]
    shapes: np.ndarray  # shapely geometries (None where a row has none)
    lon: np.ndarray
    lat: np.ndarray
    kinds: np.ndarray  # how each point was chosen: "point", "centroid", "point-on-surface"

    @property
    def key(self) -> tuple[str, int, str]:
        return self.name, self.version, self.checksum

    def distances(self, lon: float, lat: float) -> np.ndarray:
        """Metres from (lon, lat) to each row's point, along the earth's surface."""
        if not len(self.rows):
            return np.zeros(0)
        _, _, metres = GEOD.inv(np.full(len(self.lon), lon), np.full(len(self.lat), lat),
                                self.lon, self.lat)
        return np.where(np.isnan(self.lon), np.inf, metres)

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]


def read_table(store: Store, version: Version) -> Table:
    """Read a version's file (checked against its checksum, see `Store.ensure_sound`)."""
    store.ensure_sound(version)
    with store.reading(version):
        arrow = pq.read_table(version.source())
    wkb = (arrow.column(GEOMETRY_COLUMN).to_pylist()
           if GEOMETRY_COLUMN in arrow.column_names else [None] * arrow.num_rows)
    attributes = arrow.drop_columns([c for c in (GEOMETRY_COLUMN, BBOX_COLUMN)
                                     if c in arrow.column_names])
    rows = [{k: _plain(v) for k, v in row.items()} for row in attributes.to_pylist()]
    shapes = shapely.from_wkb(np.array(wkb, dtype=object))
    lon, lat, kinds = representative_points(shapes)
    return Table(version.dataset, version.version, version.checksum, rows, shapes, lon, lat,
                 kinds)


def representative_points(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A point for each shape: a point itself; else its centroid where that lies inside the
    shape, else a point on its surface (a bent municipality's centroid may lie outside)."""
    n = len(shapes)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    kinds = np.full(n, "", dtype=object)
    present = ~shapely.is_missing(shapes) & ~shapely.is_empty(shapes)
    if not present.any():
        return lon, lat, kinds
    chosen = shapes[present]
    points = shapely.get_type_id(chosen) == 0
    centroids = shapely.centroid(chosen)
    inside = points | shapely.contains(chosen, centroids)
    where = np.where(inside, centroids, shapely.point_on_surface(chosen))
    lon[present], lat[present] = shapely.get_x(where), shapely.get_y(where)
    kinds[present] = np.where(points, "point", np.where(inside, "centroid", "point-on-surface"))
    return lon, lat, kinds


def _plain(value: Any) -> Any:
    """A value as JSON has it: dates and times as ISO text, decimals as numbers, NaN as
    null."""
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Tables:
    """The tables read, least recently used dropped first."""

    def __init__(self, store: Store, size: int = 16):
        self.store, self.size = store, size
        self._tables: OrderedDict[tuple[str, int, str], Table] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, version: Version) -> Table | None:
        key = (version.dataset, version.version, version.checksum)
        with self._lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
            return table

    def load(self, version: Version) -> Table:
        """The table of a version, read now if it is not in memory (not on the event loop)."""
        table = self.cached(version)
        if table is not None:
            return table
        table = read_table(self.store, version)
        with self._lock:
            self._tables[table.key] = table
            while len(self._tables) > self.size:
                self._tables.popitem(last=False)
        return table
