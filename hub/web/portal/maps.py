"""The curated maps (`/karten/breitband`, `/karten/pflege`, `/karten/mobilitaet`) and their
text alternative: the same features as a sortable, filterable table rendered on the server.

The features come from the answering datasets of the places core (`hub.places.Places`, for an
anonymous visitor: only what `hub.access` lets everyone see) — the same current versions the
map reads from the OGC API items in the browser (`hub/web/static/maps.js`). The filters are a
GET form; a value the map does not know is a 400 page naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import shapely
from fastapi import Request

from hub.access import ANONYMOUS
from hub.api.ogc import work
from hub.places import Places
from hub.places.routes import computed, has_control
from hub.places.service import Need, Sources
from hub.places.tables import Table
from hub.schema import parse_schema
from hub.store.versions import Version
from hub.web.portal.pages import N_, PageError, _page_number

MAX_PARAM = 200  # characters of any filter value
PER_PAGE = 25  # rows of the list per page (the care list is 155 rows: a long table on a phone)
MAX_KW = 10_000.0  # the highest charging power one may filter by
LEVELS = ("1000", "100")  # broadband: share of households with ≥ 1000 or ≥ 100 Mbit/s
# mobility type (the data's `typ`) -> the symbol on the map and in the list
SYMBOLS = {"Ladesäule": "⚡", "Rufbus-Haltestelle": "B", "Mitfahrbank": "M",
           "Mobilitätsstation": "H", "Bikesharing": "R", "Carsharing": "C", "P+R": "P"}


@dataclass(frozen=True)
class CuratedMap:
    """A curated map: its topic in the places core, title, lead and the sort orders."""

    slug: str
    topic: str
    title: str
    lead: str
    sorts: tuple[str, ...]


MAPS = {m.slug: m for m in (
    CuratedMap("breitband", "broadband", N_("Breitband-Karte"),
               N_("Welcher Anteil der Haushalte jeder Gemeinde Gigabit (≥ 1000 Mbit/s) oder "
                  "mindestens 100 Mbit/s bekommen kann."), ("name", "share")),
    CuratedMap("pflege", "care", N_("Pflege-Karte"),
               N_("Pflegedienste, Tagespflege und Pflegeheime im Landkreis."),
               ("name", "type", "town")),
    CuratedMap("mobilitaet", "mobility", N_("Mobilitäts-Karte"),
               N_("Ladesäulen, Rufbus-Haltestellen, Mitfahrbänke und Mobilitätsstationen."),
               ("name", "type", "power")))}


class MapPages:
    """What a curated map page shows: the filters chosen and the features they leave."""

    def __init__(self, places: Places, basemap: dict[str, str],
                 budget: work.Budget | None = None):
        self.places, self.basemap = places, basemap
        self.pool = work.Pool(budget or work.Budget())

    async def page(self, request: Request, slug: str) -> dict[str, Any]:
        curated = MAPS[slug]
        params = _params(request)
        sort = _choice(params, "sort", curated.sorts, curated.sorts[0])
        sources = self.places.sources(ANONYMOUS)

        def build(visible: Sources, need: Need) -> dict[str, Any]:
            tables = self.places.topic_tables(visible, need)
            table, bbox = tables.get(curated.topic), _bbox(tables.get("boundaries"))
            if table is None:
                return {"rows": [], "filters": {}, "bbox": bbox}
            need(len(table.rows))
            found = _FILTERS[curated.topic](table, params,
                                            _ids(table, visible.versions[curated.topic][1]))
            if curated.topic != "broadband" and bbox is not None:
                found["rows"] = [r for r in found["rows"] if _inside(r, bbox)]
            found["rows"].sort(key=_SORT_KEYS[sort])
            return {**found, "bbox": bbox}
        try:
            found = await computed(self.pool, request, sources, build)
        except work.Busy as exc:
            raise PageError(503, N_("Der Server ist gerade ausgelastet. Bitte versuchen Sie "
                                    "es in %(seconds)s Sekunden noch einmal."),
                            seconds=exc.retry_after) from None
        rows = found["rows"]
        page, pages = _page_number(request.query_params.getlist("page")), _pages(len(rows))
        if page > pages:
            raise PageError(404, N_("Seite %(page)s gibt es nicht: die Liste hat %(pages)s "
                                    "Seiten."), page=page, pages=pages)
        start = (page - 1) * PER_PAGE
        kept = urlencode([(k, v) for k, v in params.items() if k not in ("page", "lang")])
        sourced = [self._source(sources, topic) for topic in ("boundaries", curated.topic)]
        return {"map": curated, "rows": rows[start:start + PER_PAGE], "count": len(rows),
                "start": start, "page": page, "pages": pages,
                "page_url": lambda n: f"/karten/{slug}?{kept}{'&' if kept else ''}page={n}"
                                      "#map-list",
                "filters": found["filters"], "sort": sort,
                "bbox": ",".join(f"{v:.5f}" for v in found["bbox"]) if found["bbox"] else "",
                "sources": [s for s in sourced if s is not None],
                "layer": sources.versions[curated.topic][0].name
                if curated.topic in sources.versions else None,
                "base": sources.versions["boundaries"][0].name
                if "boundaries" in sources.versions else None,
                "basemap": self.basemap, "symbols": SYMBOLS}

    def _source(self, sources: Sources, topic: str) -> dict[str, Any] | None:
        if topic not in sources.versions:
            return None
        return self.places.source(*sources.versions[topic])


def _pages(rows: int) -> int:
    return max(1, -(-rows // PER_PAGE))


def _params(request: Request) -> dict[str, str]:
    """The query's parameters, one value each; too long or with control characters: 400."""
    params = {}
    for name, value in request.query_params.multi_items():
        if len(value) > MAX_PARAM or has_control(value):
            raise PageError(400, N_("Der Wert von „%(name)s“ ist zu lang oder enthält "
                                    "Steuerzeichen."), name=name[:40])
        params[name] = value.strip()
    return params


