"""The map viewer of every geodataset (`/karten/daten/{name}`): the current version's
features on a map fitted to its extent, drawn by geometry type with a legend from the data, and
a list of the same features paged on the server (the text alternative).

Who sees a dataset is `hub.access`'s decision (`DataAccess.may_see`): a dataset the visitor may
not see answers 404 exactly like one that does not exist. The page carries no features itself:
the browser reads the OGC API items of the current view (`bbox`, a feature limit; see
`hub/web/static/viewer.js`) with the visitor's own credentials, so the map never shows more
than the OGC API would. Reading the list's rows and the legend's categories grows with the
data and runs in a worker (`hub.api.ogc.work`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fastapi import Request

from hub.access import DataAccess, Viewer
from hub.api.ogc import work
from hub.api.ogc.datasets import Current
from hub.places import Places
from hub.store.versions import Dataset, Store, Version
from hub.web.portal.i18n import Language
from hub.web.portal.maps import primary_key
from hub.web.portal.pages import N_, PageError, Text, text_of
from hub.web.portal.preview import COLUMNS, HIDDEN
from hub.web.services import Services

PER_PAGE = 25  # rows of the list per page (a phone scrolls through them)
CATEGORIES = 8  # a column with 2 to this many distinct values becomes the legend
CATEGORY_COLUMNS = 12  # columns looked at for the legend (the first text columns)
FEATURE_LIMIT = 2000  # features the map reads for one view (then it asks to zoom in)
KEPT = 32  # legends kept (a version never changes)
# geometry types of the store (`Version.geometry_types`) -> how the map draws them
KINDS = {"Point": "point", "MultiPoint": "point", "LineString": "line",
         "MultiLineString": "line", "Polygon": "polygon", "MultiPolygon": "polygon"}
# Okabe–Ito: told apart with the common colour-vision deficiencies; the legend names each
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000",
           "#f0e442")
# and a shape of its own per category (WCAG 1.4.1: never colour alone), as SVG paths in a box
# of -9…9 around the point: the legend draws them, and so do the map's markers (viewer.js)
SHAPES = ("M8 0A8 8 0 1 1-8 0A8 8 0 1 1 8 0Z",  # circle
          "M-7-7H7V7H-7Z",  # square
          "M0-9L9 7H-9Z",  # triangle
          "M0-9L9 0L0 9L-9 0Z",  # diamond
          "M0 9L9-7H-9Z",  # triangle pointing down
          "M-3-9H3V-3H9V3H3V9H-3V3H-9V-3H-3Z",  # cross
          "M0-9L2.4-3.2L8.6-2.8L3.8 1.2L5.3 7.3L0 4L-5.3 7.3L-3.8 1.2L-8.6-2.8L-2.4-3.2Z",  # star
          "M9 0L4.5 7.8H-4.5L-9 0L-4.5-7.8H4.5Z")  # hexagon
assert len(SHAPES) == len(PALETTE)


@dataclass(frozen=True)
class Legend:
    """The column whose values colour the features (none: one colour), and those values."""

    column: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class Rows:
    """One page of the list: columns shown, each row's OGC feature id and its values."""

    columns: list[str]
    ids: list[Any]
    rows: list[list[str]]
    more_columns: int


