"""One version of a dataset held in memory for serving, and the row selections made from it.

Versions are immutable files, so everything derived from one — the Arrow table, the bounding boxes
as numpy arrays, a grid index over them, the temporal property as integers — is built once and
kept, keyed by (dataset, version); a new version simply gets a new key and the old one ages out
of the LRU. A request's filters (bbox, datetime, property equality) become a *selection*: the
sorted row numbers that match, also cached, so paging through a result (offset 0, 100, 200, …)
slices one array instead of filtering again.

The cache holds layers up to a number of bytes (`HUB_LAYER_CACHE_MB`) and evicts the least
recently used. A server's layers are files mapped into memory (`hub.api.ogc.mapped`), written
once per version into the local layer cache folder and shared by all its workers through the
page cache; reading a layer evicted before only maps those files again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from hub.api.ogc import cql2_eval, mapped
from hub.api.ogc.crs import Crs, bbox_to_crs84, to_crs, to_crs84
from hub.api.ogc.params import Area
from hub.api.ogc.work import SingleFlight
from hub.schema import Field, TableSchema, parse_schema
from hub.store.geoparquet import BBOX_COLUMN, GEOMETRY_COLUMN
from hub.store.versions import Version

if TYPE_CHECKING:
    from hub.api.ogc import cold
    from hub.api.ogc.work import Deadline

ALL = None  # a selection that is every row, in order
SHAPE_WEIGHT = 20  # cost per candidate of an exact geometry test (lines and polygons)
SHAPE_BYTES = 100  # memory of a shapely geometry besides its WKB (an estimate, for the bound)
CACHE_MB = 1024  # default of HUB_LAYER_CACHE_MB


@dataclass(frozen=True)
class Meta:
    """What the collection documents need, read from the version record and Parquet footer."""

    schema: TableSchema
    queryables: dict[str, Field]
    temporal: Field | None  # the first date/datetime field: what `datetime` filters on
    temporal_extent: tuple[str | None, str | None] | None
    id_field: Field | None  # single-field primary key, else None (ids are row numbers)


def describe(version: Version) -> Meta:
    """Facts about a version without reading its data (footer statistics only)."""
    schema = parse_schema(version.schema, f"{version.dataset} v{version.version}",
                          version.dataset)
    queryables = {f.name: f for f in schema.columns}
    temporal = next((f for f in schema.columns if f.type in ("date", "datetime")), None)
    extent = _temporal_extent(version, temporal) if temporal else None
    id_field = schema.field(schema.primary_key[0]) if len(schema.primary_key) == 1 else None
    return Meta(schema, queryables, temporal, extent, id_field)


def _temporal_extent(version: Version, f: Field) -> tuple[str | None, str | None]:
    meta = pq.ParquetFile(version.source()).metadata
    index = meta.schema.to_arrow_schema().get_field_index(f.name)
    lows, highs = [], []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(index).statistics
        if stats is not None and stats.has_min_max:
            lows.append(stats.min)
            highs.append(stats.max)
    return (_rfc3339(min(lows)) if lows else None, _rfc3339(max(highs)) if highs else None)


def _rfc3339(value: Any) -> str:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return f"{value.isoformat()}T00:00:00Z"


class GridIndex:
    """A uniform grid over feature boxes, as a sort order and per-cell offsets (CSR).

    Each feature sits in the cell of its box centre; features wider than a cell are kept in an
    overflow list that every query checks. A query box is widened by the largest half-extent
    of the gridded features, so the cells it covers hold every candidate.
    """

    TARGET_PER_CELL = 16
    FACTS = ("size", "x0", "y0", "cw", "ch", "pad_x", "pad_y")
    ARRAYS = ("rows", "starts", "overflow")

    def __init__(self, xmin: np.ndarray, ymin: np.ndarray, xmax: np.ndarray, ymax: np.ndarray):
        valid = ~np.isnan(xmin)
        n = int(valid.sum())
        self.size = int(np.clip(np.sqrt(max(n, 1) / self.TARGET_PER_CELL), 1, 1024))
        if n:
            self.x0, self.y0 = float(xmin[valid].min()), float(ymin[valid].min())
            x1, y1 = float(xmax[valid].max()), float(ymax[valid].max())
        else:
            self.x0 = self.y0 = x1 = y1 = 0.0
        self.cw = max((x1 - self.x0) / self.size, 1e-12)
        self.ch = max((y1 - self.y0) / self.size, 1e-12)
        with np.errstate(invalid="ignore"):
            hx, hy = (xmax - xmin) / 2, (ymax - ymin) / 2
            big = valid & ((hx > self.cw) | (hy > self.ch))
        small = valid & ~big
        self.overflow = np.flatnonzero(big)
        self.pad_x = float(hx[small].max()) if small.any() else 0.0
        self.pad_y = float(hy[small].max()) if small.any() else 0.0
        rows = np.flatnonzero(small)
        ix = self._cell(xmin[rows] + hx[rows], self.x0, self.cw)
        iy = self._cell(ymin[rows] + hy[rows], self.y0, self.ch)
        cell = iy * self.size + ix
        order = np.argsort(cell, kind="stable")
        self.rows = rows[order]
        self.starts = np.searchsorted(cell[order], np.arange(self.size * self.size + 1))

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The arrays and numbers `restore` builds the same index from."""
        return ({f"grid_{a}": getattr(self, a) for a in self.ARRAYS},
                {f: getattr(self, f) for f in self.FACTS})

    @classmethod
    def restore(cls, arrays: dict[str, np.ndarray], facts: dict[str, float]) -> GridIndex:
        index = cls.__new__(cls)
        for a in cls.ARRAYS:
            setattr(index, a, arrays[f"grid_{a}"])
        for f in cls.FACTS:
            setattr(index, f, facts[f])
        return index

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, a).nbytes for a in self.ARRAYS)

    def _cell(self, v: np.ndarray | float, origin: float, width: float) -> np.ndarray:
        return np.clip(np.floor((np.asarray(v) - origin) / width), 0, self.size - 1).astype(
            np.int64)

    def _ranges(self, box: tuple[float, float, float, float]
                ) -> tuple[np.ndarray, np.ndarray] | None:
        """Per grid line the box covers: start and end offsets into `rows`; None if outside."""
        x0, y0, x1, y1 = box
        if x1 + self.pad_x < self.x0 or y1 + self.pad_y < self.y0 or \
                x0 - self.pad_x > self.x0 + self.cw * self.size or \
                y0 - self.pad_y > self.y0 + self.ch * self.size:
            return None
        ix0, ix1 = self._cell(x0 - self.pad_x, self.x0, self.cw), self._cell(
            x1 + self.pad_x, self.x0, self.cw)
        iy0, iy1 = self._cell(y0 - self.pad_y, self.y0, self.ch), self._cell(
            y1 + self.pad_y, self.y0, self.ch)
        lines = np.arange(iy0, iy1 + 1) * self.size
        return self.starts[lines + ix0], self.starts[lines + ix1 + 1]

    def count(self, box: tuple[float, float, float, float]) -> int:
        """How many rows `candidates(box)` gives, without gathering them."""
        ranges = self._ranges(box)
        inside = 0 if ranges is None else int((ranges[1] - ranges[0]).sum())
        return inside + len(self.overflow)

    def candidates(self, box: tuple[float, float, float, float]) -> tuple[np.ndarray, int]:
        """Row numbers that may intersect `box` (unsorted), and how many there are."""
        ranges = self._ranges(box)
        if ranges is None:
            return self.overflow, len(self.overflow)
        lo, hi = ranges
        count = int((hi - lo).sum()) + len(self.overflow)
        parts = [self.rows[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
        parts.append(self.overflow)
        return (np.concatenate(parts) if len(parts) > 1 else parts[0]), count


def box_arrays(column: pa.ChunkedArray, keys: tuple[str, ...]) -> list[np.ndarray]:
    """Fields of the `bbox` covering column as float arrays, NaN where a row has no box."""
    bbox = column.combine_chunks()
    valid = bbox.is_valid().to_numpy(zero_copy_only=False)
    return [np.where(valid, bbox.field(k).to_numpy(zero_copy_only=False), np.nan) for k in keys]


def _read(version: Version) -> mapped.Files:
    """The version's table (without the bounding boxes) and, for a geodataset, its boxes as
    one (4, rows) array (NaN where a row has no geometry) and their grid index."""
    table = pq.read_table(version.source(), memory_map=True)
    with contextlib.suppress(pa.ArrowInvalid):  # > 2 GiB in one column: keep the chunks
        table = table.combine_chunks()
    if BBOX_COLUMN not in table.column_names:
        return mapped.Files(table, {}, {})
    boxes = np.stack(box_arrays(table.column(BBOX_COLUMN), ("xmin", "ymin", "xmax", "ymax")))
    grid, facts = GridIndex(*boxes).state()
    return mapped.Files(table.drop_columns([BBOX_COLUMN]), {"boxes": boxes, **grid},
                        {"grid": facts})


def _files(version: Version, folder: Path | None) -> tuple[mapped.Files, bool]:
    """The version's files, mapped from `folder` when it can be (True) or read into memory."""
    if folder is not None:
        found = mapped.load(folder, version)
        if found is not None:
            return found, True
    files = _read(version)
    if folder is None:
        return files, False
    try:
        mapped.save(folder, version, files)
    except OSError:  # the cache folder cannot be written (full, read-only): serve from memory
        return files, False
    found = mapped.load(folder, version)
    return (found, True) if found is not None else (files, False)


class Layer:
    """A dataset version in memory: attributes, WKB geometries, boxes, index, temporal values."""

    def __init__(self, version: Version, meta: Meta, folder: Path | None = None, *,
                 part: tuple[mapped.Files, np.ndarray] | None = None):
        """Read the version, from the mapped files in `folder` (written first if missing or
        unusable, see `hub.api.ogc.mapped`), or into memory when `folder` is None.

        `part` is instead some of the version's rows, already read (`hub.api.ogc.cold`): their
        files (without a grid index) and their row numbers in the version, ascending."""
        self.version, self.meta = version, meta
        if part is None:
            files, self.mapped = _files(version, folder)
        else:
            files, self.mapped = part[0], False
        self.numbers: np.ndarray | None = None if part is None else part[1]
        self.folder = folder if self.mapped else None  # what is built from it may go there too
        table = files.table
        self.rows = table.num_rows
        names = table.column_names
        self.geometry: pa.ChunkedArray | None = table.column(GEOMETRY_COLUMN) \
            if GEOMETRY_COLUMN in names else None
        self.properties = table.drop_columns([GEOMETRY_COLUMN]) \
            if GEOMETRY_COLUMN in names else table
        self.points = meta.schema.geometry is not None and \
            set(version.geometry_types) <= {"Point"}
        self.index: GridIndex | None = None
        self.boxes: tuple[np.ndarray, ...] | None = None
        if "boxes" in files.arrays:
            self.boxes = tuple(files.arrays["boxes"])
        if "grid" in files.facts:
            self.index = GridIndex.restore(files.arrays, files.facts["grid"])
        self._shapes: np.ndarray | None = None
        self._times: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()
        self.derived: dict[str, Any] = {}  # built from this version by other modules (tiles)
        self.derived_lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Memory the layer holds: its data (mapped or not) and what was built from it."""
        size = self.properties.nbytes + (self.geometry.nbytes if self.geometry else 0)
        size += sum(b.nbytes for b in self.boxes) if self.boxes else 0
        size += self.index.nbytes if self.index else 0
        size += sum(a.nbytes for a in self._times) if self._times is not None else 0
        if self._shapes is not None and self.geometry is not None:
            size += self.geometry.nbytes + len(self._shapes) * SHAPE_BYTES
        return size

    # -- filters ----------------------------------------------------------------------------

    def select(self, bbox: Area | None, interval: tuple[int | None, int | None] | None,
               filters: tuple[tuple[str, Any], ...], cql: Any = None,
               deadline: Deadline | None = None) -> np.ndarray | None:
        """Sorted row numbers matching every filter, or ALL (None) when nothing filters.

        `cql` is a CQL2 tree (`cql2.parse`), evaluated last on the rows left by the others;
        `deadline` is checked between the steps."""
        def check() -> None:
            if deadline is not None:
                deadline.check()
        rows: np.ndarray | None = ALL
        if bbox is not None:
            rows = self.in_area(bbox)
        for name, value in filters:
            check()
            rows = self._where(rows, self._equals(name, value))
        if interval is not None and interval != (None, None):
            check()
            rows = self._where(rows, lambda r: self._during(r, interval))
        if cql is not None:
            rows = cql2_eval.select(cql, self, rows, deadline)
        return rows

    def cost(self, bbox: Area | None, interval: tuple[int | None, int | None] | None,
             filters: tuple[tuple[str, Any], ...], cql: Any = None) -> tuple[int, int]:
        """Estimated work of `select` in row-conditions: all of it, and the CQL2 filter's part.

        The conditions after `bbox` test only its candidates (counted in the grid index)."""
        rows, total = self.rows, 0
        if bbox is not None:
            x0, _, x1, _ = bbox.crs84
            if self.index is not None and x0 <= x1:
                rows = self.index.count(bbox.crs84)
            total += rows * (1 if self.points else SHAPE_WEIGHT)
        total += rows * (len(filters) + (interval is not None))
        filter_cost = rows * cql2_eval.weight(cql) if cql is not None else 0
        return total + filter_cost, filter_cost

    def in_area(self, area: Area) -> np.ndarray:
        """Sorted rows whose geometry meets a box (antimeridian and projected boxes too)."""
        x0, y0, x1, y1 = area.crs84
        if x0 > x1:  # crosses the antimeridian: two boxes
            rows = np.union1d(self._in_box((x0, y0, 180.0, y1)),
                              self._in_box((-180.0, y0, x1, y1)))
        else:
            rows = self._in_box(area.crs84)
        if not area.crs.geographic and len(rows):
            rows = self._in_projected_box(rows, area)
        return rows

    def in_geometry(self, geom: shapely.Geometry, crs: Crs) -> np.ndarray:
        """Sorted rows whose geometry intersects `geom`, given in `crs` with x/y (lon/lat)
        axis order; the test is made in that CRS."""
        if crs.geographic:
            envelope = tuple(shapely.bounds(geom).tolist())
        else:
            envelope = bbox_to_crs84(tuple(shapely.bounds(geom).tolist()), crs)
        rows = self._in_box(envelope)
        if not len(rows):
            return rows
        shapely.prepare(geom)
        if self.points and self.boxes is not None:
            xy = np.column_stack([self.boxes[0][rows], self.boxes[1][rows]])
            if not crs.geographic:
                xy = to_crs(xy, crs)
            return rows[shapely.intersects_xy(geom, xy[:, 0], xy[:, 1])]
        shapes = self.shapes()[rows]
        if not crs.geographic:
            shapes = shapely.transform(shapes, lambda xy: to_crs(xy, crs))
        return rows[shapely.intersects(shapes, geom)]

    def _where(self, rows: np.ndarray | None,
               test: Callable[[np.ndarray | None], np.ndarray]) -> np.ndarray:
        """Apply a row test to the current selection (or to all rows)."""
        keep = test(rows)
        return np.flatnonzero(keep) if rows is None else rows[keep]

    def _equals(self, name: str, value: Any) -> Callable[[np.ndarray | None], np.ndarray]:
        def test(rows: np.ndarray | None) -> np.ndarray:
            column = self.properties.column(name)
            if rows is not None:
                column = column.take(pa.array(rows))
            mask = pc.fill_null(pc.equal(column, pa.scalar(value, column.type)), False)
            return mask.to_numpy(zero_copy_only=False)
        return test

    def _in_box(self, box: tuple[float, float, float, float]) -> np.ndarray:
        if self.boxes is None:
            return np.empty(0, np.int64)
        xmin, ymin, xmax, ymax = self.boxes
        x0, y0, x1, y1 = box
        candidates, count = self.index.candidates(box) if self.index is not None \
            else (None, self.rows)  # a part without an index (`cold`): every row
        if candidates is None or count > self.rows // 4:  # one vectorised pass is faster
            hit = (xmin <= x1) & (xmax >= x0) & (ymin <= y1) & (ymax >= y0)
            rows = np.flatnonzero(hit)
        else:
            c = candidates
            rows = np.sort(c[(xmin[c] <= x1) & (xmax[c] >= x0) & (ymin[c] <= y1)
                             & (ymax[c] >= y0)])
        if not self.points and len(rows):  # boxes overlap; do the geometries?
            inside = (xmin[rows] >= x0) & (xmax[rows] <= x1) & (ymin[rows] >= y0) \
                & (ymax[rows] <= y1)
            unsure = rows[~inside]
            if len(unsure):
                hits = shapely.intersects(self.shapes()[unsure], shapely.box(*box))
                rows = np.sort(np.concatenate([rows[inside], unsure[hits]]))
        return rows

    def _in_projected_box(self, rows: np.ndarray, area: Area) -> np.ndarray:
        """Of the rows in the CRS84 envelope, those that meet the box in its own CRS."""
        a, b, c, d = area.box
        if self.points and self.boxes is not None:
            xy = to_crs(np.column_stack([self.boxes[0][rows], self.boxes[1][rows]]), area.crs)
            keep = (xy[:, 0] >= a) & (xy[:, 0] <= c) & (xy[:, 1] >= b) & (xy[:, 1] <= d)
            return rows[keep]
        outline = shapely.segmentize(shapely.box(a, b, c, d), max(c - a, d - b) / 32)
        outline = shapely.transform(outline, lambda xy: to_crs84(xy, area.crs))
        return rows[shapely.intersects(self.shapes()[rows], outline)]

    def _during(self, rows: np.ndarray | None, interval: tuple[int | None, int | None]
                ) -> np.ndarray:
        start, end, known = self.times()
        if rows is not None:
            start, end, known = start[rows], end[rows], known[rows]
        lo, hi = interval
        keep = np.ones(len(start), bool)
        if hi is not None:
            keep &= start <= hi
        if lo is not None:
            keep &= end >= lo
        return keep | ~known  # features without a time always match (/ats/core/fc-time-response)

    # -- lazily built structures --------------------------------------------------------------

    def times(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: start and end (µs, UTC, inclusive) of the temporal property, and validity."""
        with self._lock:
            if self._times is None:
                f = self.meta.temporal
                assert f is not None
                column = self.properties.column(f.name).combine_chunks()
                known = column.is_valid().to_numpy(zero_copy_only=False)
                if f.type == "date":
                    days = pc.fill_null(column.cast(pa.int32()), 0).to_numpy().astype(np.int64)
                    start = days * 86_400_000_000
                    end = start + 86_400_000_000 - 1
                else:
                    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
                    start = pc.fill_null(micros, 0).to_numpy()
                    end = start
                self._times = (start, end, known)
            return self._times

    def shapes(self) -> np.ndarray:
        """Shapely geometries of every row (for exact tests on non-point layers)."""
        with self._lock:
            if self._shapes is None:
                assert self.geometry is not None
                self._shapes = shapely.from_wkb(self.geometry.to_numpy())
            return self._shapes

    def find(self, feature_id: str) -> int | None:
        """The row of a feature id: the primary key's value, else the 1-based row number."""
        f = self.meta.id_field
        if f is None:
            if not feature_id.isdigit():
                return None
            row = int(feature_id) - 1
            return row if 0 <= row < self.rows else None
        column = self.properties.column(f.name)
        try:
            value: Any = pa.scalar(feature_id).cast(column.type)  # "7" -> 7, a date key, ...
            at = pc.index(column, value).as_py()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
            return None  # not a value of the key's type: no such feature
        return None if at < 0 else at


class LayerCache:
    """Layers and selections by (dataset, version), least recently used evicted first.

    Layers are held up to `max_bytes` (`Layer.nbytes`; the one asked for last is kept even
    when it alone is larger); with a `folder`, their data are files mapped from there."""

    def __init__(self, max_bytes: int = CACHE_MB << 20, folder: Path | None = None,
                 max_selection_bytes: int = 256 << 20):
        self.max_bytes, self.folder = max_bytes, folder
        self.max_selection_bytes = max_selection_bytes
        self.reads: Counter[str] = Counter()  # per dataset: footers and versions read
        self._layers: OrderedDict[tuple[str, int], Layer] = OrderedDict()
        self._metas: dict[tuple[str, int, str], Meta] = {}
        self._selections: OrderedDict[tuple[Any, ...], np.ndarray | None] = OrderedDict()
        self._selection_bytes = 0
        self._lock = threading.Lock()
        self._loading = SingleFlight()
        self.builds = ThreadPoolExecutor(1, thread_name_prefix="layer-build")  # `build`
        self._failed: dict[tuple[str, int], BaseException] = {}
        self._sources: dict[tuple[str, int, str], cold.Source] = {}

    @classmethod
    def for_store(cls, root: Path) -> LayerCache:
        """The server's cache: `HUB_LAYER_CACHE_MB` (default 1024) bounds it, its files are
        in `HUB_LAYER_CACHE_DIR` (default `cache/layers` in the store's folder)."""
        text = os.environ.get("HUB_LAYER_CACHE_MB", "").strip() or str(CACHE_MB)
        try:
            megabytes = float(text)
        except ValueError:
            megabytes = 0
        if not megabytes > 0:
            raise ValueError(f"HUB_LAYER_CACHE_MB={text!r}: expected a positive number of MiB")
        folder = os.environ.get("HUB_LAYER_CACHE_DIR", "").strip()
        return cls(int(megabytes * (1 << 20)),
                   Path(folder) if folder else root / "cache" / "layers")

    @property
    def nbytes(self) -> int:
        """Bytes of the layers held now."""
        with self._lock:
            return sum(layer.nbytes for layer in self._layers.values())

    @property
    def selection_bytes(self) -> int:
        """Bytes of the selections held (bounded by `max_selection_bytes`)."""
        return self._selection_bytes

    def held(self) -> list[tuple[str, int]]:
        """The (dataset, version) of the layers held, least recently used first."""
        with self._lock:
            return list(self._layers)

    def meta(self, version: Version) -> Meta:
        key = (version.dataset, version.version, version.checksum)
        found = self._metas.get(key)
        if found is None:
            self.reads[version.dataset] += 1
            found = describe(version)
            with self._lock:
                for old in [k for k in self._metas if k[0] == version.dataset]:
                    del self._metas[old]  # one version per dataset is current
                self._metas[key] = found
        return found

    def ready(self, version: Version) -> bool:
        """Is the version in memory, or are its mapped files in place (mapping them is cheap)?"""
        with self._lock:
            if (version.dataset, version.version) in self._layers:
                return True
        return self.folder is not None and mapped.ready(self.folder, version)

    def cold(self, version: Version) -> bool:
        """Is the version to be answered from its file (`source`)? Yes unless it is `ready`
        or its background read failed (then a request reads it itself, as without `build`,
        and meets the error)."""
        return not self.ready(version) and (version.dataset, version.version) not in self._failed

    def build(self, version: Version, read: Callable[[], object]) -> None:
        """Read the version in the background (`read` calls `layer`, which reads a version
        once at a time) unless that is under way."""
        key = (version.dataset, version.version)
        if self._loading.pending(key) is not None:
            return

        def background() -> None:
            try:
                read()
            except Exception as exc:  # kept: the next request meets it itself
                self._failed = {k: e for k, e in self._failed.items() if k[0] != key[0]}
                self._failed[key] = exc
        self.builds.submit(background)

    def source(self, version: Version) -> cold.Source:
        """The version's file for reading some of its row groups (its footer read once)."""
        from hub.api.ogc import cold  # cold builds Layers: imported here, not in a cycle

        key = (version.dataset, version.version, version.checksum)
        found = self._sources.get(key)
        if found is None:
            found = cold.Source(version, self.meta(version))
            with self._lock:
                for old in [k for k in self._sources if k[0] == version.dataset]:
                    del self._sources[old]  # one version per dataset is current
                self._sources[key] = found
        return found

    def pending(self, version: Version) -> Future[None] | None:
        """Done when the version now being read is in memory (None: none is being read)."""
        return self._loading.pending((version.dataset, version.version))

    def layer(self, version: Version, on_miss: Callable[[], None] = lambda: None) -> Layer:
        """The version in memory; `on_miss` is called first when it must be read (and may
        raise to refuse that here). One caller reads a version; the others wait for it."""
        key = (version.dataset, version.version)

        def cached() -> Layer | None:
            with self._lock:
                if key in self._layers:
                    self._layers.move_to_end(key)
                    return self._layers[key]
            return None
        found = cached()
        if found is not None:
            return found
        on_miss()

        def read() -> Layer:
            self.reads[version.dataset] += 1
            layer = Layer(version, self.meta(version), self.folder)
            with self._lock:
                self._failed.pop(key, None)
                self._layers[key] = layer
                for old in [k for k in self._layers if k[0] == key[0] and k != key]:
                    self._forget(old)  # a dataset's older versions are not served any more
                size = sum(held.nbytes for held in self._layers.values())
                while size > self.max_bytes and len(self._layers) > 1:
                    size -= self._layers[next(iter(self._layers))].nbytes
                    self._forget(next(iter(self._layers)))
            return layer
        return self._loading.run(key, cached, read)

    def _forget(self, key: tuple[str, int]) -> None:
        self._layers.pop(key, None)
        for sel in [s for s in self._selections if s[:2] == key]:
            self._drop_selection(sel)

    def selection(self, layer: Layer, key: tuple[Any, ...],
                  on_miss: Callable[[], None] = lambda: None,
                  deadline: Deadline | None = None) -> np.ndarray | None:
        """The rows of a selection (see `Layer.select`), cached; `on_miss` is called before
        one is computed (and may raise to refuse that here)."""
        full = (layer.version.dataset, layer.version.version, *key)
        with self._lock:
            if full in self._selections:
                self._selections.move_to_end(full)
                return self._selections[full]
        on_miss()
        rows = layer.select(*key, deadline=deadline)
        with self._lock:
            if full not in self._selections:
                self._selections[full] = rows
                self._selection_bytes += rows.nbytes if rows is not None else 0
                while self._selection_bytes > self.max_selection_bytes and self._selections:
                    self._drop_selection(next(iter(self._selections)))
        return rows

    def _drop_selection(self, key: tuple[Any, ...]) -> None:
        rows = self._selections.pop(key)
        self._selection_bytes -= rows.nbytes if rows is not None else 0
