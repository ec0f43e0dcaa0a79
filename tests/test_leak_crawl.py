"""The leak crawl: every surface of one real `hub serve`, crawled as anonymous, as a viewer and
as an editor of another organisation, shows no marker of what they may not see; counts and
facets agree with the visible set worked out from the seeding (tests/leak_site.py); a hidden
name answers exactly as an unknown one, in status, body, headers and timing class. A crawl
as the owning organisation's viewer finds its markers: the crawl can fail.

Every response body is kept (gzip decoded by httpx, vector tiles decoded with
mapbox-vector-tile, GeoParquet read with pyarrow; GeoPackage and FlatGeobuf store text as is).
"""

from __future__ import annotations

import io
import json
import re
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import mapbox_vector_tile
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import rdflib
from babel.numbers import format_decimal
from conftest import CENTRE, hub_server
from leak_site import (
    ANSWERS,
    BY_NAME,
    DATASETS,
    FILLERS,
    PASSWORD,
    RECORD_KINDS,
    ROLES,
    TAG,
    THEME,
    UPLOADS_TO,
    USERS,
    A,
    B,
    Site,
    hidden_markers,
    publisher,
    records_seen,
    seed,
    seed_online,
    shown_markers,
)
from starlette.routing import Mount

from hub.catalog.model import HUB_DOWNLOADS, hub_download_id
from hub.jobs import list_jobs
from hub.web.routing import Prefixed

FORMATS = ("geojson", "csv", "gpkg", "parquet", "fgb")
FEEDS = ("rdf", "ttl", "jsonld")
FACETS = ("tags", "organization", "groups", "res_format", "license_id")
TMS = "WebMercatorQuad"
HYDRA = rdflib.Namespace("http://www.w3.org/ns/hydra/core#")
# every URL that names a dataset: a hidden name must answer as an unknown one on each
BY_NAME_URLS = (
    "/api/datasets/{}", "/datasets/{}", "/dataset/{}.jsonld", "/dataset/{}.ttl",
    "/downloads/{}", "/downloads/{}/latest.csv", "/downloads/{}/v1.parquet",
    "/downloads/{}/latest.geojson", "/ogc/collections/{}", "/ogc/collections/{}?f=html",
    "/ogc/collections/{}/items", "/ogc/collections/{}/items?f=html",
    "/ogc/collections/{}/items/1", "/ogc/collections/{}/queryables",
    "/ogc/collections/{}/tiles", f"/ogc/collections/{{}}/tiles/{TMS}",
    f"/ogc/collections/{{}}/tiles/{TMS}/tilejson.json",
    f"/ogc/collections/{{}}/tiles/{TMS}/0/0/0",
    "/api/3/action/package_show?id={}", "/api/3/action/resource_show?id={}",
    "/api/3/action/package_show?id={}&include_deleted=true",
    "HEAD /downloads/{}/latest.csv", "HEAD /downloads/{}/v1.gpkg", "HEAD /downloads/{}",
    "HEAD /ogc/collections/{}", "HEAD /ogc/collections/{}/items",
    f"HEAD /ogc/collections/{{}}/tiles/{TMS}/0/0/0",
    # bad requests too: checked in the same order for hidden and unknown names
    "/downloads/{}/latest.xyz", "/downloads/{}/v99.csv", "/downloads/{}/latest.csv?dialect=x",
    "/ogc/collections/{}/items?limit=abc", "/ogc/collections/{}/items?filter=nr%20%3D",
    "/ogc/collections/{}/items?bbox=1,2", f"/ogc/collections/{{}}/tiles/{TMS}/99/0/0",
    "/api/3/action/package_show?id={}&callback=x")
VOLATILE_HEADERS = {"date", "content-length"}


MARK = re.compile(r"leakmark[-_]([0-9a-f]{16})")  # as written, in a column name, an email


DATA_URL = re.compile(r"/(?:downloads|ogc/collections)/([a-z0-9_-]+)")  # held data's URLs


def marks_in(text: str) -> set[str]:
    """The markers in a text, by their unique part."""
    return set(MARK.findall(text.lower()))


def data_named(text: str) -> set[str]:
    """The datasets whose data a text links to (downloads, OGC collections)."""
    return set(DATA_URL.findall(text))


@dataclass
class Answer:
    url: str
    status: int
    marks: set[str]  # the markers in the answer (headers, body) its URL did not ask for
    data: set[str]  # the datasets whose data the answer links to (the URL's own left out)


