"""The curated map pages over HTTP on the demo district (`hub serve`, tests/conftest.py): the
list alternative shows the same features as the OGC API items for the same filter, the filters
work as a plain GET form (no JavaScript), the map reads only the hub's own OGC API, and
hostile parameters get a clear 400 page, never a 5xx."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DemoPortal

from hub.errors import HubError
from hub.web.portal import settings
from hub.web.portal.maps import PER_PAGE
from hub.web.security import HTML_POLICY

ROW_ID = re.compile(r'<tr data-id="([^"]*)">')
BBOX = re.compile(r'data-bbox="([-0-9.,]+)"')
MAPS = ("/karten/breitband", "/karten/pflege", "/karten/mobilitaet")


@pytest.fixture(scope="module")
def client(demo_portal: DemoPortal) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_portal.url, timeout=60) as c:
        yield c


def listed(client: httpx.Client, path: str, **params: str) -> list[str]:
    """The ids of the list alternative's rows, in their order, over all its pages (each of
    at most `PER_PAGE` rows; the heading counts them all)."""
    ids: list[str] = []
    for page in range(1, 100):
        response = client.get(path, params={**params, "page": str(page)})
        assert response.status_code == 200, response.text
        found = ROW_ID.findall(response.text)
        assert len(found) <= PER_PAGE
        ids += found
        if 'rel="next"' not in response.text:
            break
    count = re.search(r'data-count="(\d+)"', response.text)
    assert count and int(count.group(1)) == len(ids)
    return ids


def items(client: httpx.Client, collection: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/ogc/collections/{collection}/items",
                          params={"f": "json", "limit": "10000", **params})
    assert response.status_code == 200, response.text
    return [{**f["properties"], "id": f["id"]} for f in response.json()["features"]]


def district(client: httpx.Client, path: str) -> str:
    """The box a point map shows and asks the OGC API for (the municipalities' bounds)."""
    found = BBOX.search(client.get(path).text)
    assert found
    return found.group(1)


def test_the_care_list_shows_the_ogc_items_of_each_type(client: httpx.Client) -> None:
    box = district(client, "/karten/pflege")
    every = items(client, "pflege", bbox=box)
    assert len(every) == len(items(client, "pflege"))  # every care service lies in the district
    assert sorted(listed(client, "/karten/pflege")) == sorted(str(p["id"]) for p in every)
    types = sorted({p["art"] for p in every})
    assert len(types) > 1
    for art in types:
        expected = sorted(str(p["id"]) for p in items(client, "pflege", art=art, bbox=box))
        assert expected and sorted(listed(client, "/karten/pflege", art=art)) == expected


def test_the_mobility_list_filters_by_type_and_power_like_the_ogc_items(
        client: httpx.Client) -> None:
    box = district(client, "/karten/mobilitaet")
    every = items(client, "mobilitaet", bbox=box)
    assert 0 < len(every) < len(items(client, "mobilitaet"))  # the real stops far outside: not
    assert sorted(listed(client, "/karten/mobilitaet")) == sorted(str(p["id"]) for p in every)
    for typ in sorted({p["typ"] for p in every}):
        expected = sorted(str(p["id"]) for p in items(client, "mobilitaet", typ=typ, bbox=box))
        assert sorted(listed(client, "/karten/mobilitaet", typ=typ)) == expected
    top = max(p["leistung_kw"] or 0 for p in every)
    strong = sorted(str(p["id"]) for p in items(client, "mobilitaet", bbox=box,
                                                filter=f"leistung_kw >= {top}"))
    assert 0 < len(strong) < len(every)
    assert sorted(listed(client, "/karten/mobilitaet", min_kw=str(top))) == strong


def test_the_broadband_list_has_every_municipality_of_the_aggregate(
        client: httpx.Client) -> None:
    rows = items(client, "breitband-gemeinden")
    assert len(rows) == 33
    assert sorted(listed(client, "/karten/breitband")) == sorted(str(r["id"]) for r in rows)
    by_share = [str(r["id"]) for r in sorted(rows, key=lambda r: (-r["anteil_100"],
                                                                r["gemeinde"].casefold()))]
    assert listed(client, "/karten/breitband", stufe="100", sort="share") == by_share


def test_sorting_by_power_puts_the_strongest_first(client: httpx.Client) -> None:
    power = {str(p["id"]): p["leistung_kw"] or 0 for p in items(
        client, "mobilitaet", bbox=district(client, "/karten/mobilitaet"))}
    order = [power[i] for i in listed(client, "/karten/mobilitaet", sort="power")]
    assert order == sorted(order, reverse=True) and order[0] > 0


@pytest.mark.parametrize("path", MAPS)
def test_a_map_page_reads_the_hubs_own_ogc_items_without_inline_script(
        client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == HTML_POLICY
    html = response.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert 'style="' not in html
    assert 'data-base="/ogc/collections/gemeinden/items"' in html
    assert re.search(r'data-layer="/ogc/collections/[a-z-]+/items"', html)
    assert re.search(r'<script src="/static/maps.js\?v=[0-9a-f]{12}" defer></script>', html)
    assert 'method="get"' in html and 'id="map-list"' in html
    assert "http://" not in html.split("<main")[1].split("</main>")[0].replace(
        "http://www.w3.org", "")


def test_the_start_page_links_the_three_maps(client: httpx.Client) -> None:
    html = client.get("/").text
    for path in MAPS:
        assert f'href="{path}"' in html


@pytest.mark.parametrize("code", ["dsb", "en"])
def test_a_map_page_in_another_language(demo_portal: DemoPortal, code: str) -> None:
    response = httpx.get(f"{demo_portal.url}/karten/pflege", params={"lang": code}, timeout=60)
    assert response.status_code == 200
    assert f'<html lang="{code}">' in response.text


@pytest.mark.parametrize(("path", "params", "named"), [
    ("/karten/pflege", {"sort": "evil"}, "sort"),
    ("/karten/pflege", {"art": "<script>alert(1)</script>"}, "art"),
    ("/karten/mobilitaet", {"min_kw": "abc"}, "min_kw"),
    ("/karten/mobilitaet", {"min_kw": "1e999"}, "min_kw"),
    ("/karten/mobilitaet", {"min_kw": "-5"}, "min_kw"),
    ("/karten/mobilitaet", {"typ": "x" * 500}, "typ"),
    ("/karten/breitband", {"stufe": "5"}, "stufe"),
    ("/karten/breitband", {"sort": "name\x00"}, "sort"),
])
def test_hostile_parameters_get_a_clear_400_page(client: httpx.Client, path: str,
                                                 params: dict[str, str], named: str) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 400
    assert "text/html" in response.headers["content-type"]
    assert f"„{named}“" in response.text
    assert "<script>alert" not in response.text


def test_a_basemap_must_be_on_the_hub(tmp_path: Path) -> None:
    (tmp_path / "portal.yaml").write_text(
        "basemap:\n  url: https://tiles.example.org/{z}/{x}/{y}.png\n  attribution: X\n")
    with pytest.raises(HubError, match="basemap: url"):
        settings.load(tmp_path, "Elbe-Elster")
    (tmp_path / "portal.yaml").write_text(
        "basemap:\n  url: /basemap/{z}/{x}/{y}.png\n  attribution: © GeoBasis-DE\n")
    assert settings.load(tmp_path, "E")["basemap"] == {
        "url": "/basemap/{z}/{x}/{y}.png", "attribution": "© GeoBasis-DE"}
    assert settings.load(tmp_path / "missing", "E")["basemap"] == {"url": "", "attribution": ""}


ASSET = re.compile(r'(?:href|src)="(/static/[^"?]+)\?v=([0-9a-f]{12})"')


@pytest.mark.parametrize("path", MAPS)
def test_static_files_are_sent_gzipped_and_cached_by_version(
        client: httpx.Client, path: str) -> None:
    """Every stylesheet and script a map page links has a versioned URL (the first 12 hex
    digits of the file's SHA-256), is sent gzip-compressed, cacheable for a year at that URL,
    and revalidated by its ETag anywhere else."""
    linked = ASSET.findall(client.get(path).text)
    assert {p.rsplit("/", 1)[1] for p, _ in linked} >= {"leaflet.js", "leaflet.css", "maps.js",
                                                         "maps.css", "portal.js", "portal.css"}
    static = Path(__file__).resolve().parents[1] / "hub" / "web" / "static"
    for asset, version in linked:
        content = (static / asset.removeprefix("/static/")).read_bytes()
        assert hashlib.sha256(content).hexdigest()[:12] == version
        response = client.get(asset, params={"v": version}, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        assert int(response.headers["content-length"]) < len(content) / 2  # as sent
        assert response.content == content  # httpx decompresses
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["vary"] == "Accept-Encoding"
        etag = response.headers["etag"]
        plain = client.get(asset, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == content
        assert plain.headers["cache-control"] == "no-cache" and plain.headers["etag"] == etag
        stale = client.get(asset, params={"v": "000000000000"})
        assert stale.headers["cache-control"] == "no-cache"
        again = client.get(asset, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""


def test_static_files_that_are_compressed_already_or_missing(client: httpx.Client) -> None:
    png = client.get("/static/vendor/leaflet/images/marker-icon.png",
                     headers={"Accept-Encoding": "gzip"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert "content-encoding" not in png.headers and png.content.startswith(b"\x89PNG")
    for missing in ("/static/nope.js", "/static/../app.py", "/static/%2e%2e/app.py",
                    "/static/vendor"):
        assert client.get(missing).status_code == 404, missing


def test_the_list_is_paged_and_its_pages_keep_the_filters(client: httpx.Client) -> None:
    first = client.get("/karten/pflege", params={"sort": "town"}).text
    assert len(ROW_ID.findall(first)) == PER_PAGE
    assert 'href="/karten/pflege?sort=town&amp;page=2#map-list" rel="next"' in first
    second = client.get("/karten/pflege", params={"sort": "town", "page": "2"}).text
    assert not set(ROW_ID.findall(first)) & set(ROW_ID.findall(second))
    assert 'rel="prev"' in second
    assert client.get("/karten/pflege", params={"page": "999"}).status_code == 404
    for bad in ("0", "x", "99999999"):
        assert client.get("/karten/pflege", params={"page": bad}).status_code == 400
