"""OGC API – Features over HTTP against a real server: the ETS checks (landing page, conformance,
OpenAPI, collections, items, paging, bbox, datetime, CRS), property filters, visibility, HTML."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

import httpx
import numpy as np
import pytest
import shapely
from ogc_site import BIG_ROWS, LIMIT_DEFAULT, LIMIT_MAX, Site
from openapi_spec_validator import validate
from pyproj import Transformer

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
HIDDEN = ("intern", "vertraulich")
PUBLIC = {"pflege", "flaechen", "gross", "wechsel"}


def store_rows(site: Site, name: str) -> list[dict[str, Any]]:
    return site.project.rows(name)


def store_xy(site: Site, name: str) -> np.ndarray:
    return shapely.get_coordinates(np.array(site.project.geometries(name)))


def all_features(site: Site, name: str, **params: Any) -> list[dict[str, Any]]:
    """Every feature of an items query, following `next` links."""
    url, query, features = f"{site.url}/collections/{name}/items", {"limit": 1000, **params}, []
    while url:
        page = site.client.get(url, params=query).json()
        features += page["features"]
        url = next((lk["href"] for lk in page["links"] if lk["rel"] == "next"), None)
        query = None
    return features


def rels(doc: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for link in doc["links"]:
        assert link.get("rel") and link.get("type"), link  # /req/core/fc-rel-type
        out.setdefault(link["rel"], []).append(link)
    return out


# -- landing page, conformance, OpenAPI ------------------------------------------------------

def test_landing_page_links_and_conformance(ogc_site: Site) -> None:
    response = ogc_site.get("/")
    assert response.http_version == "HTTP/1.1"
    links = rels(response.json())
    assert {"self", "alternate", "service-desc", "conformance", "data"} <= set(links)
    assert links["service-desc"][0]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    conf = ogc_site.client.get(links["conformance"][0]["href"]).json()["conformsTo"]
    assert all(isinstance(c, str) for c in conf)
    for part in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                 "ogcapi-features-1/1.0/conf/html", "ogcapi-features-1/1.0/conf/oas30",
                 "ogcapi-features-2/1.0/conf/crs", "ogcapi-features-3/1.0/conf/queryables"):
        assert f"http://www.opengis.net/spec/{part}" in conf
    assert not any(c.endswith("/conf/cql2-json") for c in conf)  # not implemented
    assert ogc_site.client.get(ogc_site.url).status_code == 200  # without the trailing slash


def test_openapi_document_is_valid_and_declares_the_parameters(ogc_site: Site) -> None:
    response = ogc_site.client.get(
        ogc_site.url + "/api", headers={"Accept": "application/vnd.oai.openapi+json;version=3.0"})
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = response.json()
    validate(doc)
    assert doc["openapi"].startswith("3.0")
    params = doc["components"]["parameters"]
    limit = params["limit"]
    assert (limit["in"], limit["required"], limit["style"], limit["explode"]) == \
        ("query", False, "form", False)
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX,
                               "default": LIMIT_DEFAULT}
    assert params["bbox"]["schema"]["minItems"] == 4 and params["bbox"]["schema"]["maxItems"] == 6
    assert params["datetime"]["schema"]["type"] == "string"
    items = doc["paths"]["/collections/pflege/items"]["get"]["parameters"]
    names = {p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in items}
    assert {"limit", "bbox", "datetime", "crs", "bbox-crs", "art", "plaetze"} <= names
    assert not any(h in path for path in doc["paths"] for h in HIDDEN)


# -- collections and visibility --------------------------------------------------------------

def test_collections_are_exactly_the_public_datasets(ogc_site: Site) -> None:
    listing = ogc_site.json("/collections")
    assert {"self", "alternate"} <= set(rels(listing))
    assert {c["id"] for c in listing["collections"]} == PUBLIC
    assert listing["crs"][0] == CRS84
    for entry in listing["collections"]:
        single = ogc_site.json(f"/collections/{entry['id']}")
        for key in ("id", "title", "description", "extent", "crs", "storageCrs"):
            assert single[key] == entry[key], key  # ETS: identical to the list entry
        assert single["itemType"] == "feature" and single["storageCrs"] in single["crs"]
        assert {CRS84, EPSG + "4326", EPSG + "25832", EPSG + "25833", EPSG + "3857"} \
            <= set(single["crs"])
        links = rels(single)
        assert links["items"][0]["type"] == "application/geo+json"
        version = ogc_site.project.current(entry["id"])
        assert single["extent"]["spatial"]["bbox"] == [version.bbox]


def test_hidden_datasets_answer_404_like_unknown_ones(ogc_site: Site) -> None:
    unknown = ogc_site.get("/collections/gibtsnicht")
    assert unknown.status_code == 404
    for name in (*HIDDEN, "gibtsnicht"):
        for path in ("", "/items", "/items/1", "/items/I0001", "/queryables",
                     "/items?bbox=1,2,3", "/items?foo=bar", "/items?f=html"):
            response = ogc_site.client.get(f"{ogc_site.url}/collections/{name}{path}")
            assert response.status_code == 404, (name, path)
            assert name not in response.text.replace(f"/collections/{name}", "")
        assert response.text.replace(name, "X") == ogc_site.client.get(
            f"{ogc_site.url}/collections/gibtsnicht/items?f=html").text.replace("gibtsnicht", "X")
    api = ogc_site.get("/api").text + ogc_site.get("/collections").text
    assert not any(name in api for name in HIDDEN)


# -- items: counts, values, paging -------------------------------------------------------------

def test_items_match_the_store_values_and_geometries(ogc_site: Site) -> None:
    features = all_features(ogc_site, "pflege")
    rows = store_rows(ogc_site, "pflege")
    assert len(features) == len(rows) == ogc_site.project.current("pflege").rows
    assert [f["id"] for f in features] == [r["id"] for r in rows]  # the primary key
    for f, row in zip(features, rows, strict=True):
        expected = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}
        assert f["properties"] == expected
    got = np.array([f["geometry"]["coordinates"] for f in features])
    assert np.abs(got - store_xy(ogc_site, "pflege")).max() < 1e-7


def test_items_response_rules(ogc_site: Site) -> None:
    response = ogc_site.get("/collections/pflege/items")
    assert response.headers["content-type"] == "application/geo+json"
    assert response.headers["content-crs"] == f"<{CRS84}>"
    page = response.json()
    assert page["type"] == "FeatureCollection"
    assert page["numberReturned"] == len(page["features"]) == LIMIT_DEFAULT
    assert page["numberMatched"] == 300
    dt.datetime.fromisoformat(page["timeStamp"].replace("Z", "+00:00"))
    links = rels(page)
    assert {"self", "alternate", "next", "collection"} <= set(links) and "prev" not in links
    second = ogc_site.client.get(links["next"][0]["href"]).json()
    assert [f["id"] for f in second["features"]] == [f"P{i:04d}" for i in range(11, 21)]
    assert "prev" in rels(second) and "offset=10" in rels(second)["self"][0]["href"]
    clamped = ogc_site.json("/collections/gross/items", limit=10 ** 9)
    assert clamped["numberReturned"] == LIMIT_MAX
    last = ogc_site.json("/collections/pflege/items", offset=295, limit=100)
    assert last["numberReturned"] == 5 and "next" not in rels(last)
    beyond = ogc_site.json("/collections/pflege/items", offset=1000)
    assert beyond["features"] == [] and beyond["numberMatched"] == 300


@pytest.mark.timeout(120)  # a hang guard (paging must not rescan), not a timing
def test_walking_next_links_returns_every_feature_once(ogc_site: Site) -> None:
    ids = [f["id"] for f in all_features(ogc_site, "gross")]
    assert len(ids) == BIG_ROWS and ids == list(range(1, BIG_ROWS + 1))  # row numbers
    filtered = all_features(ogc_site, "gross", gruppe="B", bbox="13.2,51.4,13.6,51.7")
    counted = ogc_site.json("/collections/gross/items", gruppe="B", bbox="13.2,51.4,13.6,51.7")
    assert len({f["id"] for f in filtered}) == len(filtered) == counted["numberMatched"] > 1000


def test_feature_by_id(ogc_site: Site) -> None:
    response = ogc_site.get("/collections/pflege/items/P0007")
    assert response.status_code == 200 and response.headers["content-crs"] == f"<{CRS84}>"
    feature = response.json()
    assert feature["type"] == "Feature" and feature["id"] == "P0007"
    assert feature["properties"]["name"] == "Einrichtung 7"
    assert {"self", "alternate", "collection"} <= set(rels(feature))
    triangle = ogc_site.json("/collections/flaechen/items/3")  # no primary key: row number
    assert triangle["properties"]["name"] == "Fläche 3"
    assert triangle["geometry"]["type"] == "Polygon"
    for missing in ("P9999", "0", "31", "x"):
        name = "pflege" if missing.startswith("P") else "flaechen"
        assert ogc_site.get(f"/collections/{name}/items/{missing}").status_code == 404
    assert ogc_site.get("/collections/pflege/items/P0007", foo=1).status_code == 400


# -- filters ------------------------------------------------------------------------------------

def test_bbox_selects_the_points_inside(ogc_site: Site) -> None:
    box = (13.3, 51.5, 13.6, 51.7)
    xy = store_xy(ogc_site, "pflege")
    inside = (xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1]) \
        & (xy[:, 1] <= box[3])
    expected = [r["id"] for r, hit in zip(store_rows(ogc_site, "pflege"), inside, strict=True)
                if hit]
    got = all_features(ogc_site, "pflege", bbox=",".join(map(str, box)))
    assert [f["id"] for f in got] == expected and 0 < len(expected) < 300
    six = all_features(ogc_site, "pflege", bbox=f"{box[0]},{box[1]},0,{box[2]},{box[3]},100")
    assert [f["id"] for f in six] == expected
    for odd in ("177,65,-177,70", "-180,85,180,90", "-180,-90,180,-85", "-1.5,50,1.5,53",
                "-80,-5,-70,5"):  # the ETS boxes: valid, nothing in them
        assert ogc_site.json("/collections/pflege/items", bbox=odd)["numberMatched"] == 0
    world = ogc_site.json("/collections/pflege/items", bbox="170,-90,169,90")  # antimeridian
    assert world["numberMatched"] == 300


def test_bbox_on_polygons_tests_the_geometry_not_its_box(ogc_site: Site) -> None:
    # Fläche 1 is the triangle (13.1 51.4, 13.2 51.4, 13.1 51.48); this box is inside its
    # bounding box but beyond the hypotenuse
    got = ogc_site.json("/collections/flaechen/items", bbox="13.18,51.46,13.199,51.479")
    assert got["numberMatched"] == 0
    got = ogc_site.json("/collections/flaechen/items", bbox="13.101,51.401,13.11,51.41")
    assert [f["properties"]["name"] for f in got["features"]] == ["Fläche 1"]


def test_equality_filters_on_queryables(ogc_site: Site) -> None:
    rows = store_rows(ogc_site, "pflege")
    cases = [({"art": "Hospiz"}, lambda r: r["art"] == "Hospiz"),
             ({"plaetze": "42"}, lambda r: r["plaetze"] == 42),
             ({"rollstuhlgerecht": "false"}, lambda r: r["rollstuhlgerecht"] is False),
             ({"stand": "2025-03-03"}, lambda r: r["stand"] == dt.date(2025, 3, 3)),
             ({"art": "Hospiz", "rollstuhlgerecht": "true"},
              lambda r: r["art"] == "Hospiz" and r["rollstuhlgerecht"])]
    for params, test in cases:
        got = [f["id"] for f in all_features(ogc_site, "pflege", **params)]
        assert got == [r["id"] for r in rows if test(r)], params
    outside = ogc_site.get("/collections/pflege/items", art="Nichts")  # not in the declared enum
    assert outside.status_code == 400 and outside.json()["parameter"] == "art"
    assert "Hospiz" in outside.json()["description"]


def test_datetime_filters_on_the_first_date_field(ogc_site: Site) -> None:
    rows = store_rows(ogc_site, "pflege")
    coll = ogc_site.json("/collections/pflege")
    assert coll["extent"]["temporal"]["interval"] == [["2025-01-01T00:00:00Z",
                                                       "2025-12-28T00:00:00Z"]]

    def expect(lo: dt.date | None, hi: dt.date | None) -> list[str]:  # undated rows match too
        return [r["id"] for r in rows if r["stand"] is None
                or ((lo is None or r["stand"] >= lo) and (hi is None or r["stand"] <= hi))]
    d = dt.date
    cases = {"2025-03-01/2025-04-30": (d(2025, 3, 1), d(2025, 4, 30)),
             "2025-03-01T00:00:00Z/2025-04-30T23:59:59Z": (d(2025, 3, 1), d(2025, 4, 30)),
             "../2025-02-10": (None, d(2025, 2, 10)), "2025-11-15/..": (d(2025, 11, 15), None),
             "2025-06-07": (d(2025, 6, 7), d(2025, 6, 7)),
             "2025-06-07T12:00:00+02:00": (d(2025, 6, 7), d(2025, 6, 7)),
             "2025-06-01/P2D": (d(2025, 6, 1), d(2025, 6, 3))}
    for value, (lo, hi) in cases.items():
        got = [f["id"] for f in all_features(ogc_site, "pflege", datetime=value)]
        assert got == expect(lo, hi), value
    # no temporal property: every feature matches (/ats/core/fc-time-response)
    assert ogc_site.json("/collections/flaechen/items", datetime="2025-01-01")[
        "numberMatched"] == 30


@pytest.mark.parametrize(("params", "name"), [
    ({"limit": "unlimited"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "-1"}, "limit"),
    ({"limit": "2.5"}, "limit"), ({"offset": "-3"}, "offset"), ({"offset": "x"}, "offset"),
    ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "1,2,3,4,5"}, "bbox"), ({"bbox": "a,b,c,d"}, "bbox"),
    ({"bbox": "13,52,14,51"}, "bbox"), ({"bbox": "13,51,14,nan"}, "bbox"),
    ({"bbox": "0,-91,1,0"}, "bbox"), ({"bbox-crs": CRS84}, "bbox-crs"),
    ({"bbox": "13,51,14,52", "bbox-crs": "EPSG:4326"}, "bbox-crs"),
    ({"bbox": "13,51,14,52", "bbox-crs": "http://www.opengis.net/def/crs/0/unsupported"},
     "bbox-crs"),
    ({"crs": "http://www.opengis.net/def/crs/EPSG/0/31467"}, "crs"), ({"crs": ""}, "crs"),
    ({"datetime": "gestern"}, "datetime"), ({"datetime": "2025-02-30"}, "datetime"),
    ({"datetime": "2025-05-01/2025-04-01"}, "datetime"), ({"datetime": "a/b/c"}, "datetime"),
    ({"datetime": "2025-01-01/P"}, "datetime"), ({"datetime": ""}, "datetime"),
    ({"unknownQueryParameter123": "1"}, "unknownQueryParameter123"),
    ({"plaetze": "viele"}, "plaetze"), ({"rollstuhlgerecht": "vielleicht"}, "rollstuhlgerecht"),
    ({"stand": "März"}, "stand"), ({"anteil": "inf"}, "anteil"), ({"f": "xml"}, "f"),
])
def test_bad_parameters_are_400_naming_the_parameter(ogc_site: Site, params: dict[str, str],
                                                     name: str) -> None:
    response = ogc_site.client.get(f"{ogc_site.url}/collections/pflege/items", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameterValue" and body["parameter"] == name
    assert body["description"].startswith(f"{name}:")


def test_repeated_and_unknown_parameters_elsewhere_are_400(ogc_site: Site) -> None:
    response = ogc_site.client.get(f"{ogc_site.url}/collections/pflege/items?limit=1&limit=2")
    assert response.status_code == 400 and "more than once" in response.json()["description"]
    for path in ("/", "/conformance", "/collections", "/collections/pflege",
                 "/collections/pflege/queryables", "/api"):
        response = ogc_site.get(path, bbox="1,2,3,4")
        assert response.status_code == 400 and response.json()["parameter"] == "bbox", path


# -- Part 2: CRS -----------------------------------------------------------------------------

def test_output_crs_follows_the_authority_axis_order(ogc_site: Site) -> None:
    base = ogc_site.json("/collections/pflege/items", limit=20)
    lonlat = np.array([f["geometry"]["coordinates"] for f in base["features"]])
    latlon = ogc_site.get("/collections/pflege/items", limit=20, crs=EPSG + "4326")
    assert latlon.headers["content-crs"] == f"<{EPSG}4326>"
    assert np.array_equal(np.array([f["geometry"]["coordinates"]
                                    for f in latlon.json()["features"]]), lonlat[:, ::-1])
    for code in ("25832", "25833", "3857"):
        response = ogc_site.get("/collections/pflege/items", limit=20, crs=EPSG + code)
        assert response.headers["content-crs"] == f"<{EPSG}{code}>"
        got = np.array([f["geometry"]["coordinates"] for f in response.json()["features"]])
        x, y = Transformer.from_crs("OGC:CRS84", f"EPSG:{code}", always_xy=True).transform(
            lonlat[:, 0], lonlat[:, 1])
        assert np.abs(got - np.column_stack([x, y])).max() < 0.002  # mm rounding
    one = ogc_site.get("/collections/pflege/items/P0001", crs=EPSG + "25833")
    assert one.headers["content-crs"] == f"<{EPSG}25833>"
    assert one.json()["geometry"]["coordinates"][0] > 100_000  # easting in metres


def test_bbox_crs_selects_in_that_crs(ogc_site: Site) -> None:
    box = (380_000.0, 5_700_000.0, 420_000.0, 5_730_000.0)  # EPSG:25833, E/N
    xy = store_xy(ogc_site, "pflege")
    e, n = Transformer.from_crs("OGC:CRS84", "EPSG:25833", always_xy=True).transform(
        xy[:, 0], xy[:, 1])
    inside = (e >= box[0]) & (e <= box[2]) & (n >= box[1]) & (n <= box[3])
    expected = [r["id"] for r, hit in zip(store_rows(ogc_site, "pflege"), inside, strict=True)
                if hit]
    got = all_features(ogc_site, "pflege", bbox=",".join(map(str, box)),
                       **{"bbox-crs": EPSG + "25833"})
    assert [f["id"] for f in got] == expected and 0 < len(expected) < 300
    latlon = all_features(ogc_site, "pflege", bbox="51.5,13.3,51.7,13.6",
                          **{"bbox-crs": EPSG + "4326"})
    lonlat = all_features(ogc_site, "pflege", bbox="13.3,51.5,13.6,51.7")
    assert [f["id"] for f in latlon] == [f["id"] for f in lonlat]


# -- queryables, HTML, new versions ---------------------------------------------------------------

def test_queryables_are_a_json_schema_of_the_properties(ogc_site: Site) -> None:
    response = ogc_site.get("/collections/pflege/queryables")
    assert response.headers["content-type"] == "application/schema+json"
    schema = response.json()
    assert schema["type"] == "object" and schema["$schema"].startswith("https://json-schema.org")
    props = schema["properties"]
    assert set(props) == {"id", "name", "art", "plaetze", "anteil", "rollstuhlgerecht", "stand",
                          "geometry"}  # the geometry for S_INTERSECTS
    assert props["plaetze"] == {"type": "integer", "title": "Plätze", "minimum": 0,
                                "maximum": 1000}
    assert props["id"]["pattern"] == "^(?:[A-Z][0-9]{4})$"  # anchored like the table schema's
    assert props["stand"]["format"] == "date" and props["art"]["enum"][0] == "Pflegeheim"
    assert props["rollstuhlgerecht"]["type"] == "boolean"


def test_html_pages_are_german_and_linked(ogc_site: Site) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for path in ("/", "/conformance", "/api", "/collections", "/collections/pflege",
                 "/collections/pflege/items", "/collections/pflege/items/P0002",
                 "/collections/pflege/queryables", "/collections/flaechen/items/1"):
        response = ogc_site.client.get(ogc_site.url + path, headers=browser)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html"), path
        page = response.text
        assert '<html lang="de">' in page and "<script" not in page and "http" not in \
            page.split("<body>")[0].replace("http-equiv", ""), path
    items = ogc_site.get("/collections/pflege/items", f="html", limit=5, offset=5).text
    assert "<table>" in items and "Einrichtung 6" in items and "nächste Seite" in items
    assert "vorige Seite" in items and "Plätze" in ogc_site.get(
        "/collections/pflege", f="html").text
    missing = ogc_site.client.get(ogc_site.url + "/collections/intern", headers=browser)
    assert missing.status_code == 404 and "Nicht gefunden" in missing.text
    assert ogc_site.get("/collections", f="json").headers["content-type"] == "application/json"
    portal = ogc_site.client.get(ogc_site.url.removesuffix("/ogc") + "/").text
    assert 'href="/ogc/"' in portal  # the portal's start page leads to the API


def test_a_new_version_is_served_without_restart(ogc_site: Site) -> None:
    assert ogc_site.json("/collections/wechsel/items")["numberMatched"] == 5
    project = ogc_site.project
    csv = project.data / "wechsel.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")  # header + 3 rows
    assert project.ingest("wechsel").status == "committed"
    page = ogc_site.json("/collections/wechsel/items")
    assert page["numberMatched"] == 3 and ogc_site.json("/collections/wechsel")["version"] == 2


ODD_VALUES = ["", " ", "\x00", "%", "1e309", "NaN", "-0", "9" * 40, "1,2,3,4,5,6,7", "ä,ö,ü,ß",
              "../..", "..", "/", "P", "P99999999Y", "2025-13-01", "0000-01-01", "9999-12-31/P1Y",
              "1e308,1e308,1e308,1e308", "-1e308,-90,1e308,90", "0,0,0,0", "true", "[]", "{}",
              "a" * 5000]


@pytest.mark.parametrize("param", ["limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "f",
                                   "art", "plaetze", "anteil", "rollstuhlgerecht", "stand"])
def test_odd_values_never_cause_a_server_error(ogc_site: Site, param: str) -> None:
    for value in ODD_VALUES:
        params = {param: value}
        if param == "bbox-crs":
            params["bbox"] = value
        for name in ("pflege", "flaechen"):
            response = ogc_site.client.get(f"{ogc_site.url}/collections/{name}/items",
                                           params=params)
            assert response.status_code in (200, 400), (name, params, response.text)
    for fid in ("%00", "9" * 40, "-1", "1.5", "P0001/x", "%2F", "ä"):
        for name in ("pflege", "flaechen"):
            response = ogc_site.client.get(f"{ogc_site.url}/collections/{name}/items/{fid}")
            assert response.status_code in (200, 404), (name, fid, response.text)


def test_the_viewer_hook_decides_visibility(ogc_site: Site) -> None:
    """The router asks its `viewer` per request: staff see internal data, an organisation
    named in `restricted_to` is never assumed (the store records none for datasets)."""
    import httpx
    from conftest import serving_app
    from fastapi import FastAPI, Request

    from hub.access import ANONYMOUS, Viewer
    from hub.api.ogc import ogc_router
    from hub.store import Store

    def viewer(request: Request) -> Viewer:
        role = request.headers.get("x-test-role")
        return {"staff": Viewer(staff=True), "admin": Viewer(admin=True)}.get(role, ANONYMOUS)
    app = FastAPI()
    app.include_router(ogc_router(Store(ogc_site.project.store_dir), viewer=viewer))
    with serving_app(app) as url, httpx.Client(base_url=url, timeout=60) as client:

        def names(role: str) -> set[str]:
            listing = client.get("/ogc/collections", headers={"x-test-role": role}).json()
            return {c["id"] for c in listing["collections"]}
        assert names("anonymous") == PUBLIC
        assert names("staff") == PUBLIC | {"intern"}
        assert names("admin") == PUBLIC | {"intern", "vertraulich"}
        staff = {"x-test-role": "staff"}
        assert client.get("/ogc/collections/intern/items/I0001", headers=staff).status_code == 200
        assert client.get("/ogc/collections/intern/items/I0001").status_code == 404
        assert client.get("/ogc/collections/vertraulich", headers=staff).status_code == 404


# -- compression ---------------------------------------------------------------------------

def raw(site: Site, path: str, encoding: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (not decoded by the client)."""
    with httpx.Client(timeout=60) as client, client.stream(
            "GET", site.url + path, headers={"Accept-Encoding": encoding, **headers}) as response:
        return response, b"".join(response.iter_raw())


