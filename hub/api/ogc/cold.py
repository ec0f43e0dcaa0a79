"""Answers from a version's GeoParquet file while its layer is not in memory yet.

The first request of a new version on a replica waited for the whole layer to be read
(checksum, the GeoParquet file, the mapped files written: seconds for a million points), and so
did every request of a layer whose mapped files were gone (a small or cleared cache disk). Now
the layer is read in the background (`LayerCache.build`) and meanwhile `/items` and
`/items/{id}` are answered from the file itself, reading only the row groups that can hold the
answer and only the columns it needs:

- A bbox keeps the row groups whose `bbox` covering statistics (per row group the least xmin
  and ymin and the greatest xmax and ymax, written by `hub.store.geoparquet`) meet the box. Of
  those the covering column is read (for points only xmin and ymin: a point's box is itself),
  with the geometry for exact tests of other shapes, and the columns of equality and
  `datetime` filters.
- The rows are selected by the code that selects them in memory (`Layer.select` on that part
  of the version, `Layer.numbers` mapping its rows to the version's), so features, ids, order
  and numberMatched are the warm answer's.
- The page's rows are then read from the row groups they lie in (all columns but the
  covering); an id is looked up in the row groups whose key statistics may hold it.

How much pruning saves depends on how the rows lie in the file: row groups in ingest order are
spatially coherent only when the source is (bench/RESULTS.md, "Workers and the layer cache").
CQL2 filters are not answered here (they may need any column): they wait for the layer.

The whole file's checksum is verified by the background read, not here. Instead the pages read
are checked against their CRC32 (versions are written with page checksums,
`hub.store.geoparquet`): a damaged page fails to read, and as the reads run under
`Store.reading`, the file is then checked and its URLs answer 503. Versions written before
page checksums have none to check: a damaged page there can answer once, until the background
read finds the checksum wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hub.api.ogc import mapped
from hub.api.ogc.layer import Layer, Meta, box_arrays
from hub.api.ogc.params import Area
from hub.store.geoparquet import BBOX_COLUMN, GEOMETRY_COLUMN
from hub.store.versions import Version

if TYPE_CHECKING:
    from hub.api.ogc.work import Deadline

GROUPS_PER_READ = 8  # row groups read between two deadline checks
CORNERS = ("xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True)
class Page:
    """A page of `/items` (or one feature) read from the file."""

    matched: int  # numberMatched
    layer: Layer  # the part of the version that holds the page's rows
    rows: np.ndarray  # the page's rows in `layer`, in order
    groups: int  # row groups read (of `Source.groups`)


def answers(key: tuple[Any, ...]) -> bool:
    """Can a selection (`ItemsQuery.selection_key`) be answered from the file?"""
    return key[3] is None  # bbox, equality and datetime filters: yes; CQL2: no


class Source:
    """A version's file, its footer read once, for reading some of its row groups."""

    def __init__(self, version: Version, meta: Meta):
        self.version, self.meta = version, meta
        self.points = meta.schema.geometry is not None and \
            set(version.geometry_types) <= {"Point"}
        self.metadata = pq.ParquetFile(version.source(), page_checksum_verification=True).metadata
        md = self.metadata
        self.groups = md.num_row_groups
        sizes = [md.row_group(g).num_rows for g in range(self.groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self.paths = [md.schema.column(i).path for i in range(md.num_columns)]
        self.columns = [name for name in md.schema.to_arrow_schema().names
                        if name != BBOX_COLUMN]  # what a feature is made of
        self.bounds = self._bounds() if f"{BBOX_COLUMN}.xmin" in self.paths else None

    def _bounds(self) -> np.ndarray:
        """Per row group the least xmin, ymin and greatest xmax, ymax of the covering: −inf/
        inf where no statistics tell, NaN where the group has no boxes (it never matches)."""
        md = self.metadata
        out = np.empty((4, self.groups))
        for k, corner in enumerate(CORNERS):
            low = k < 2
            index = self.paths.index(f"{BBOX_COLUMN}.{corner}")
            for g in range(self.groups):
                group = md.row_group(g)
                stats = group.column(index).statistics
                if stats is not None and stats.has_min_max:
                    out[k, g] = stats.min if low else stats.max
                elif stats is not None and stats.has_null_count and \
                        stats.null_count == group.num_rows:
                    out[k, g] = np.nan
                else:
                    out[k, g] = -np.inf if low else np.inf
        return out

    def groups_in(self, area: Area) -> np.ndarray:
        """The row groups whose rows' boxes may meet the area's CRS84 envelope."""
        if self.bounds is None:
            return np.empty(0, np.int64)
        x0, y0, x1, y1 = area.crs84
        lo_x, lo_y, hi_x, hi_y = self.bounds

        def across(a: float, b: float) -> np.ndarray:
            return (lo_x <= b) & (hi_x >= a)
        xs = across(x0, x1) if x0 <= x1 else across(x0, 180.0) | across(-180.0, x1)
        return np.flatnonzero(xs & (lo_y <= y1) & (hi_y >= y0))

    def part(self, groups: np.ndarray, columns: list[str], boxes: bool = False,
             deadline: Deadline | None = None) -> Layer:
        """The rows of some row groups (ascending) as a layer of those columns, with their
        boxes when asked (no grid index: a selection scans them)."""
        read = list(columns)
        if boxes:
            corners = CORNERS[:2] if self.points else CORNERS
            read += [f"{BBOX_COLUMN}.{c}" for c in corners]
        file = pq.ParquetFile(self.version.source(), metadata=self.metadata,
                              page_checksum_verification=True)
        tables = []
        for at in range(0, max(len(groups), 1), GROUPS_PER_READ):
            if deadline is not None:
                deadline.check()
            tables.append(file.read_row_groups(groups[at:at + GROUPS_PER_READ].tolist(),
                                               columns=read))
        table = pa.concat_tables(tables)
        arrays: dict[str, np.ndarray] = {}
        if boxes:
            found = box_arrays(table.column(BBOX_COLUMN), corners)
            arrays["boxes"] = np.stack(found * 2 if self.points else found)
            table = table.drop_columns([BBOX_COLUMN])
        numbers = np.concatenate([np.arange(self.starts[g], self.starts[g + 1])
                                  for g in groups.tolist()] or [np.empty(0, np.int64)])
        return Layer(self.version, self.meta, part=(mapped.Files(table, arrays, {}), numbers))

    def rows(self, wanted: np.ndarray, deadline: Deadline | None = None
             ) -> tuple[Layer, np.ndarray, int]:
        """Whole features of the version's rows `wanted` (ascending): the part that holds them,
        their positions in it, and how many row groups were read."""
        groups = np.unique(np.searchsorted(self.starts, wanted, side="right") - 1)
        part = self.part(groups, self.columns, deadline=deadline)
        return part, np.searchsorted(part.numbers, wanted), len(groups)

    def page(self, key: tuple[Any, ...], offset: int, limit: int,
             deadline: Deadline | None = None) -> Page:
        """A page of the selection `key` (`ItemsQuery.selection_key`, see `answers`)."""
        bbox, interval, filters, _ = key
        timed = interval is not None and interval != (None, None)
        searched = 0
        if bbox is None and not filters and not timed:
            total = int(self.starts[-1])
            matched, wanted = total, np.arange(min(offset, total), min(offset + limit, total))
        else:
            groups = self.groups_in(bbox) if bbox is not None else np.arange(self.groups)
            columns = [name for name, _ in filters]
            if timed and self.meta.temporal is not None:
                columns.append(self.meta.temporal.name)
            if bbox is not None and not self.points:
                columns.append(GEOMETRY_COLUMN)  # exact tests of shapes the box only touches
            part = self.part(groups, list(dict.fromkeys(columns)), bbox is not None, deadline)
            found = part.select(bbox, interval, filters, deadline=deadline)
            found = np.arange(part.rows) if found is None else found
            matched, wanted, searched = len(found), part.numbers[found[offset:offset + limit]], \
                len(groups)
        layer, rows, read = self.rows(wanted, deadline)
        return Page(matched, layer, rows, searched + read)

    def find(self, feature_id: str, deadline: Deadline | None = None) -> Page | None:
        """The feature of an id (as `Layer.find` reads it), or None."""
        f = self.meta.id_field
        if f is None:
            if not feature_id.isdigit() or not 0 < int(feature_id) <= self.starts[-1]:
                return None
            row, searched = int(feature_id) - 1, 0
        else:
            kind = self.metadata.schema.to_arrow_schema().field(f.name).type
            try:
                value = pa.scalar(feature_id).cast(kind).as_py()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
                return None  # not a value of the key's type: no such feature
            groups = self._may_hold(self.paths.index(f.name), value)
            part = self.part(groups, [f.name], deadline=deadline)
            at = part.find(feature_id)
            if at is None:
                return None
            row, searched = int(part.numbers[at]), len(groups)
        layer, rows, read = self.rows(np.array([row], np.int64), deadline)
        return Page(1, layer, rows, searched + read)

    def _may_hold(self, index: int, value: Any) -> np.ndarray:
        """Row groups whose statistics of a column do not rule the value out."""
        keep = []
        for g in range(self.groups):
            stats = self.metadata.row_group(g).column(index).statistics
            try:
                keep.append(stats is None or not stats.has_min_max
                            or stats.min <= value <= stats.max)
            except TypeError:  # statistics of another kind (time zones): read it
                keep.append(True)
        return np.flatnonzero(keep)