@dataclass
class Crawl:
    """What one role was shown: every URL asked once, and the markers of its answer."""

    site: Site
    role: str
    client: httpx.Client = field(init=False)
    seen: dict[str, Answer] = field(default_factory=dict)

    session: httpx.Client = field(init=False)  # the same user signed in by a session cookie

    def __post_init__(self) -> None:
        token = self.site.tokens.get(self.role)
        self.client = httpx.Client(base_url=self.site.url, timeout=60,
                                   headers={"Authorization": token} if token else {})
        self.session = httpx.Client(base_url=self.site.url, timeout=60)
        if self.role in USERS:
            form = self.session.get("/anmelden")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf, form.text[:300]
            signed_in = self.session.post("/anmelden", data={
                "name": USERS[self.role][0], "password": PASSWORD, "csrf": csrf.group(1)})
            assert signed_in.status_code == 303, signed_in.text[:300]

    def get(self, path: str, signed_in: bool = False, **params: Any) -> httpx.Response:
        """GET `path` with the role's token, or (`signed_in`) with its session cookie."""
        client = self.session if signed_in else self.client
        response = client.get(path, params=params or None)
        url = str(response.request.url)
        text = "\n".join(f"{k}: {v}" for k, v in response.headers.items()) + text_of(response)
        self.seen[url] = Answer(url, response.status_code, marks_in(text) - marks_in(url),
                                data_named(text) - data_named(url))
        return response

    def action(self, action: str, /, **params: Any) -> Any:
        response = self.get(f"/api/3/action/{action}", **params)
        body = response.json()
        assert body.get("success"), (action, params, body)
        return body["result"]

    def found(self, markers: dict[str, str]) -> list[tuple[str, str, str]]:
        """(url, marker, dataset) for each of `markers` found in an answer."""
        wanted = {m.split("-")[1]: (m, d) for m, d in markers.items()}
        return [(a.url, *wanted[h]) for a in self.seen.values() for h in a.marks & wanted.keys()]


def text_of(response: httpx.Response) -> str:
    """The answer as text: tiles decoded, GeoParquet read back, the rest as it came."""
    kind = response.headers.get("content-type", "")
    if response.status_code != 200:
        return response.text
    if "mapbox-vector-tile" in kind:
        return json.dumps(mapbox_vector_tile.decode(response.content), default=str)
    if "parquet" in kind:  # its schema, metadata and every distinct text value
        table = pq.read_table(io.BytesIO(response.content))
        texts = [str(v) for col in table.columns
                 if pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                 for v in pc.unique(col).to_pylist()]
        return "\n".join([repr(table.schema.metadata), repr(table.schema), *texts])
    return response.content.decode("utf-8", "replace")


# -- the site ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    project, tokens = seed(tmp_path_factory.mktemp("leak") / "project")
    with hub_server(project.root, project.store_dir) as server:
        site = seed_online(server.url, project, tokens)
        site.cold_growth = first_touch(site, server.pid)  # before anyone loads the layer
        yield site


# the URLs of a dataset's data, each of which reads it when the caller may see it
DATA_URLS = ("/ogc/collections/{}", "/ogc/collections/{}/items", "/ogc/collections/{}/items/1",
             "/ogc/collections/{}/queryables", f"/ogc/collections/{{}}/tiles/{TMS}",
             f"/ogc/collections/{{}}/tiles/{TMS}/tilejson.json",
             f"/ogc/collections/{{}}/tiles/{TMS}/0/0/0", "/downloads/{}/latest.csv",
             "/downloads/{}/latest.gpkg", "/downloads/{}")


def first_touch(site: Site, pid: int) -> int:
    """How much the server's memory grows (bytes) when another organisation's viewer asks
    for each data URL of the large hidden layer, on a server that has not read it yet (the
    same URLs of an unknown name asked first, so the server is warm)."""
    with httpx.Client(base_url=site.url, timeout=60,
                      headers={"Authorization": site.tokens["b_viewer"]}) as client:
        for _ in range(3):
            for template in DATA_URLS:
                assert client.get(template.format(unknown_like("gross"))).status_code == 404
        before = rss(pid)
        for template in DATA_URLS:
            assert client.get(template.format("gross")).status_code == 404
        return rss(pid) - before