def _choice(params: dict[str, str], name: str, allowed: tuple[str, ...] | list[str],
            default: str) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise PageError(400, N_("„%(value)s“ ist für „%(name)s“ nicht möglich; möglich sind: "
                                "%(allowed)s."), value=value, name=name,
                        allowed=", ".join(allowed))
    return value


def _bbox(boundaries: Table | None) -> tuple[float, float, float, float] | None:
    """The district's box (its municipalities' bounds, rounded outwards to 5 decimals): the
    points a curated map shows, and the `bbox` the map asks the OGC API for."""
    if boundaries is None or not len(boundaries.rows):
        return None
    west, south, east, north = (float(v) for v in shapely.total_bounds(boundaries.shapes))
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        return None
    return (math.floor(west * 1e5) / 1e5, math.floor(south * 1e5) / 1e5,
            math.ceil(east * 1e5) / 1e5, math.ceil(north * 1e5) / 1e5)


def _inside(row: dict[str, Any], bbox: tuple[float, float, float, float]) -> bool:
    lon, lat = row.get("lon"), row.get("lat")
    return (lon is not None and lat is not None and bbox[0] <= lon <= bbox[2]
            and bbox[1] <= lat <= bbox[3])


def primary_key(version: Version) -> str | None:
    """The column whose value is a feature's id in the OGC API (`hub.api.ogc.layer`): the
    single-field primary key; none: ids are the 1-based row numbers."""
    schema = parse_schema(version.schema, f"{version.dataset} v{version.version}",
                          version.dataset)
    return schema.primary_key[0] if len(schema.primary_key) == 1 else None


def _ids(table: Table, version: Version) -> list[Any]:
    """Each row's feature id in the OGC API items."""
    key = primary_key(version)
    return [row.get(key) for row in table.rows] if key else list(range(1, len(table.rows) + 1))


