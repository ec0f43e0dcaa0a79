"""The citizen portal over HTTP on the demo district (`hub serve`, the catalog and inventory
loaded; tests/conftest.py): facet counts as the CKAN API counts them, bad input gets a clear
page and never a 5xx, no inline script or style (the CSP holds), pages small enough for a slow
line, the staleness notice, the preview from the store, languages and their cookie."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator

import httpx
import pyarrow.parquet as pq
import pytest
from conftest import DemoPortal

from hub.access import ANONYMOUS
from hub.catalog import open_catalog
from hub.catalog.index import Query
from hub.catalog.quality import assess
from hub.config import load_settings
from hub.store import Store
from hub.web.security import HTML_POLICY

BUDGET = 60 * 1024  # bytes transferred (compressed) on a first load: page, CSS, JS
FACET = re.compile(r'name="(\w+)" value="([^"]*)"[^>]*>\s*<label[^>]*>.*?'
                   r'<span class="count">\(([\d.]+)\)</span>', re.S)
PAGES = ("/", "/datasets", "/datasets?q=pflege", "/datasets/pflege", "/organizations",
         "/organizations/sozialamt", "/ueber-die-daten", "/impressum", "/datenschutz",
         "/barrierefreiheit", "/leichte-sprache", "/orte", "/orte?q=Herzberg",
         "/orte/herzberg-elster")


@pytest.fixture(scope="module")
def client(demo_portal: DemoPortal) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_portal.url, timeout=60) as c:
        yield c


def facets_shown(html: str) -> dict[str, dict[str, int]]:
    shown: dict[str, dict[str, int]] = {}
    for facet, value, count in FACET.findall(html):
        shown.setdefault(facet, {})[value] = int(count.replace(".", ""))
    return shown


def test_facet_counts_are_the_ckan_apis(client: httpx.Client) -> None:
    for params in ({}, {"q": "daten"}, {"theme": "SOCI"}):
        shown = facets_shown(client.get("/datasets", params=params).text)
        fq = " ".join(f"groups:{v.lower()}" for k, v in params.items() if k == "theme")
        ckan = client.get("/api/3/action/package_search", params={
            "q": params.get("q", ""), "fq": fq, "rows": 0, "facet.limit": -1,
            "facet.field": json.dumps(["organization", "groups", "license_id"])}).json()
        facets = ckan["result"]["facets"]
        assert shown["organization"] == facets["organization"], params
        assert shown["license"] == facets["license_id"], params
        assert {k.lower(): v for k, v in shown["theme"].items()} == facets["groups"], params
        assert sum(shown["organization"].values()) == ckan["result"]["count"] > 0


@pytest.mark.parametrize("params", [
    {"q": "x" * 201}, {"q": "\"unbalanced"}, {"q": "NEAR(a b) OR * ^"}, {"q": "<script>x</script>"},
    {"q": "\u0000\ufffd"}, {"q": "%' OR 1=1 --"}, {"page": "0"}, {"page": "-1"},
    {"page": "9" * 5000}, {"page": "abc"}, {"page": "²"}, {"page": "1001"},
    {"sort": "nope"}, {"theme": "NO_SUCH_THEME"}, {"organization": "\"><b>x"},
    {"municipality": "1" * 300}, {"lang": "../../etc/passwd"}, {"lang": "x" * 1000}])
def test_bad_input_gets_a_clear_page(client: httpx.Client, params: dict[str, str]) -> None:
    response = client.get("/datasets", params=params)
    assert response.status_code in (200, 400), response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<html lang="de">' in html and "<h1>" in html
    assert "<script>x" not in html and "<b>x" not in html  # escaped
    if response.status_code == 400:
        assert '<p class="error">' in html
    if "theme" in params:
        assert "0 Datensätze gefunden" in html and "Filter entfernen:" in html


@pytest.mark.parametrize("path", ["/datasets/gibt-es-nicht", "/datasets/breitband",
                                  "/organizations/gibt-es-nicht"])
def test_unknown_and_hidden_give_the_same_not_found_page(client: httpx.Client,
                                                         path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and "<h1>Nicht gefunden</h1>" in response.text


def test_no_inline_script_or_style_and_the_csp_holds(client: httpx.Client) -> None:
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == HTML_POLICY
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path  # no event handler attributes


def test_pages_fit_the_budget_on_a_slow_line(client: httpx.Client) -> None:
    assets = sum(len(gzip.compress(client.get(a).content)) for a in
                 ("/static/portal.css", "/static/portal.js"))
    for path in ("/", "/datasets", "/datasets/pflege", "/orte", "/orte/herzberg-elster"):
        response = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        sent = int(response.headers["content-length"])
        assert sent + assets <= BUDGET, (path, sent, assets)


def test_the_dataset_page_shows_the_stores_rows_and_versions(
        client: httpx.Client, demo_portal: DemoPortal) -> None:
    store = Store(demo_portal.root / "store")
    version = store.current("pflege")
    first = pq.read_table(version.data_file).slice(0, 1).to_pylist()[0]
    html = client.get("/datasets/pflege").text
    assert f"<td>{first['name']}</td>" in html
    assert "/downloads/pflege/latest.csv?dialect=excel" in html
    assert f"/downloads/pflege/v{version.version}.csv" in html
    for link in ("/api/3/action/package_show?id=pflege", "/ogc/collections/pflege",
                 "/dataset/pflege.jsonld", "/dataset/pflege.ttl"):
        assert f'href="{link}"' in html


def test_the_staleness_rule_shows_as_a_notice(client: httpx.Client,
                                              demo_portal: DemoPortal) -> None:
    catalog, vocab, _ = open_catalog(load_settings(demo_portal.root, demo_portal.root / "store"))
    records = catalog.search(Query(rows=1000, facets=()), ANONYMOUS).records
    judged = {r.name: assess(r, vocab).stale for r in records}
    stale = [name for name, is_stale in judged.items() if is_stale]
    fresh = [name for name, is_stale in judged.items() if not is_stale]
    assert stale and fresh  # the demo has both
    assert "Nicht aktuell." in client.get(f"/datasets/{stale[0]}").text
    assert "Nicht aktuell." not in client.get(f"/datasets/{fresh[0]}").text


def test_language_is_chosen_remembered_and_marked(demo_portal: DemoPortal) -> None:
    with httpx.Client(base_url=demo_portal.url, timeout=60) as c:
        page = c.get("/datasets/pflege", params={"lang": "dsb"})
        assert page.headers["content-language"] == "dsb"
        assert c.cookies.get("lang") == "dsb"
        assert '<html lang="dsb">' in page.text and "Daty ześěgnuś" in page.text
        # the German record inside the Lower Sorbian page is marked as German
        assert '<h1><span lang="de">Pflegeangebote' in page.text
        assert '<html lang="dsb">' in c.get("/organizations").text  # remembered
        english = c.get("/", params={"lang": "en"}).text
        assert '<html lang="en">' in english and "Recently updated" in english
        unknown = c.get("/", params={"lang": "tlh"})
        assert '<html lang="de">' in unknown.text and c.cookies.get("lang") == "en"


def test_pages_with_a_secret_are_never_compressed(demo_portal: DemoPortal) -> None:
    """BREACH: the sign-in form carries a CSRF token, so it is sent uncompressed; pages
    without a secret are compressed."""
    with httpx.Client(base_url=demo_portal.url, timeout=60) as client:
        for path, compressed in (("/anmelden", False), ("/", True), ("/orte/crinitz", True)):
            with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
                sent = b"".join(response.iter_raw())
            assert response.status_code == 200, path
            assert (response.headers.get("content-encoding") == "gzip") is compressed, path
            if not compressed:
                assert b'name="csrf"' in sent