class DataViewer:
    """What the viewer page of one geodataset shows to one visitor."""

    def __init__(self, services: Callable[[], Services], store: Store, held: Current,
                 access: DataAccess, places: Places, basemap: dict[str, str],
                 budget: work.Budget | None = None):
        """`places`: the district's boundaries drawn beneath (the demo has no basemap);
        `basemap`: the configured basemap (`catalog/portal.yaml`), if any."""
        self.services, self.store, self.held, self.access = services, store, held, access
        self.places, self.basemap = places, basemap
        self.pool = work.Pool(budget or work.Budget())
        self._legends: OrderedDict[tuple[str, int, str], Legend] = OrderedDict()
        self._lock = threading.Lock()

    async def page(self, request: Request, name: str, who: Viewer,
                   lang: Language) -> dict[str, Any]:
        dataset, version = self._visible(name, who)
        pages = max(1, -(-version.rows // PER_PAGE))
        page = _page_of(request.query_params.getlist("page"), pages)
        start = (page - 1) * PER_PAGE

        def read() -> tuple[Rows, Legend]:
            return rows_at(self.store, version, start, PER_PAGE), self.legend(version)
        try:
            rows, legend = await self.pool.run(request, read)
        except work.Busy as exc:
            raise PageError(503, N_("Der Server ist gerade ausgelastet. Bitte versuchen Sie "
                                    "es in %(seconds)s Sekunden noch einmal."),
                            seconds=exc.retry_after) from None
        record = self.services().catalog.get(name, who)
        kinds = sorted({KINDS[t] for t in version.geometry_types if t in KINDS})
        path = quote(dataset.name)
        boundaries = self.places.sources(who).versions.get("boundaries")
        base = (f"/ogc/collections/{quote(boundaries[0].name)}/items"
                if boundaries and boundaries[0].name != dataset.name else None)
        title = text_of(record, "title", lang) if record else Text(dataset.title, "de")
        return {"name": dataset.name, "title": title,
                "dataset_page": f"/datasets/{path}" if record else None,
                "attribution": (record.attribution if record else "") or dataset.attribution,
                "version": version, "kinds": kinds,
                "bbox": ",".join(f"{v:.6f}" for v in version.bbox) if version.bbox else "",
                "items": f"/ogc/collections/{path}/items", "limit": FEATURE_LIMIT,
                "base": base, "basemap": self.basemap,
                "legend": legend, "colours": PALETTE, "shapes": SHAPES, "list": rows,
                "page": page,
                "pages": pages, "start": start,
                "page_url": lambda n: f"/karten/daten/{path}?page={n}#liste"}

    def _visible(self, name: str, who: Viewer) -> tuple[Dataset, Version]:
        """The dataset and its current version if `who` may see it and it has geometry;
        otherwise 404, the same for hidden, unknown and geometry-less datasets."""
        found = self.held.entries().get(name)
        if (found is None or not self.access.may_see(who, found[0])
                or not any(t in KINDS for t in found[1].geometry_types)):
            raise PageError(404, N_("Es gibt keinen Geodatensatz „%(name)s“."),
                            name=name[:80])
        return found

    def legend(self, version: Version) -> Legend:
        """The legend's column and values of a version (read once, then kept)."""
        key = (version.dataset, version.version, version.checksum)
        with self._lock:
            if key in self._legends:
                self._legends.move_to_end(key)
                return self._legends[key]
        found = categories(self.store, version)
        with self._lock:
            self._legends[key] = found
            while len(self._legends) > KEPT:
                self._legends.popitem(last=False)
        return found


def _page_of(values: list[str], pages: int) -> int:
    """`page`: a number from 1 to the list's pages (a 1M-row layer has 40,000), else 400."""
    value = values[-1].strip() if values else "1"
    if not (value.isascii() and value.isdigit() and len(value) <= 9
            and 1 <= int(value) <= pages):
        raise PageError(400, N_("Seite „%(value)s“ gibt es nicht: bitte eine Zahl von 1 bis "
                                "%(max)s."), value=value[:20], max=pages)
    return int(value)


def _shown(parquet: pq.ParquetFile) -> list[str]:
    return [f.name for f in parquet.schema_arrow
            if f.name not in HIDDEN and not pa.types.is_binary(f.type)
            and not pa.types.is_large_binary(f.type)]


def categories(store: Store, version: Version) -> Legend:
    """The first text column (of the first `CATEGORY_COLUMNS`) with 2 to `CATEGORIES`
    distinct values, and its values in order; none: a legend by geometry type alone."""
    key = primary_key(version)
    store.ensure_sound(version)
    with store.reading(version):
        parquet = pq.ParquetFile(version.source())  # the folder's file, or S3
        texts = [f.name for f in parquet.schema_arrow
                 if f.name in _shown(parquet)[:CATEGORY_COLUMNS] and f.name != key
                 and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
        for column in texts:
            values = pc.unique(parquet.read(columns=[column]).column(column)).drop_null()
            if 2 <= len(values) <= CATEGORIES:
                return Legend(column, tuple(sorted(str(v) for v in values.to_pylist())))
    return Legend(None, ())


def rows_at(store: Store, version: Version, start: int, count: int) -> Rows:
    """Rows `start` to `start + count` of the version's file (only the row groups holding
    them are read), with each row's feature id in the OGC API."""
    key = primary_key(version)
    store.ensure_sound(version)
    with store.reading(version):
        parquet = pq.ParquetFile(version.source())  # the folder's file, or S3
        names = _shown(parquet)
        shown = names[:COLUMNS]
        groups, first, offset = [], 0, 0
        for g in range(parquet.metadata.num_row_groups):
            n = parquet.metadata.row_group(g).num_rows
            if first + n > start and first < start + count:
                if not groups:
                    offset = start - first
                groups.append(g)
            first += n
        wanted = list(dict.fromkeys([*shown, *([key] if key else [])]))
        table = (parquet.read_row_groups(groups, columns=wanted).slice(offset, count)
                 if groups else None)
    records = table.to_pylist() if table is not None else []
    ids = ([r[key] for r in records] if key
           else list(range(start + 1, start + len(records) + 1)))
    return Rows(shown, ids, [["" if r[c] is None else str(r[c]) for c in shown]
                             for r in records], len(names) - len(shown))