def rss(pid: int) -> int:
    """Resident memory of a process (bytes), from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)[1]) * 1024


@pytest.fixture(scope="module")
def crawls(site: Site) -> dict[str, Crawl]:
    return {role: crawl(site, role) for role in ROLES}


def crawl(site: Site, role: str) -> Crawl:
    c = Crawl(site, role)
    for path in ("/", "/api", "/api/", "/api/3", "/api/3/", "/api/openapi.json",
                 "/api/action/package_list",
                 "/api/3/action/package_list/", "/api/action/package_search/"):
        c.get(path)
    listed = [d["name"] for d in c.get("/api/datasets").json()]
    for name in listed:
        c.get(f"/api/datasets/{name}")
        c.get(f"/api/datasets/{name}/features")
    names = [d.name for d in DATASETS]
    for name in names:  # visible or not: each answer is kept
        c.get(f"/datasets/{name}")
    crawl_dcat(c)
    crawl_ckan(c)
    crawl_ogc(c, names)
    crawl_portal(c)
    crawl_workspace(c)
    crawl_places(c)
    for name in names:
        for fmt in FEEDS:
            c.get(f"/dataset/{name}.{fmt}")
            c.get(f"/dataset/{site.ids.get(name, name)}.{fmt}")
        c.get(f"/downloads/{name}/")
        versions = c.get(f"/downloads/{name}")
        if versions.status_code == 200:  # older versions in full, the current one as latest
            listed = [path for v in versions.json()["versions"] for path in (
                v["downloads"].values() if not v["current"] else [v["downloads"]["csv"]])]
        else:
            listed = [f"/downloads/{name}/v1.{fmt}" for fmt in FORMATS]
        for path in [f"/downloads/{name}/latest.{fmt}" for fmt in FORMATS] + listed:
            c.get(path)
    for path in site.uploads.values():
        c.get(path)
    return c


PORTAL_PAGES = ("/datasets", "/organizations", "/ueber-die-daten", "/impressum", "/datenschutz",
                "/barrierefreiheit", "/leichte-sprache", "/static/portal.css",
                "/static/portal.js", "/anmelden", "/konto",  # /konto: a session's only
                "/health", "/ready")  # for the load balancer (hub.web.health)
PORTAL_FACET = re.compile(r'name="(\w+)" value="([^"]*)"')


def crawl_portal(c: Crawl) -> None:
    """The citizen portal (what the caller may see): its pages in the three languages, the
    search with every facet value it offers, each marker and far pages, each organisation,
    the place search and every place page."""
    for path in PORTAL_PAGES:
        c.get(path)
    for lang in ("de", "dsb", "en"):
        for path in ("/", "/datasets", "/organizations"):
            c.get(path, lang=lang)
    offered = set(PORTAL_FACET.findall(text_of(c.get("/datasets"))))
    for facet, value in sorted(offered):
        c.get("/datasets", **{facet: value})
    for page in (2, 3, 1000):
        c.get("/datasets", page=page)
    for d in DATASETS:
        for mark in d.marks:
            c.get("/datasets", q=mark)
            c.get("/datasets", q=mark.split("-")[1][:8])
    for org in (A, B):
        c.get(f"/organizations/{org}")
        c.get(f"/organizations/{org}", page=2)
    # the place pages, whose topics the seeding maps to hidden datasets (leak_site.ANSWERS)
    for lang in ("de", "dsb", "en"):
        c.get("/orte", lang=lang)
    for q in ("a", "Titel", "leakmark", "12062", "04924"):
        c.get("/orte", q=q)
    for place in c.get("/api/orte").json():
        c.get(f"/orte/{place['slug']}")
    c.get("/orte/unbekannt")
    # the curated maps and their lists, over the same hidden answering datasets
    for lang in ("de", "dsb", "en"):
        for path in ("/karten/breitband", "/karten/pflege", "/karten/mobilitaet"):
            c.get(path, lang=lang)
    c.get("/karten/breitband", stufe="100", sort="share")
    c.get("/karten/pflege", sort="type")
    c.get("/karten/mobilitaet", min_kw="0", sort="power")
    c.get("/karten/pflege", page=2)
    # the map viewer of every dataset (visible or not: each answer is kept) and its list pages
    for d in DATASETS:
        for page in (1, 2):
            c.get(f"/karten/daten/{d.name}", page=page)


def crawl_workspace(c: Crawl) -> None:
    """The data managers' workspace, signed in by a session (anonymous: the redirects), in
    the three languages."""
    jobs = [f"/arbeitsbereich/auftraege/{job.id}"
            for job in list_jobs(c.site.project.store.db)]  # org A's, seeded
    for lang in ("de", "dsb", "en"):
        for path in ("/arbeitsbereich", "/konto", "/arbeitsbereich/aufgaben",
                     "/arbeitsbereich/neu", "/arbeitsbereich/benutzer",
                     "/arbeitsbereich/protokoll", "/arbeitsbereich/nutzung",
                     "/arbeitsbereich/bericht", "/arbeitsbereich/aggregate",
                     "/arbeitsbereich/gibt/es/nicht", *jobs):
            c.get(path, signed_in=True, lang=lang)
    for path in jobs:
        c.get(path + ".json", signed_in=True)
    for path in ("/arbeitsbereich/protokoll.csv", "/arbeitsbereich/nutzung.csv",
                 "/arbeitsbereich/bericht.csv"):
        c.get(path, signed_in=True)
    for d in DATASETS:  # the usage of each dataset: hidden ones answer 404 like unknown ones
        c.get("/arbeitsbereich/nutzung", signed_in=True, datensatz=d.name)
        c.get("/arbeitsbereich/nutzung.csv", signed_in=True, datensatz=d.name)
        c.get("/arbeitsbereich/protokoll", signed_in=True, gegenstand=d.name)
    for d in DATASETS:  # (only editors of its organisation manage one; others get 404)
        c.get(f"/arbeitsbereich/datensaetze/{d.name}", signed_in=True)
    c.get(f"/arbeitsbereich/datensaetze/{FILLERS[0]}", signed_in=True)
    for name in [d.name for d in DATASETS]:  # bringing data in: visible or not, each answer
        for path in ("daten", "daten/lauf.json", "pruefbericht", "pruefbericht/quarantaene.csv",
                     "pruefbericht/probleme.csv", "pipeline.yaml"):
            c.get(f"/arbeitsbereich/datensaetze/{name}/{path}", signed_in=True)


def crawl_dcat(c: Crawl) -> None:
    for fmt in FEEDS:
        for since in (None, "2000-01-01", "2000-01-01T00:00:00Z"):
            params = {"modified_since": since} if since else {}
            pages, asked = [c.get(f"/catalog.{fmt}", **params)], set()
            while pages:  # every Hydra page the feed links to
                text = text_of(pages.pop())
                for link in set(re.findall(r"/catalog\.\w+\?[^\"'\s<>\\]*page=\d+", text)):
                    link = link.replace("&amp;", "&")
                    if link not in asked and len(asked) < 20:
                        asked.add(link)
                        pages.append(c.get(link))
            c.get(f"/catalog.{fmt}", page=2, **params)


def crawl_ckan(c: Crawl) -> None:
    site = c.site
    for name in ("status_show", "site_read", "package_list", "license_list",
                 "current_package_list_with_resources", "tag_list"):
        c.action(name)
    c.action("tag_list", all_fields="true")
    c.action("help_show", name="package_search")
    for private in ("true", "false"):
        for drafts in ("true", "false"):
            c.action("package_search", q="*:*", rows=1000, include_private=private,
                     include_drafts=drafts, include_deleted=drafts)
    c.action("package_search", q=TAG, include_private="true")
    for facet in FACETS:
        c.action("package_search", **{"facet.field": json.dumps([facet]),
                                      "facet.limit": -1, "include_private": "true"})
    for fq in (f"organization:{A}", f"organization:{B}", f"tags:{TAG}", "res_format:PDF",
               f"groups:{THEME.lower()}", "license_id:\"dl-by-de/2.0\""):
        c.action("package_search", fq=fq, include_private="true")
    start = 0
    while start < 1000:  # paging
        page = c.action("package_search", q="*:*", rows=25, start=start,
                        include_private="true", sort="name asc")
        if not page["results"]:
            break
        start += 25
    for d in DATASETS:
        c.get("/api/3/action/package_show", id=d.name)
        c.get("/api/3/action/package_show", id=site.ids.get(d.name, d.name),
              include_deleted="true")
    for ident in site.ids.values():  # the resources of the hub's own downloads
        for kind in HUB_DOWNLOADS:
            c.get("/api/3/action/resource_show", id=hub_download_id(ident, kind))
    for name, path in site.uploads.items():
        c.get("/api/3/action/resource_show", id=path.split("/")[4])
        c.get("/api/3/action/package_show", id=site.ids[name])
    for d in DATASETS:
        for mark in d.marks:  # searching for a marker: it is never echoed in an answer
            c.get("/api/3/action/package_autocomplete", q=mark[:14])
            c.get("/api/3/action/package_autocomplete", q=mark[9:15])
    c.get("/api/3/action/package_autocomplete", q="LEAKMARK")
    c.action("organization_list", all_fields="true", limit=1000)
    c.action("group_list", all_fields="true", limit=1000)
    for org in (A, B):
        c.action("organization_show", id=org, include_datasets="true")
    c.action("group_show", id=THEME.lower(), include_datasets="true")
    for query in ("name:anlage", "url:download", "format:pdf", "name:leakmark"):
        c.get("/api/3/action/resource_search", query=query)


PLACE_POINT = f"/api/orte/punkt?lon={CENTRE[0]}&lat={CENTRE[1]}"


def crawl_places(c: Crawl) -> None:
    """The answers per place (hub.places), whose topics the seeding maps to hidden datasets
    (leak_site.ANSWERS): sources name their datasets' titles and link their collections."""
    for place in c.get("/api/orte").json():
        c.get(f"/api/orte/{place['slug']}")
    c.get("/api/orte/unbekannt")
    for q in ("a", "Titel", "leakmark", "12062", "04924"):
        c.get("/api/orte/suche", q=q)
    c.get(PLACE_POINT)
    c.get("/api/orte/punkt", lon="x", lat=CENTRE[1])