def _point(table: Table, i: int) -> dict[str, float | None]:
    lon, lat = float(table.lon[i]), float(table.lat[i])
    return {"lon": None if math.isnan(lon) else lon, "lat": None if math.isnan(lat) else lat}


def _broadband(table: Table, params: dict[str, str], ids: list[Any]) -> dict[str, Any]:
    level = _choice(params, "stufe", LEVELS, LEVELS[0])
    rows = [{"id": ids[i], "name": r.get("gemeinde") or "", "ags": r.get("ags"),
             "share": r.get(f"anteil_{level}"), "share_1000": r.get("anteil_1000"),
             "share_100": r.get("anteil_100"), "households": r.get("haushalte"),
             "under_construction": r.get("haushalte_im_bau"),
             "planned": r.get("haushalte_geplant"), "completion_by": r.get("fertigstellung_bis")}
            for i, r in enumerate(table.rows)]
    return {"rows": rows, "filters": {"stufe": level}}


def _care(table: Table, params: dict[str, str], ids: list[Any]) -> dict[str, Any]:
    types = sorted({str(r["art"]) for r in table.rows if r.get("art")})
    art = _choice(params, "art", ["", *types], "")
    rows = [{"id": ids[i], "name": r.get("name") or "", "type": r.get("art") or "",
             "town": r.get("ort") or "", "street": " ".join(
                 str(p) for p in (r.get("strasse"), r.get("hausnummer")) if p),
             "postcode": r.get("plz"), "phone": r.get("telefon"), "website": r.get("website"),
             "places": r.get("plaetze"), "wheelchair": r.get("rollstuhlgerecht"),
             **_point(table, i)}
            for i, r in enumerate(table.rows) if not art or r.get("art") == art]
    return {"rows": rows, "filters": {"art": art, "types": types}}


def _mobility(table: Table, params: dict[str, str], ids: list[Any]) -> dict[str, Any]:
    types = sorted({str(r["typ"]) for r in table.rows if r.get("typ")})
    typ = _choice(params, "typ", ["", *types], "")
    min_kw = _power(params.get("min_kw", ""))
    rows = [{"id": ids[i], "name": r.get("name") or "", "type": r.get("typ") or "",
             "symbol": SYMBOLS.get(str(r.get("typ")), "•"), "power": r.get("leistung_kw"),
             "points": r.get("ladepunkte"), "connectors": r.get("steckertypen"),
             "capacity": r.get("kapazitaet"), "operator": r.get("betreiber"),
             "wheelchair": r.get("rollstuhlgerecht"), **_point(table, i)}
            for i, r in enumerate(table.rows)
            if (not typ or r.get("typ") == typ)
            and (min_kw is None or (r.get("leistung_kw") or 0) >= min_kw)]
    return {"rows": rows, "filters": {"typ": typ, "min_kw": params.get("min_kw", ""),
                                      "types": types}}


def _power(raw: str) -> float | None:
    """`min_kw`: empty (no filter) or a number of kilowatts from 0 to `MAX_KW`."""
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= MAX_KW:
        raise PageError(400, N_("„%(value)s“ ist für „%(name)s“ nicht möglich: eine Zahl von "
                                "0 bis %(max)s (Kilowatt)."), value=raw, name="min_kw",
                        max=int(MAX_KW))
    return value


_FILTERS: dict[str, Callable[[Table, dict[str, str], list[Any]], dict[str, Any]]] = {
    "broadband": _broadband, "care": _care, "mobility": _mobility}


def _text_key(field: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: (str(row.get(field) or "").casefold(), str(row["name"]).casefold())


_SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "name": _text_key("name"), "type": _text_key("type"), "town": _text_key("town"),
    "share": lambda row: (-(row.get("share") or 0), str(row["name"]).casefold()),
    "power": lambda row: (-(row.get("power") or 0), str(row["name"]).casefold())}
