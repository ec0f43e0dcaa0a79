"""The routes of OGC API – Features (Part 1 Core, Part 2 CRS, Part 3 queryables) as a router.

    app.include_router(ogc_router(store, viewer=lambda request: ANONYMOUS))  # under /ogc

A collection is a dataset of the store with a current version that the request's viewer may see
(`Viewer.may_see(*access_of(dataset))`); every other name answers 404, exactly like a name that
does not exist, and nothing of its data is read before that check. Each resource answers JSON or
HTML (`f=json|html`, else the Accept header). Cheap answers are computed on the event loop,
work that grows with the data in a bounded pool of worker threads (`work`).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.convertors import PathConvertor, register_url_convertor

from hub import memory
from hub.access import Viewer
from hub.api.ogc import caching, cold, geojson, html, openapi, work
from hub.api.ogc import crs as crs_mod
from hub.api.ogc import tiles as tiles_mod
from hub.api.ogc.compression import compressed
from hub.api.ogc.datasets import Current
from hub.api.ogc.facts import About, CatalogFacts
from hub.api.ogc.layer import Layer, LayerCache, Meta
from hub.api.ogc.params import (
    BadParameter,
    Limits,
    check_known,
    negotiate,
    parse_crs,
    parse_items,
    single,
)
from hub.api.ogc.prerender import Prerender, highest_zoom
from hub.store.integrity import CorruptVersion
from hub.store.versions import Dataset, Store, Version

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA = "application/schema+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
]
REL_TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
REL_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


class FeatureId(PathConvertor):
    """A feature id as sent: any characters, "/" and line breaks too (Starlette's `path`
    stops at a line break, and such an id fell through to the app's generic 404)."""

    regex = "(?s:.*)"


register_url_convertor("feature_id", FeatureId())
BUSIEST = ("/collections/{name}/tiles/{tms}/{z}/{y}/{x}", "/collections/{name}/items")  # the
# routes most asked for, in that order (a map asks for dozens of tiles at a time)
PAGE_WEIGHT = 50  # cost of encoding one feature, in row-conditions (see `work`)
HTML_FACTOR = 5  # a table row costs more than a GeoJSON fragment
PARSE_WEIGHT = 1_000  # cost of parsing one character of a CQL2 filter (about 5 µs)


class NotFound(Exception):
    """404: unknown, invisible or without data (all answered the same)."""


@dataclass(frozen=True)
class Collection:
    dataset: Dataset
    version: Version
    meta: Meta
    access: str  # the access level in force (see `access_of`)
    about: About  # its catalog facts


def ogc_router(store: Store, viewer: Callable[[Request], Viewer], *,
               access_of: Callable[[Dataset], tuple[str, list[str]]] = lambda d: (d.access, []),
               prefix: str = "/ogc",
               title: str = "Geodaten-Schnittstelle (OGC API – Features)",
               limits: Limits | None = None, cache: LayerCache | None = None,
               about: Callable[[str], About | None] | None = None,
               catalog_state: Callable[[], Hashable] | None = None,
               tile_cache: tiles_mod.TileCache | None = None,
               budget: work.Budget | None = None) -> APIRouter:
    """OGC API – Features over the store, mounted at `prefix`.

    `viewer` tells who is asking and `access_of` a dataset's access level and the organisations
    it is restricted to (collections are filtered with `Viewer.may_see`); `about` optionally
    supplies catalog facts (description, licence, landing page) per dataset; both are kept
    while `catalog_state()` answers the same (without it they are asked on every request, see
    `facts`); `budget` bounds the expensive work (default: from the environment,
    `work.Budget.from_env`).
    """
    limits = limits or Limits.from_env()
    budget = budget or work.Budget.from_env()
    pool = work.Pool(budget)
    layers = cache or LayerCache.for_store(store.root)
    encoded = tile_cache or tiles_mod.TileCache(tiles_mod.cache_bytes())
    zooms = range(tiles_mod.max_zoom() + 1)

    def load(version: Version) -> Layer:
        """A version in memory, read off the request path (for pre-rendering its tiles)."""
        with store.reading(version):
            return layers.layer(version, lambda: store.ensure_sound(version))
    prerender = Prerender(encoded, load, highest_zoom(zooms.stop - 1), layers.folder)
    memory.register("ogc layers (mapped, shared)", layers)
    memory.register("ogc selections", layers, "selection_bytes", "max_selection_bytes")
    memory.register("ogc tiles", encoded)
    memory.register("ogc pre-rendered tiles (mapped, shared)", prerender)
    current = Current(store)
    facts = CatalogFacts(access_of, about, catalog_state)
    router = APIRouter(prefix=prefix)
    # every route reads: HEAD answers as GET does, without the body (uvicorn drops it)
    read = functools.partial(router.api_route, methods=["GET", "HEAD"])
    description = ("Die Datensätze des Datenhubs als Sammlungen von Features nach "
                   "OGC API – Features (Teile 1 und 2, abfragbare Eigenschaften nach Teil 3).")

    # -- helpers ------------------------------------------------------------------------------

    def site(request: Request) -> str:
        return (os.environ.get("HUB_BASE_URL") or str(request.base_url)).rstrip("/")

    def root(request: Request) -> str:
        return site(request) + prefix

    def link(href: str, rel: str, kind: str, title: str = "") -> dict[str, str]:
        out = {"href": href, "rel": rel, "type": kind}
        if title:
            out["title"] = title
        return out

    def with_f(url: str, fmt: str, params: list[tuple[str, str]] | None = None) -> str:
        query = [(k, v) for k, v in params or [] if k != "f"] + [("f", fmt)]
        return f"{url}?{urlencode(query)}"

    def self_links(url: str, fmt: str, json_type: str = JSON,
                   params: list[tuple[str, str]] | None = None) -> list[dict[str, str]]:
        """`self` for the format served, `alternate` for the other one."""
        json_link = link(with_f(url, "json", params), "self", json_type, "als JSON")
        html_link = link(with_f(url, "html", params), "self", HTML, "als HTML")
        if fmt == "json":
            html_link["rel"] = "alternate"
            return [json_link, html_link]
        json_link["rel"] = "alternate"
        return [html_link, json_link]

    def visible(request: Request) -> list[Collection]:
        who = viewer(request)
        entries = list(current.entries().values())
        shown = []
        for f, (_, v) in zip(facts.of(*(d for d, _ in entries)), entries, strict=True):
            if who.may_see(f.level, f.orgs) and not v.broken:
                try:
                    with store.reading(v):
                        shown.append(Collection(f.dataset, v, layers.meta(v), f.level,
                                                f.about))
                except CorruptVersion:
                    continue  # answers 503 on its own URLs, the others are listed
        return shown

    def collection_of(request: Request, name: str) -> Collection:
        found = current.entries().get(name)
        f = facts.of(found[0])[0] if found else None
        if found is None or f is None or not viewer(request).may_see(f.level, f.orgs):
            raise NotFound  # unknown, hidden and empty datasets answer alike
        if found[1].broken:  # after the access check: 503 only to those who may see
            raise CorruptVersion(found[1].dataset, found[1].version, found[1].broken)
        prerender.seen(found[1])  # a new version of a collection in use: its low zooms
        return Collection(f.dataset, found[1], layers.meta(found[1]), f.level, f.about)

    def layer_of(request: Request, c: Collection) -> Layer:
        """The collection's version in memory: verified and read in the pool the first time
        (both grow with its size); a read error checks the file again, so damage answers 503."""
        def on_miss() -> None:
            work.wait_for(request, layers.pending(c.version))  # read by another request now
            work.needs(request, work.UNBOUNDED)
            store.ensure_sound(c.version)
        with store.reading(c.version):
            found = layers.layer(c.version, on_miss)
        prerender.seen(c.version, loaded=True)
        return found

    def cold_source(request: Request, c: Collection) -> cold.Source | None:
        """The version's file when its layer is neither in memory nor mapped (and its
        background read has not failed): the request is answered from the file, in the pool,
        and the caller then has the layer read in the background (`read_behind`). None:
        answer from the layer."""
        if not layers.cold(c.version):
            return None
        work.needs(request, work.UNBOUNDED)  # reading row groups grows with the data
        if not layers.cold(c.version):  # read meanwhile
            return None
        with store.reading(c.version):
            return layers.source(c.version)

    def read_behind(c: Collection) -> None:
        """Read the version's layer in the background, after a cold answer (not during it:
        both would share the process's CPU)."""
        def read() -> None:
            load(c.version)
            prerender.seen(c.version, loaded=True)
        layers.build(c.version, read)

    def rows_of(request: Request, layer: Layer, key: tuple[Any, ...]) -> np.ndarray | None:
        """A selection's rows: cached, or computed within the budget (in the pool when it
        grows with the data); a CQL2 filter over the budget is refused before it starts."""
        def estimate() -> None:
            cost, filter_cost = layer.cost(*key)
            if filter_cost > budget.max_cost:
                raise BadParameter("filter", (
                    f"evaluating this filter on the {layer.rows:,} features of the collection "
                    f"would cost about {filter_cost:,} row-conditions (LIKE counts 10, CASEI 5 "
                    f"more), over the limit of {budget.max_cost:,} (HUB_OGC_FILTER_BUDGET); "
                    "use fewer conditions or narrow it with bbox"))
            work.needs(request, cost)
        return layers.selection(layer, key, estimate, work.deadline(request))

    def render(fmt: str, body: dict[str, Any], page: Callable[[], str], media: str = JSON,
               headers: dict[str, str] | None = None) -> Response:
        if fmt == "html":
            return Response(page(), media_type="text/html; charset=utf-8", headers=headers)
        return Response(geojson.dumps(body), media_type=media, headers=headers)

    def answers(handler: Callable[..., Response]) -> Callable[..., Any]:
        """Turn BadParameter into 400 and NotFound into 404, in the negotiated format; give
        answers validators (ETag, Cache-Control) and answer 304 when the client's copy holds;
        JSON gzip-compressed when the client accepts it (`compression`).

        Answers are computed on the event loop (a page or tile from a layer in memory takes a
        millisecond or two; threads would only contend for the GIL) unless the handler meets a
        step whose cost grows with the data (`work.Offload`): then it runs again in the pool
        (or only that step, when it is the last: `work.then`);
        work it needs that is under way (`work.Wait`) is waited for on the loop.
        No worker free in time, or time run out: 503 with Retry-After."""
        @functools.wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
            try:
                response = await pool.answer(
                    request, functools.partial(handler, request, *args, **kwargs))
                return await compressed(request, caching.validated(request, response))
            except CorruptVersion as exc:  # after the access check: only those who may see
                return Response(geojson.dumps({"code": "ServiceUnavailable",
                                               "description": str(exc)}), exc.status,
                                media_type=JSON)
            except work.Busy as exc:
                body = {"code": "ServiceUnavailable", "description": exc.message}
                if exc.param:
                    body["parameter"] = exc.param
                return Response(geojson.dumps(body), 503, media_type=JSON,
                                headers={"Retry-After": str(exc.retry_after)})
            except (BadParameter, NotFound) as exc:
                try:
                    fmt = negotiate(request.query_params, request.headers.get("accept"))
                except BadParameter:
                    fmt = "json"
                if isinstance(exc, BadParameter):
                    status, code, text = 400, "InvalidParameterValue", str(exc)
                    heading = "Ungültiger Parameter"
                else:
                    status, code = 404, "NotFound"
                    text = f"{request.url.path} does not exist"
                    heading = "Nicht gefunden"
                body = {"code": code, "description": text}
                if isinstance(exc, BadParameter):
                    body["parameter"] = exc.param
                if fmt == "html":
                    page = html.page(heading, [("Start", with_f(root(request), "html")),
                                               (heading, "")], f"<p>{escape(text)}</p>")
                    return Response(page, status, media_type="text/html; charset=utf-8")
                return Response(geojson.dumps(body), status, media_type=JSON)
        return wrapper

    def fmt_of(request: Request, allowed: tuple[str, ...] = ("f",)) -> str:
        check_known(request.query_params, allowed)
        return negotiate(request.query_params, request.headers.get("accept"))

    # -- documents ---------------------------------------------------------------------------

    def collection_doc(request: Request, c: Collection, fmt: str) -> dict[str, Any]:
        d, v, meta = c.dataset, c.version, c.meta
        url = f"{root(request)}/collections/{quote(d.name)}"
        facts = c.about
        extent: dict[str, Any] = {}
        if v.bbox:
            extent["spatial"] = {"bbox": [v.bbox], "crs": crs_mod.CRS84}
        if meta.temporal_extent:
            extent["temporal"] = {"interval": [list(meta.temporal_extent)], "trs": TRS}
        links = [*self_links(url, fmt),
                 # without ?f=json: GDAL finds the path in /api by this URL (and its limits)
                 link(f"{url}/items", "items", GEOJSON, "Features als GeoJSON"),
                 link(with_f(f"{url}/items", "html"), "items", HTML, "Features als HTML"),
                 link(with_f(f"{url}/queryables", "json"),
                      "http://www.opengis.net/def/rel/ogc/1.0/queryables", SCHEMA,
                      "Abfragbare Eigenschaften"),
                 link(f"{url}/tiles", REL_TILESETS, JSON, "Vektorkacheln")]
        if facts.license_url:
            links.append(link(facts.license_url, "license", HTML,
                              facts.license_title or "Lizenz"))
        if facts.page_url:
            page_url = site(request) + facts.page_url if facts.page_url.startswith("/") \
                else facts.page_url
            links.append(link(page_url, "describedby", HTML, "Beschreibung im Katalog"))
        doc: dict[str, Any] = {
            "id": d.name, "title": d.title,
            "description": facts.description or f"{d.title} ({d.organization})",
            "attribution": d.attribution or None, "keywords": facts.keywords or None,
            "itemType": "feature", "extent": extent,
            "crs": list(crs_mod.SUPPORTED), "storageCrs": crs_mod.CRS84,
            "version": v.version, "updated": v.finished, "links": links}
        return {k: val for k, val in doc.items() if val is not None}

    # -- routes --------------------------------------------------------------------------------

    @read("", include_in_schema=False)
    @read("/", include_in_schema=False)
    @answers
    def landing(request: Request) -> Response:
        fmt = fmt_of(request)
        base = root(request)
        links = [*self_links(base + "/", fmt),
                 link(f"{base}/api", "service-desc", OPENAPI, "API-Beschreibung (OpenAPI 3.0)"),
                 link(with_f(f"{base}/api", "html"), "service-doc", HTML,
                      "API-Dokumentation"),
                 link(with_f(f"{base}/conformance", "json"), "conformance", JSON,
                      "Konformitätsklassen"),
                 link(with_f(f"{base}/collections", "json"), "data", JSON, "Sammlungen"),
                 link(f"{base}/tileMatrixSets", REL_SCHEMES, JSON, "Kachelschemata")]
        body = {"title": title, "description": description, "links": links}

        def page() -> str:
            items = [link(with_f(f"{base}/collections", "html"), "data", HTML, "Sammlungen"),
                     link(with_f(f"{base}/conformance", "html"), "conformance", HTML,
                          "Konformitätsklassen"),
                     link(with_f(f"{base}/api", "html"), "service-doc", HTML,
                          "API-Dokumentation"), *links[1:3]]
            return html.page(title, [("Start", "")], f"<p>{escape(description)}</p>", items)
        return render(fmt, body, page)

    @read("/conformance", include_in_schema=False)
    @answers
    def conformance(request: Request) -> Response:
        fmt = fmt_of(request)
        url = f"{root(request)}/conformance"
        body = {"conformsTo": CONFORMANCE, "links": self_links(url, fmt)}
        return render(fmt, body, lambda: html.page(
            "Konformitätsklassen", [("Start", with_f(root(request) + "/", "html")),
                                    ("Konformitätsklassen", "")],
            "<ul>" + "".join(f"<li><code>{escape(c)}</code></li>" for c in CONFORMANCE)
            + "</ul>", body["links"]))

    @read("/api", include_in_schema=False)
    @answers
    def api(request: Request) -> Response:
        fmt = fmt_of(request)
        shown = [(c.dataset.name, c.dataset.title, c.meta) for c in visible(request)]
        doc = openapi.document(root(request), title, description, shown, limits,
                               zooms.stop - 1)
        if fmt == "json":
            return Response(geojson.dumps(doc), media_type=OPENAPI)
        rows = []
        for path, ops in doc["paths"].items():
            op = ops["get"]
            names = ", ".join(p.get("name") or p["$ref"].rsplit("/", 1)[1]
                              for p in op.get("parameters", []))
            rows.append([f"<code>GET {escape(path)}</code>", escape(op["summary"]),
                         escape(names)])
        body = (f"<p>{escape(description)} Die maschinenlesbare Beschreibung steht unter "
                f'<a href="{escape(root(request))}/api?f=json">/api?f=json</a> '
                "(OpenAPI 3.0).</p>"
                + html.table(["Pfad", "Inhalt", "Parameter"], rows, "Endpunkte")
                + html.facts([("limit", f"Vorgabe {limits.default}, höchstens "
                               f"{limits.maximum}"),
                              ("crs, bbox-crs", escape(", ".join(crs_mod.SUPPORTED)))]))
        return Response(html.page("API-Dokumentation", [
            ("Start", with_f(root(request) + "/", "html")), ("API-Dokumentation", "")], body),
            media_type="text/html; charset=utf-8")

    @read("/collections", include_in_schema=False)
    @answers
    def collections(request: Request) -> Response:
        fmt = fmt_of(request)
        url = f"{root(request)}/collections"
        found = visible(request)
        docs = [collection_doc(request, c, fmt) for c in found]
        body = {"links": self_links(url, fmt), "collections": docs,
                "crs": list(crs_mod.SUPPORTED)}

        def page() -> str:
            rows = [[f'<a href="{escape(with_f(url + "/" + quote(d["id"]), "html"))}">'
                     f'{escape(d["title"])}</a>', escape(d["description"]),
                     html.number(c.version.rows),
                     f'<a href="{escape(with_f(url + "/" + quote(d["id"]) + "/items", "html"))}'
                     f'">Features</a>'] for d, c in zip(docs, found, strict=True)]
            content = html.table(["Sammlung", "Beschreibung", "Features", "Daten"], rows) \
                if rows else "<p>Keine Sammlungen sichtbar.</p>"
            return html.page("Sammlungen", [("Start", with_f(root(request) + "/", "html")),
                                            ("Sammlungen", "")], content, body["links"])
        return render(fmt, body, page)

    @read("/collections/{name}", include_in_schema=False)
    @answers
    def collection(request: Request, name: str) -> Response:
        c = collection_of(request, name)
        fmt = fmt_of(request)
        doc = collection_doc(request, c, fmt)
        control = {"Cache-Control": caching.cache_control(request, c.access == "public")}

        def page() -> str:
            fields = [[escape(f.name), escape(f.title), escape(f.type),
                       "ja" if f.name in c.meta.queryables else "nein"]
                      for f in c.meta.schema.fields]
            temporal = doc["extent"].get("temporal", {}).get("interval", [[None, None]])[0]
            info = html.facts([
                ("Kennung", escape(c.dataset.name)),
                ("Features", html.number(c.version.rows)),
                ("Version", f"{c.version.version} vom {escape(c.version.finished[:10])}"),
                ("Quelle", escape(c.dataset.attribution)),
                ("Räumliche Ausdehnung (CRS84)",
                 escape(", ".join(f"{v:.5f}" for v in c.version.bbox or []))),
                ("Zeitliche Ausdehnung", escape(" bis ".join(t or "offen" for t in temporal))
                 if c.meta.temporal else ""),
                ("Zeitfilter (datetime) auf", escape(c.meta.temporal.name)
                 if c.meta.temporal else ""),
                ("Kennung der Features", escape(c.meta.id_field.name) if c.meta.id_field
                 else "Zeilennummer"),
                ("Koordinatensysteme", "<br>".join(escape(u) for u in doc["crs"]))])
            props = html.table(["Eigenschaft", "Titel", "Typ", "abfragbar"], fields,
                               "Eigenschaften")
            return html.page(c.dataset.title, [
                ("Start", with_f(root(request) + "/", "html")),
                ("Sammlungen", with_f(root(request) + "/collections", "html")),
                (c.dataset.title, "")],
                f"<p>{escape(doc['description'])}</p>{info}{props}", doc["links"])
        return render(fmt, doc, page, headers=control)

    @read("/collections/{name}/queryables", include_in_schema=False)
    @answers
    def queryables(request: Request, name: str) -> Response:
        c = collection_of(request, name)
        fmt = fmt_of(request)
        url = f"{root(request)}/collections/{quote(name)}/queryables"
        props = {f.name: openapi.property_schema(f) for f in c.meta.queryables.values()}
        geometry = c.meta.schema.geometry
        if geometry is not None:  # for S_INTERSECTS (Part 3: the spatial queryable)
            props[geometry.name] = openapi.geometry_schema(geometry, c.version.geometry_types)
        body = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": url, "type": "object", "title": c.dataset.title,
                "properties": props, "additionalProperties": False,
                "links": self_links(url, fmt, SCHEMA)}

        def page() -> str:
            rows = [[escape(k), escape(v.get("title", "")), escape(v.get("type", "geometry")
                    + (f" ({v['format']})" if "format" in v else "")),
                     escape(", ".join(map(str, v.get("enum", []))))] for k, v in props.items()]
            example = next(iter(props), "name")
            return html.page(f"Abfragbare Eigenschaften – {c.dataset.title}", [
                ("Start", with_f(root(request) + "/", "html")),
                ("Sammlungen", with_f(root(request) + "/collections", "html")),
                (c.dataset.title, with_f(root(request) + f"/collections/{quote(name)}", "html")),
                ("Abfragbare Eigenschaften", "")],
                f"<p>Jede dieser Eigenschaften filtert <code>/items</code> auf Gleichheit, "
                f"z.&nbsp;B. <code>?{escape(example)}=…</code>, und ist in CQL2-Filtern "
                f"nutzbar: <code>?filter={escape(example)} IS NOT NULL</code>.</p>"
                + html.table(["Eigenschaft", "Titel", "Typ", "Werte"], rows), body["links"])
        control = caching.cache_control(request, c.access == "public")
        return render(fmt, body, page, SCHEMA, {"Cache-Control": control})

    @read("/collections/{name}/items", include_in_schema=False)
    @answers
    def items(request: Request, name: str) -> Response:
        c = collection_of(request, name)
        tag, control = caching.version_tag(request, c.version), caching.cache_control(
            request, c.access == "public")
        if caching.matches(request, tag):  # before any feature is read
            return caching.not_modified(tag, control)
        fmt = negotiate(request.query_params, request.headers.get("accept"))
        geometry = c.meta.schema.geometry
        text = request.query_params.get("filter") or ""
        work.needs(request, len(text) * PARSE_WEIGHT)  # 40,000 characters parse in ~0.2 s
        q = parse_items(request.query_params, c.meta.queryables, c.meta.temporal is not None,
                        limits, geometry.name if geometry else None)
        source = cold_source(request, c) if cold.answers(q.selection_key) else None
        if source is not None:  # the layer is being read: only what this page needs
            try:
                with store.reading(c.version):
                    cold_page = source.page(q.selection_key, q.offset, q.limit,
                                            work.deadline(request))
            finally:
                read_behind(c)
            matched, layer, page_rows = cold_page.matched, cold_page.layer, cold_page.rows
        else:
            layer = layer_of(request, c)
            rows = rows_of(request, layer, q.selection_key)
            matched = layer.rows if rows is None else len(rows)
            page_rows = rows[q.offset:q.offset + q.limit] if rows is not None else \
                np.arange(min(q.offset, matched), min(q.offset + q.limit, matched))
        start, stop = min(q.offset, matched), min(q.offset + q.limit, matched)
        work.needs(request, len(page_rows) * PAGE_WEIGHT * (HTML_FACTOR if fmt == "html" else 1))
        feats = geojson.features(layer, page_rows, q.crs, fragments=fmt == "json")
        url = f"{root(request)}/collections/{quote(name)}/items"
        given = [(k, v) for k, v in request.query_params.multi_items()
                 if k not in ("f", "limit", "offset")]

        def paged(offset: int) -> list[tuple[str, str]]:
            return [*given, ("limit", str(q.limit)), ("offset", str(offset))]
        links = self_links(url, fmt, GEOJSON, paged(q.offset))
        if stop < matched:
            links.append(link(with_f(url, fmt, paged(stop)), "next",
                              GEOJSON if fmt == "json" else HTML, "nächste Seite"))
        if q.offset > 0:
            links.append(link(with_f(url, fmt, paged(max(0, min(q.offset, matched) - q.limit))),
                              "prev", GEOJSON if fmt == "json" else HTML, "vorige Seite"))
        coll_url = f"{root(request)}/collections/{quote(name)}"
        links.append(link(with_f(coll_url, "json"), "collection", JSON, c.dataset.title))
        headers = {"Content-Crs": q.crs.header, "ETag": tag, "Cache-Control": control}
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        body = {"type": "FeatureCollection", "numberMatched": matched,
                "numberReturned": len(feats), "timeStamp": stamp, "features": feats,
                "links": links}

        def page() -> str:
            columns = c.meta.schema.columns
            names = [f.name for f in columns]
            kinds = [html.geometry_summary(f["geometry"]) for f in feats]
            table_rows = [
                [f'<a href="{escape(with_f(url + "/" + quote(str(f["id"]), safe=""), "html"))}">'
                 f'{escape(str(f["id"]))}</a>',
                 *(escape(html.text(f["properties"].get(n))) for n in names), escape(kind)]
                for f, kind in zip(feats, kinds, strict=True)]
            nav = " ".join(f'<a href="{escape(lk["href"])}">{escape(lk["title"])}</a>'
                           for lk in links if lk["rel"] in ("prev", "next"))
            shown = f"{start + 1}–{stop}" if stop > start else "keine"
            summary = (f"<p>{html.number(matched)} passende Features, angezeigt: {shown}. "
                       f"Koordinaten in <code>{escape(q.crs.uri)}</code>.</p>")
            return html.page(f"Features – {c.dataset.title}", [
                ("Start", with_f(root(request) + "/", "html")),
                ("Sammlungen", with_f(root(request) + "/collections", "html")),
                (c.dataset.title, with_f(coll_url, "html")), ("Features", "")],
                summary + html.table(["Kennung", *(f.title or f.name for f in columns),
                                      "Geometrie"], table_rows,
                                     f"Features von {c.dataset.title}", row_headers=True)
                + f'<p class="paging">{nav}</p>', links)
        return render(fmt, body, page, GEOJSON, headers)

    @read("/collections/{name}/items/{feature_id:feature_id}", include_in_schema=False)
    @answers
    def item(request: Request, name: str, feature_id: str) -> Response:
        c = collection_of(request, name)
        tag, control = caching.version_tag(request, c.version), caching.cache_control(
            request, c.access == "public")
        if caching.matches(request, tag):
            return caching.not_modified(tag, control)
        fmt = fmt_of(request, ("f", "crs"))
        out_crs = parse_crs(request.query_params, "crs")
        source = cold_source(request, c)
        if source is not None:  # the layer is being read: the row groups that may hold it
            try:
                with store.reading(c.version):
                    found = source.find(feature_id, work.deadline(request))
            finally:
                read_behind(c)
            if found is None:
                raise NotFound
            layer, row_of = found.layer, found.rows
        else:
            layer = layer_of(request, c)
            if c.meta.id_field is not None:
                work.needs(request, layer.rows)  # a key is looked up by a scan of its column
            row = layer.find(feature_id)
            if row is None:
                raise NotFound
            row_of = np.array([row])
        feature = geojson.features(layer, row_of, out_crs, fragments=fmt == "json")[0]
        coll_url = f"{root(request)}/collections/{quote(name)}"
        url = f"{coll_url}/items/{quote(feature_id, safe='')}"
        params = [("crs", out_crs.uri)] if "crs" in request.query_params else []
        feature["links"] = [*self_links(url, fmt, GEOJSON, params),
                            link(with_f(coll_url, "json"), "collection", JSON,
                                 c.dataset.title)]

        def page() -> str:
            titles = {f.name: f.title for f in c.meta.schema.columns}
            rows = [(titles.get(k) or k, escape(html.text(v)))
                    for k, v in feature["properties"].items()]
            rows.append(("Geometrie", escape(html.geometry_summary(feature["geometry"]))))
            return html.page(f"Feature {feature_id}", [
                ("Start", with_f(root(request) + "/", "html")),
                ("Sammlungen", with_f(root(request) + "/collections", "html")),
                (c.dataset.title, with_f(coll_url, "html")),
                ("Features", with_f(coll_url + "/items", "html")), (feature_id, "")],
                html.facts(rows), feature["links"])
        return render(fmt, feature, page, GEOJSON, {"Content-Crs": out_crs.header,
                                                    "ETag": tag, "Cache-Control": control})

    # -- OGC API – Tiles (vector tiles; JSON documents only) -----------------------------------

    def json_only(request: Request, allowed: tuple[str, ...] = ("f",)) -> None:
        check_known(request.query_params, allowed)
        negotiate(request.query_params, None, ("json",))

    def tms_summary(request: Request) -> dict[str, Any]:
        url = f"{root(request)}/tileMatrixSets/{tiles_mod.TMS_ID}"
        return {"id": tiles_mod.TMS_ID, "title": "Google Maps Compatible for the World",
                "uri": tiles_mod.TMS_URI, "crs": tiles_mod.EPSG3857,
                "links": [link(url, "self", JSON, "WebMercatorQuad"),
                          link(url, REL_SCHEME, JSON, "WebMercatorQuad")]}

    @read("/tileMatrixSets", include_in_schema=False)
    @answers
    def tile_matrix_sets(request: Request) -> Response:
        json_only(request)
        url = f"{root(request)}/tileMatrixSets"
        return render("json", {"tileMatrixSets": [tms_summary(request)],
                               "links": [link(url, "self", JSON, "Kachelschemata")]}, str)

    @read("/tileMatrixSets/{tms}", include_in_schema=False)
    @answers
    def tile_matrix_set(request: Request, tms: str) -> Response:
        json_only(request)
        if tms != tiles_mod.TMS_ID:
            raise NotFound
        doc = tiles_mod.tile_matrix_set(zooms)
        doc["links"] = [link(f"{root(request)}/tileMatrixSets/{tms}", "self", JSON, tms)]
        return render("json", doc, str)

    def tileset_doc(request: Request, c: Collection) -> dict[str, Any]:
        d, v, meta = c.dataset, c.version, c.meta
        url = f"{root(request)}/collections/{quote(d.name)}/tiles/{tiles_mod.TMS_ID}"
        layer = layer_of(request, c)
        work.needs(request, layer.rows)  # the tile source and detail zoom are built from it
        src = tiles_mod.source(layer)
        props = {f.name: openapi.property_schema(f) for f in meta.schema.columns}
        if src.mx is not None:
            props["point_count"] = {"type": "integer", "title": "Zahl der Punkte im Cluster"}
        top = str(zooms.stop - 1)
        doc: dict[str, Any] = {
            "title": f"{d.title} (Vektorkacheln)", "dataType": "vector",
            "crs": tiles_mod.EPSG3857, "tileMatrixSetURI": tiles_mod.TMS_URI,
            "tileMatrixSetLimits": tiles_mod.limits(v.bbox, zooms),
            "layers": [{"id": d.name, "title": d.title, "dataType": "vector",
                        "geometryDimension": src.dimension, "minTileMatrix": "0",
                        "maxTileMatrix": top, "propertiesSchema": {
                            "type": "object", "properties": props}}],
            "links": [link(url, "self", JSON, "Kachelsatz"),
                      link(f"{root(request)}/tileMatrixSets/{tiles_mod.TMS_ID}", REL_SCHEME,
                           JSON, tiles_mod.TMS_ID),
                      link(f"{root(request)}/collections/{quote(d.name)}", "collection", JSON,
                           d.title),
                      link(f"{url}/tilejson.json", "describedby", JSON, "TileJSON"),
                      {**link(url + "/{tileMatrix}/{tileRow}/{tileCol}", "item",
                              tiles_mod.MVT_MEDIA, "Kachel"), "templated": True}]}
        if v.bbox:
            doc["boundingBox"] = {"lowerLeft": v.bbox[:2], "upperRight": v.bbox[2:],
                                  "crs": crs_mod.CRS84}
        if src.mx is not None:
            doc["x-hub-pointClusters"] = {
                "maxPointsPerTile": src.raw_max, "cellsPerTileSide": tiles_mod.CELLS,
                "countProperty": "point_count",
                "detailZoom": tiles_mod.detail_zoom(layer, zooms)}
        doc["x-hub-maxTileBytes"] = tiles_mod.MAX_TILE_BYTES
        return doc

    @read("/collections/{name}/tiles", include_in_schema=False)
    @answers
    def tilesets(request: Request, name: str) -> Response:
        c = collection_of(request, name)
        json_only(request)
        url = f"{root(request)}/collections/{quote(name)}/tiles"
        entry = {"title": f"{c.dataset.title} (Vektorkacheln)", "dataType": "vector",
                 "crs": tiles_mod.EPSG3857, "tileMatrixSetURI": tiles_mod.TMS_URI,
                 "links": [link(f"{url}/{tiles_mod.TMS_ID}", "self", JSON, "Kachelsatz"),
                           link(f"{root(request)}/tileMatrixSets/{tiles_mod.TMS_ID}",
                                REL_SCHEME, JSON, tiles_mod.TMS_ID)]}
        return render("json", {"tilesets": [entry],
                               "links": [link(url, "self", JSON, "Kachelsätze")]}, str)

    @read("/collections/{name}/tiles/{tms}", include_in_schema=False)
    @answers
    def tileset(request: Request, name: str, tms: str) -> Response:
        c = collection_of(request, name)
        json_only(request)
        if tms != tiles_mod.TMS_ID:
            raise NotFound
        return render("json", tileset_doc(request, c), str)

    @read("/collections/{name}/tiles/{tms}/tilejson.json", include_in_schema=False)
    @answers
    def tilejson(request: Request, name: str, tms: str) -> Response:
        c = collection_of(request, name)
        json_only(request)
        if tms != tiles_mod.TMS_ID:
            raise NotFound
        d, v, meta = c.dataset, c.version, c.meta
        url = f"{root(request)}/collections/{quote(name)}/tiles/{tms}"
        kinds = {"string": "String", "boolean": "Boolean", "date": "String",
                 "datetime": "String"}
        fields = {f.name: kinds.get(f.type, "Number") for f in meta.schema.columns}
        layer = layer_of(request, c)
        work.needs(request, layer.rows)  # the tile source is built from the whole layer
        if tiles_mod.source(layer).mx is not None:
            fields["point_count"] = "Number"
        bbox = v.bbox or [-180.0, -85.0511, 180.0, 85.0511]
        doc = {"tilejson": "3.0.0", "name": d.title, "description": f"{d.title} ({d.organization})",
               "attribution": d.attribution or "", "scheme": "xyz",
               "tiles": [url + "/{z}/{y}/{x}"], "minzoom": 0, "maxzoom": zooms.stop - 1,
               "bounds": bbox, "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2,
                                          min(10, zooms.stop - 1)],
               "vector_layers": [{"id": d.name, "description": d.title, "fields": fields,
                                  "minzoom": 0, "maxzoom": zooms.stop - 1}]}
        return render("json", doc, str)

    def tile_number(raw: str, param: str, size: int) -> int:
        if not re.fullmatch(r"0|[1-9][0-9]{0,8}", raw):
            raise BadParameter(param, f"{raw!r} is not a whole number ≥ 0 (digits 0-9, no "
                                      "leading zero)")
        value = int(raw)
        if value >= size:
            raise BadParameter(param, f"{value} is outside the tile matrix (0 to {size - 1})")
        return value

    @read("/collections/{name}/tiles/{tms}/{z}/{y}/{x}", include_in_schema=False)
    @answers
    def tile(request: Request) -> Response:
        # the path's parts as they are (FastAPI's checking of declared parameters would
        # cost a cached tile a third of its time; tile_number checks them here)
        name, tms, z, y, x = (request.path_params[k] for k in ("name", "tms", "z", "y", "x"))
        c = collection_of(request, name)
        check_known(request.query_params, ("f",))
        fmt = single(request.query_params, "f")
        if fmt is not None and fmt not in ("mvt", "pbf"):
            raise BadParameter("f", f"{fmt!r} is not offered here; tiles are mvt")
        if tms != tiles_mod.TMS_ID:
            raise NotFound
        zoom = tile_number(z, "tileMatrix", zooms.stop)
        row = tile_number(y, "tileRow", 2 ** zoom)
        col = tile_number(x, "tileCol", 2 ** zoom)
        v = c.version
        span = tiles_mod.limits(v.bbox, range(zoom, zoom + 1))
        if not span or not (span[0]["minTileRow"] <= row <= span[0]["maxTileRow"]
                            and span[0]["minTileCol"] <= col <= span[0]["maxTileCol"]):
            raise NotFound  # outside the collection's tileMatrixSetLimits
        etag = f'"{v.checksum[:16]}-{tiles_mod.ENCODER}-{zoom}-{col}-{row}"'
        public = c.access == "public"
        headers = {"ETag": etag, "Vary": "Authorization",
                   "Cache-Control": f"{'public' if public else 'private'}, max-age=300"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        key = (c.dataset.name, v.version, zoom, col, row)
        data = prerender.tile(key)
        if data is None:
            data = encoded.get(key)

        def answer(data: bytes) -> Response:
            if not data:
                return Response(status_code=204, headers=headers)
            return Response(data, media_type=tiles_mod.MVT_MEDIA, headers=headers)
        if data is not None:
            return answer(data)
        work.wait_for(request, encoded.pending(key))  # being rendered for another request
        layer = layer_of(request, c)
        # rendering grows with the data in the tile: a large one in the pool, the checks
        # above made once
        return work.then(request, tiles_mod.cost(layer, zoom, col, row), lambda: answer(
            encoded.make(key, lambda: tiles_mod.render(layer, c.dataset.name, zoom, col, row))))

    return router