def crawl_ogc(c: Crawl, names: list[str]) -> None:
    for path in ("/ogc", "/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/api",
                 "/ogc/tileMatrixSets", f"/ogc/tileMatrixSets/{TMS}"):
        c.get(path)
        c.get(path, f="html")
    for name in names:
        base = f"/ogc/collections/{name}"
        for fmt in ("json", "html"):
            c.get(base, f=fmt)
            c.get(f"{base}/items", f=fmt, limit=1000)
            c.get(f"{base}/queryables", f=fmt)
        c.get(f"{base}/items/1")
        c.get(f"{base}/tiles")
        c.get(f"{base}/tiles/{TMS}/tilejson.json")
        tileset = c.get(f"{base}/tiles/{TMS}")
        if tileset.status_code != 200:
            c.get(f"{base}/tiles/{TMS}/0/0/0")
            continue
        for limit in tileset.json()["tileMatrixSetLimits"]:
            z = int(limit["tileMatrix"])
            if z not in (0, 8, 14):
                continue
            for row in range(limit["minTileRow"], min(limit["maxTileRow"], limit["minTileRow"]
                                                      + 1) + 1):
                for col in range(limit["minTileCol"],
                                 min(limit["maxTileCol"], limit["minTileCol"] + 1) + 1):
                    c.get(f"{base}/tiles/{TMS}/{z}/{row}/{col}")