def test_json_answers_are_gzip_compressed_when_the_client_accepts_it(ogc_site: Site) -> None:
    path = "/collections/gross/items?limit=200&f=json"
    plain, plain_body = raw(ogc_site, path, "identity")
    packed, packed_body = raw(ogc_site, path, "gzip, deflate, br")
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["vary"] and "Accept" in packed.headers["vary"]
    body = gzip.decompress(packed_body)
    assert int(packed.headers["content-length"]) == len(packed_body) < len(body) / 2
    features = json.loads(body)["features"]
    assert len(features) == 200
    assert [f["id"] for f in features] == [f["id"] for f in json.loads(plain_body)["features"]]
    assert "content-encoding" not in raw(ogc_site, path, "gzip;q=0")[0].headers
    again, _ = raw(ogc_site, path, "gzip", **{"If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304  # the validators are those of the uncompressed answer
    for doc in ("/collections", "/api", "/collections/gross"):
        assert raw(ogc_site, doc, "gzip")[0].headers["content-encoding"] == "gzip", doc


def test_small_answers_html_and_tiles_are_sent_as_they_are(ogc_site: Site) -> None:
    small, small_body = raw(ogc_site, "/collections/gross/items?limit=1&f=json", "gzip")
    assert len(small_body) < 1024 and "content-encoding" not in small.headers
    page, _ = raw(ogc_site, "/collections/gross/items?limit=200&f=html", "gzip")
    assert page.headers["content-type"].startswith("text/html")
    assert "content-encoding" not in page.headers
