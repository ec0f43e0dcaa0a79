"""The map viewer of every geodataset (`/karten/daten/{name}`) over HTTP on the demo district
(`hub serve`, tests/conftest.py): the page is fitted to the current version's extent, reads
the layer only from the hub's own OGC API items, has a legend from the data, and its list (the
text alternative) is paged on the server with the same features and ids as the OGC API.
Datasets the visitor may not see answer 404 like unknown ones (tests/test_leak_crawl.py crawls
the route for every role)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DemoPortal

from hub.store.versions import Store
from hub.web.portal.viewer import FEATURE_LIMIT, PER_PAGE

ROW_ID = re.compile(r'<tr data-id="([^"]*)">')


@pytest.fixture(scope="module")
def client(demo_portal: DemoPortal) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_portal.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def store(demo_portal: DemoPortal) -> Store:
    return Store(Path(demo_portal.root) / "store")


def attribute(page: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', page)
    assert found, name
    return html.unescape(found.group(1))


def ogc_ids(client: httpx.Client, name: str, offset: int, limit: int) -> list[str]:
    response = client.get(f"/ogc/collections/{name}/items",
                          params={"f": "json", "offset": offset, "limit": limit})
    assert response.status_code == 200, response.text
    return [str(f["id"]) for f in response.json()["features"]]


def test_the_viewer_is_fitted_to_the_layer_and_reads_its_ogc_items(
        client: httpx.Client, store: Store) -> None:
    version = store.current("pflege")
    response = client.get("/karten/daten/pflege")
    assert response.status_code == 200
    page = response.text
    assert [float(v) for v in attribute(page, "data-bbox").split(",")] == pytest.approx(
        version.bbox, abs=1e-6)
    assert attribute(page, "data-items") == "/ogc/collections/pflege/items"
    assert attribute(page, "data-limit") == str(FEATURE_LIMIT)
    assert attribute(page, "data-base") == "/ogc/collections/gemeinden/items"
    assert re.search(r'<script src="/static/viewer.js\?v=[0-9a-f]{12}" defer>', page)
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert '"type": "Feature' not in page  # no inline features: the map reads the OGC API
    assert 'href="/datasets/pflege"' in page  # back to the dataset
    assert "glyph-point" in page and "glyph-polygon" not in page


def test_the_legend_is_the_datas_own_categories(client: httpx.Client) -> None:
    page = client.get("/karten/daten/mobilitaet").text
    column = attribute(page, "data-legend-column")
    values = json.loads(attribute(page, "data-legend-values"))
    every = client.get("/ogc/collections/mobilitaet/items",
                       params={"f": "json", "limit": 10000}).json()["features"]
    assert values == sorted({f["properties"][column] for f in every})
    assert 2 <= len(values) <= 8
    for value in values:  # each named in the legend, not by colour alone
        assert f"</span> {html.escape(value)}</li>" in page
    # and drawn in a shape of its own, the one its markers get (viewer.js reads data-shapes)
    shapes, colours = (json.loads(attribute(page, f"data-{n}")) for n in ("shapes", "colours"))
    assert len(set(shapes)) == len(shapes) >= len(values)
    swatches = re.findall(r'<span class="swatch-shape" aria-hidden="true"><svg [^>]*><path '
                          r'd="([^"]+)" fill="([^"]+)"/></svg></span> ([^<]+)</li>', page)
    assert [(d, fill, html.unescape(v)) for d, fill, v in swatches] == [
        (shapes[i], colours[i], value) for i, value in enumerate(values)]


def test_the_list_is_paged_on_the_server_with_the_ogc_ids(
        client: httpx.Client, store: Store) -> None:
    rows = store.current("pflege").rows
    pages = -(-rows // PER_PAGE)
    assert pages >= 3
    seen: list[str] = []
    for n in range(1, pages + 1):
        page = client.get("/karten/daten/pflege", params={"page": n}).text
        ids = ROW_ID.findall(page)
        assert ids == ogc_ids(client, "pflege", (n - 1) * PER_PAGE, PER_PAGE), n
        assert f'href="/ogc/collections/pflege/items/{ids[0]}"' in page
        assert ('rel="next"' in page) == (n < pages)
        assert ('rel="prev"' in page) == (n > 1)
        seen += ids
    assert len(seen) == len(set(seen)) == rows


@pytest.mark.parametrize(("params", "status"), [
    ({"page": "0"}, 400), ({"page": "abc"}, 400), ({"page": "99999999"}, 400),
    ({"page": "1000"}, 400)])
def test_bad_page_numbers_get_a_clear_page(client: httpx.Client, params: dict[str, str],
                                           status: int) -> None:
    response = client.get("/karten/daten/pflege", params=params)
    assert response.status_code == status
    assert "Seite" in response.text


def test_hidden_and_unknown_datasets_answer_the_same_404(
        client: httpx.Client) -> None:
    """The demo's broadband grid is internal: no map for an anonymous visitor."""
    hidden = client.get("/karten/daten/breitband")
    unknown = client.get("/karten/daten/breitband-gibt-es-nicht")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.text.replace("breitband", "X") == unknown.text.replace(
        "breitband-gibt-es-nicht", "X")
    assert client.get("/ogc/collections/breitband").status_code == 404  # the same decision


def test_dataset_pages_and_curated_maps_link_the_viewer(client: httpx.Client) -> None:
    assert 'href="/karten/daten/pflege"' in client.get("/datasets/pflege").text
    assert "/karten/daten/" not in client.get("/datasets/abfallkalender").text  # no data held
    care = client.get("/karten/pflege").text
    assert 'href="/karten/daten/pflege"' in care and 'href="/karten/daten/gemeinden"' in care
    page = client.get("/karten/daten/gemeinden").text  # the base itself: not drawn twice
    assert "data-base=" not in page and "glyph-polygon" in page


def test_a_list_page_across_row_groups_reads_the_right_rows(
        ingest_project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The list reads only the row groups holding a page; pages that start or end inside a
    group or span several give exactly the rows of the file, with their OGC ids."""
    import pyarrow.parquet as pq

    import hub.store.geoparquet
    from hub.web.portal.viewer import categories, rows_at

    monkeypatch.setattr(hub.store.geoparquet, "ROW_GROUP_ROWS", 7)
    ingest_project.schema("punkte", [
        {"name": "nr", "type": "integer"}, {"name": "art", "type": "string"},
        {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}])
    lines = ["nr,art,lon,lat"] + [f"{i},{'AB'[i % 2]},{13.1 + i / 100},{51.4 + i / 200}"
                                  for i in range(1, 31)]
    (ingest_project.data / "punkte.csv").write_text("\n".join(lines), encoding="utf-8")
    ingest_project.pipeline("punkte", "punkte", {
        "path": "data/punkte.csv", "geometry": {"lon": "lon", "lat": "lat"},
        "crs": "EPSG:4326"})
    assert ingest_project.ingest("punkte").status == "committed"
    store = ingest_project.store
    version = store.current("punkte")
    assert pq.ParquetFile(version.data_file).metadata.num_row_groups > 3
    every = [str(n) for n in pq.read_table(version.data_file).column("nr").to_pylist()]
    for start in range(0, 31):
        for count in (1, 5, 9, 25):
            page = rows_at(store, version, start, count)
            assert [r[page.columns.index("nr")] for r in page.rows] == every[start:start + count]
            assert page.ids == list(range(start + 1, start + 1 + len(page.rows)))
    assert categories(store, version).values == ("A", "B")