# -- no marker anywhere --------------------------------------------------------------------

@pytest.mark.parametrize("role", ["anonymous", "b_viewer", "b_editor"])
def test_no_marker_of_hidden_data_anywhere(crawls: dict[str, Crawl], role: str) -> None:
    c = crawls[role]
    assert len(c.seen) > 400  # every surface was asked
    assert not [a for a in c.seen.values() if a.status >= 500]
    assert c.found(hidden_markers(role)) == []
    hidden_data = {d.name for d in DATASETS if not d.sees_data(role)}
    assert [(a.url, a.data & hidden_data) for a in c.seen.values() if a.data & hidden_data] \
        == []  # no link to hidden data: not on a public record of restricted data either


def test_the_crawl_finds_what_may_be_seen(crawls: dict[str, Crawl]) -> None:
    """Positive controls: the owner's viewer meets its restricted markers (titles, keywords,
    extras, attribute values, column names, tiles, uploads' file names), and another
    organisation's staff the internal ones — so a crawl that saw nothing would fail."""
    owner = crawls["a_viewer"]
    assert owner.found(hidden_markers("a_viewer")) == []
    found = {d for _, _, d in owner.found(shown_markers("a_viewer"))}
    assert {"geheim", "geheim-inventar", "gross", "freigabe", "eigen", "intern"} <= found
    kinds = {BY_NAME[d].marks[m] for _, m, d in owner.found(shown_markers("a_viewer"))}
    assert set(RECORD_KINDS) | {"value", "column"} <= kinds, kinds
    tiles = [a for a in owner.seen.values() if re.search(r"/gross/tiles/\w+/\d+/\d+/\d+$",
                                                          a.url) and a.status == 200]
    assert tiles and any(a.marks & marks_in(" ".join(BY_NAME["gross"].marks))
                         for a in tiles)
    values = marks_in(" ".join(m for m, kind in BY_NAME["gross"].marks.items()
                                if kind == "value"))
    for fmt in FORMATS:  # every format read back finds the attribute values
        assert owner.seen[f"{owner.site.url}/downloads/gross/latest.{fmt}"].marks & values, fmt
    assert owner.seen[f"{owner.site.url}/downloads/intern/v1.fgb"].status == 200
    linked = set().union(*(a.data for a in owner.seen.values()))
    assert {"geheim", "gross", "eigen", "freigabe", "intern"} <= linked
    staff = {d for _, _, d in crawls["b_viewer"].found(shown_markers("b_viewer"))}
    assert {"intern", "intern-inventar", "abgeleitet"} <= staff  # (derived: its own markers)


def test_place_answers_come_from_what_the_caller_may_see(crawls: dict[str, Crawl]) -> None:
    """The answers for a point name (and link) exactly the answering datasets the caller may
    see: none for anonymous callers, the internal one for other staff, all for the owner."""
    for role, crawl in crawls.items():
        answer = crawl.seen[crawl.site.url + PLACE_POINT]
        assert answer.status == 200, role
        assert answer.data == {d for d in ANSWERS.values() if BY_NAME[d].sees_data(role)}, role
    assert crawls["a_viewer"].seen[crawls["a_viewer"].site.url + PLACE_POINT].data == set(
        ANSWERS.values())


def test_the_crawl_reaches_every_route(site: Site, crawls: dict[str, Crawl],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each GET route of the server is crawled: a new surface fails here until the crawl
    covers it."""
    import hub.web.app

    monkeypatch.setattr(hub.web.app, "_long_running_memory", lambda: None)  # the server's
    app = hub.web.app.create_app(site.project.settings())
    crawled = {urlsplit(url).path for c in crawls.values() for url in c.seen}
    paths = list(get_routes(app.routes))
    assert len(paths) > 30  # the routes of the included routers too
    for path in paths:
        assert any(re.fullmatch(pattern(path), seen) for seen in crawled), path
    # a router matched by its prefix (`Prefixed`) keeps every path under it: no other route
    # of the app (of any method) may take one, as it could after an included router
    prefixed = [r for r in app.routes if isinstance(r, Prefixed)]
    assert {r.prefix for r in prefixed} == {"/ogc", "/downloads"}
    others = [pattern(path) for path in get_routes(
        [r for r in app.routes if not isinstance(r, Prefixed)], methods=None)]
    for route in prefixed:
        under = {p for p in crawled if p.startswith(route.prefix + "/")}
        assert len(under) > 5 and len(others) > 30
        for path in under:
            assert not any(re.fullmatch(other, path) for other in others), path


def pattern(path: str) -> str:
    """A route's path as a regular expression: {name}, {rest:path}, {id:feature_id}."""
    parts = re.split(r"(\{\w+(?::\w+)?\})", path)
    return "".join((".+" if ":" in part else "[^/]+") if part.startswith("{")
                   else re.escape(part) for part in parts)


def get_routes(routes: list[Any], prefix: str = "", methods: str | None = "GET"
               ) -> Iterator[str]:
    """The paths of the GET routes (`methods` None: of all routes and mounts), those of
    included routers with them (FastAPI keeps an included router as `original_router` with its
    `include_context`; a `Prefixed` one's routes have its prefix in their paths)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from get_routes(inner.routes, prefix + route.include_context.prefix, methods)
        elif isinstance(route, Prefixed):
            yield from get_routes(route.router.routes, prefix, methods)
        elif methods is None and isinstance(route, Mount):
            yield prefix + route.path + "/{rest:path}"
        elif methods is None or methods in (getattr(route, "methods", None) or ()):
            yield prefix + route.path


# -- counts and facets ---------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_counts_and_facets_match_the_visible_set(site: Site, role: str) -> None:
    c = Crawl(site, role)
    records = records_seen(role)
    held = sorted(d.name for d in DATASETS if d.sees_data(role))
    uploads = sum(1 for name in UPLOADS_TO if BY_NAME[name].sees_record(role))
    n = len(records)

    every = c.action("package_search", q="*:*", rows=1000, include_private="true",
                     include_drafts="true", include_deleted="true",
                     **{"facet.field": json.dumps(list(FACETS)), "facet.limit": -1})
    assert every["count"] == n and sorted(r["name"] for r in every["results"]) == records
    facets = every["facets"]
    assert facets["tags"] == {TAG: n} | {k: v for k, v in facets["tags"].items() if k != TAG}
    assert all(v <= n for f in FACETS for v in facets[f].values())
    assert facets["groups"] == {THEME.lower(): n}
    assert facets["license_id"] == {"dl-by-de/2.0": n}
    orgs = {org: sum(1 for r in records if publisher(r) == org) for org in (A, B)}
    assert facets["organization"] == {k: v for k, v in orgs.items() if v}
    assert facets["res_format"] == ({"PDF": uploads} if uploads else {})
    for fq, expected in ((f"tags:{TAG}", n), (f"organization:{A}", orgs[A]),
                         ("res_format:PDF", uploads)):
        assert c.action("package_search", fq=fq, include_private="true")["count"] == expected

    paged: list[str] = []
    for start in range(0, n + 25, 25):
        paged += [r["name"] for r in c.action(
            "package_search", q="*:*", rows=25, start=start, include_private="true",
            sort="name asc")["results"]]
    assert paged == records

    public = records_seen("anonymous")
    assert c.action("package_list") == public  # public datasets only, for everyone
    portal = text_of(c.get("/datasets"))  # the portal shows what the caller may see
    assert f"{format_decimal(n, locale='de')} Datensätze gefunden" in portal
    portal_facets = {(f, v): int(n) for f, v, n in re.findall(
        r'name="(\w+)" value="([^"]*)"[^>]*>\s*<label[^>]*>.*?\((\d+)\)</span>', portal, re.S)}
    assert {v: n for (f, v), n in portal_facets.items() if f == "organization"} == {
        org: k for org in (A, B) if (k := sum(1 for r in records if publisher(r) == org))}
    assert {v: n for (f, v), n in portal_facets.items() if f == "theme"} == {THEME: n}
    assert sorted(p["name"] for p in c.action("current_package_list_with_resources")) == public
    counts = {o["name"]: o["package_count"] for o in c.action(
        "organization_list", all_fields="true", limit=1000)}
    assert {k: v for k, v in counts.items() if v} == {k: v for k, v in orgs.items() if v}
    shown = c.action("organization_show", id=A, include_datasets="true")
    assert shown["package_count"] == orgs[A] == len(shown["packages"])
    groups = {g["name"]: g["package_count"]
              for g in c.action("group_list", all_fields="true", limit=1000)}
    assert {k: v for k, v in groups.items() if v} == {THEME.lower(): n}
    assert c.action("group_show", id=THEME.lower(), include_datasets="true")[
        "package_count"] == n
    tags = {TAG} | {m.lower() for d in DATASETS if d.sees_record(role)
                    for m, kind in d.marks.items() if kind == "keyword"}
    assert {t.lower() for t in c.action("tag_list")} == tags

    assert sorted(d["name"] for d in c.get("/api/datasets").json()) == held
    collections = c.get("/ogc/collections").json()["collections"]
    assert sorted(col["id"] for col in collections) == held
    api = c.get("/ogc/api").json()
    assert sorted({p.split("/")[2] for p in api["paths"] if p.startswith("/collections/")}) \
        == held
    for d in DATASETS:  # the data's own downloads only where all who see the record may
        if d.sees_record(role):
            files = [r["url"] for r in c.action("package_show", id=d.name)["resources"]
                     if "/downloads/" in r["url"]]
            assert bool(files) == (d.facts and d.sees_data(role)), d.name
    near = ",".join(f"{v:.3f}" for v in (CENTRE[0] - 0.01, CENTRE[1] - 0.01,
                                          CENTRE[0] + 0.3, CENTRE[1] + 0.1))
    around = c.action("package_search", ext_bbox=near, include_private="true", rows=1000)
    assert sorted(r["name"] for r in around["results"]) == sorted(  # an extent is a fact
        d.name for d in DATASETS if d.sees_record(role) and d.facts and d.sees_data(role))
    for d in DATASETS:  # searching a marker finds exactly what may be seen
        for mark in [m for m, kind in d.marks.items()
                     if kind in ("title", "description", "keyword")]:
            hits = c.action("package_search", q=mark.split("-")[1], include_private="true",
                            include_drafts="true")["count"]
            assert hits == int(d.sees_record(role)), (d.name, hits)
            # autocomplete offers public records only; none of them carries a marker
            assert c.action("package_autocomplete", q=mark[:16]) == [], d.name
    offered = c.action("package_autocomplete", q="Titel", limit=100)
    assert sorted(r["name"] for r in offered) == sorted(
        d.name for d in DATASETS if d.sees_record("anonymous"))
    fed: set[str] = set()
    for page in (1, 2, 3):  # the feed's pages hold the public records, each once
        feed = rdflib.Graph().parse(data=c.get("/catalog.ttl", page=page).text, format="turtle")
        assert [int(t) for t in feed.objects(None, HYDRA.totalItems)] == [len(public)]
        fed |= {str(t) for t in feed.objects(None, rdflib.namespace.DCTERMS.identifier)}
    assert len(fed) == len(public) > 100


# -- hidden = unknown ----------------------------------------------------------------------

def unknown_like(name: str) -> str:
    """A name nothing has, of the same length (so the bodies' lengths agree too)."""
    return ("zz" + "q" * len(name))[:len(name)]


@pytest.mark.parametrize("role", ["anonymous", "b_viewer", "b_editor"])
def test_hidden_answers_as_unknown(site: Site, role: str) -> None:
    c = Crawl(site, role)
    hidden = sorted(d.name for d in DATASETS  # held data by its data, the rest by its record
                    if not (d.sees_data(role) if d.data else d.sees_record(role)))
    assert {"geheim", "gross", "eigen", "freigabe", "geheim-inventar"} <= set(hidden)
    for name in hidden:
        for template in BY_NAME_URLS:
            if BY_NAME[name].sees_record(role) and template.startswith(
                    ("/datasets/", "/dataset/", "/api/3/")):
                continue  # its record is public: the page and the CKAN dict are shown
            method = "HEAD" if template.startswith("HEAD ") else "GET"
            url = template.removeprefix("HEAD ")
            a = c.client.request(method, url.format(name))
            b = c.client.request(method, url.format(unknown_like(name)))
            assert a.status_code == b.status_code and a.status_code in (400, 404), (
                template, name, a.status_code, b.status_code)
            assert a.text.replace(name, "NAME") == b.text.replace(unknown_like(name), "NAME"), \
                (template, name)
            assert same_headers(a, b), (template, name, a.headers, b.headers)
    unknown_id = str(uuid.uuid4())
    for name in hidden:  # the resources of its data by id
        for kind in HUB_DOWNLOADS:
            a = c.client.get("/api/3/action/resource_show",
                             params={"id": hub_download_id(site.ids[name], kind)})
            b = c.client.get("/api/3/action/resource_show",
                             params={"id": hub_download_id(unknown_id, kind)})
            assert (a.status_code, a.text) == (b.status_code, b.text) == (404, b.text), name
    for name, path in site.uploads.items():  # an upload of a hidden record: URL, resource
        fake = path.replace(site.ids[name], unknown_id)
        a, b = c.client.get(path), c.client.get(fake)
        assert (a.status_code, a.text) == (b.status_code, b.text) == (404, b.text)
        assert same_headers(a, b)
        a, b = (c.client.get("/api/3/action/resource_show", params={"id": ident})
                for ident in (path.split("/")[4], unknown_id))
        assert (a.status_code, a.text) == (b.status_code, b.text) == (404, b.text)


def same_headers(a: httpx.Response, b: httpx.Response) -> bool:
    def kept(r: httpx.Response) -> dict[str, str]:
        return {k: v for k, v in r.headers.items() if k.lower() not in VOLATILE_HEADERS}
    return kept(a) == kept(b)


def test_hidden_and_unknown_answer_in_the_same_time_class(site: Site) -> None:
    """Not a benchmark: the bound guards the class. Work done for each request before the
    access check on the hidden 100,000-row layer (reading its rows takes about 340 ms,
    streaming a download longer) against about 2 ms for a name that does not exist; the
    generous ratio only keeps a shared, loaded machine from failing the test. A layer read
    once and then kept in memory is caught by its memory instead (the next test)."""
    c = Crawl(site, "b_viewer")
    hidden, unknown = "gross", unknown_like("gross")
    for template in ("/downloads/{}/latest.csv", "/downloads/{}/latest.geojson",
                     "/ogc/collections/{}/items?limit=10000",
                     f"/ogc/collections/{{}}/tiles/{TMS}/tilejson.json"):
        times: dict[str, list[float]] = {hidden: [], unknown: []}
        for _ in range(25):
            for name in (hidden, unknown):
                begun = time.perf_counter()
                assert c.client.get(template.format(name)).status_code == 404
                times[name].append(time.perf_counter() - begun)
        slow, fast = statistics.median(times[hidden]), statistics.median(times[unknown])
        assert slow < 5 * fast + 0.02, (template, slow, fast)


def test_a_hidden_layer_is_not_read_for_those_who_may_not_see_it(site: Site) -> None:
    """Its first request by a viewer of another organisation, on a server that has not read it
    (measured when the site starts, before any crawl): reading the 100,000-row layer into
    memory adds about 40 MB to the server; the bound only guards that class of growth."""
    assert site.cold_growth < 15 << 20, site.cold_growth
