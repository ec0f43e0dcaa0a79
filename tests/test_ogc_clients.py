"""Real OGC API clients against the hub: GDAL's OAPIF driver (through pyogrio) and OWSLib."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from conftest import hub_server
from ogc_site import BIG_ROWS, Site
from owslib.ogcapi.features import Features

PUBLIC = {"pflege", "flaechen", "gross", "wechsel"}


@pytest.fixture(scope="module", autouse=True)
def _oapif_driver() -> None:
    assert "OAPIF" in pyogrio.list_drivers(), "pyogrio's GDAL lacks the OAPIF driver"


def test_gdal_lists_exactly_the_public_layers(ogc_site: Site) -> None:
    layers = pyogrio.list_layers(f"OAPIF:{ogc_site.url}")
    assert {name for name, _ in layers} == PUBLIC
    kinds = dict(layers)
    assert kinds["pflege"] == "Point" and kinds["flaechen"] == "Polygon"


def test_gdal_reads_every_feature_value_and_geometry(ogc_site: Site) -> None:
    project = ogc_site.project
    for name in ("pflege", "flaechen"):
        frame = pyogrio.read_dataframe(f"OAPIF:{ogc_site.url}", layer=name)
        rows = project.rows(name)
        assert len(frame) == len(rows) == project.current(name).rows
        for column in rows[0]:
            got = frame[column].tolist()
            want = [r[column] for r in rows]
            if column == "stand":  # GDAL reads ISO dates as dates
                got = [None if v is None or v != v else
                       (v.date() if isinstance(v, dt.datetime) else v) for v in got]
            if column == "plaetze":  # an integer column with nulls arrives as float
                got = [None if v != v else int(v) for v in got]
            assert got == want, (name, column)
        stored = shapely.get_coordinates(np.array(project.geometries(name)))
        served = shapely.get_coordinates(frame.geometry.values)
        assert stored.shape == served.shape and np.abs(stored - served).max() < 1e-7
    big = pyogrio.read_info(f"OAPIF:{ogc_site.url}", layer="gross", force_feature_count=True)
    assert big["features"] == BIG_ROWS


def test_gdal_pages_by_the_declared_limits(ogc_site: Site,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    """GDAL reads `limit`'s default and maximum from /api (for the path of the collection's
    `items` link) and asks for max(1000, default) features per request, at most the maximum;
    a server declaring 2500 must be read in pages of 2500 (GDAL's own fallback is 1000)."""
    project = ogc_site.project
    with hub_server(project.root, project.store_dir, HUB_OGC_LIMIT_DEFAULT="2500",
                    HUB_OGC_LIMIT_MAX="5000") as server:
        pyogrio.set_gdal_config_options({"CPL_DEBUG": True})
        try:
            capfd.readouterr()
            frame = pyogrio.read_dataframe(f"OAPIF:{server.url}/ogc", layer="gross",
                                           columns=["nr"])
            log = capfd.readouterr().err
        finally:
            pyogrio.set_gdal_config_options({"CPL_DEBUG": None})
    assert len(frame) == BIG_ROWS
    pages = re.findall(r"Fetch\(\S*/collections/gross/items\?\S*limit=(\d+)", log)
    reading = [int(p) for p in pages if int(p) > 20]  # GDAL's first probe asks for 20
    assert reading and set(reading) == {2500}, sorted(set(reading))
    assert len(reading) == BIG_ROWS // 2500


def test_default_limits_let_clients_page_in_large_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.api.ogc import Limits

    for name in ("HUB_OGC_LIMIT_DEFAULT", "HUB_OGC_LIMIT_MAX"):
        monkeypatch.delenv(name, raising=False)
    assert Limits.from_env() == Limits(default=1000, maximum=10_000)


def test_gdal_bbox_and_where_export_to_geopackage(ogc_site: Site, tmp_path: Path) -> None:
    box = (13.3, 51.45, 13.7, 51.75)
    frame = pyogrio.read_dataframe(f"OAPIF:{ogc_site.url}", layer="pflege", bbox=box,
                                   where="art = 'Hospiz'")
    out = tmp_path / "auszug.gpkg"
    pyogrio.write_dataframe(frame, out, layer="hospize", driver="GPKG")
    back = pyogrio.read_dataframe(out, layer="hospize")
    rows = ogc_site.project.rows("pflege")
    xy = shapely.get_coordinates(np.array(ogc_site.project.geometries("pflege")))
    expected = [r["id"] for r, (x, y) in zip(rows, xy, strict=True)
                if r["art"] == "Hospiz" and box[0] <= x <= box[2] and box[1] <= y <= box[3]]
    assert sorted(back["id"]) == sorted(expected) and len(expected) > 3
    assert back.crs.equals("OGC:CRS84")


def test_gdal_reads_in_a_requested_crs(ogc_site: Site) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{ogc_site.url}", layer="pflege",
                                   max_features=5, **{"CRS": "EPSG:25833"})
    assert frame.crs.to_epsg() == 25833
    x, y = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    assert (x > 300_000).all() and (y > 5_600_000).all()  # easting, northing in metres


def test_owslib_collections_items_paging_and_queryables(ogc_site: Site) -> None:
    api = Features(ogc_site.url + "/")
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in \
        api.conformance()["conformsTo"]
    assert {c["id"] for c in api.collections()["collections"]} == PUBLIC
    assert api.collection("pflege")["title"] == "Test pflege"
    first = api.collection_items("pflege", limit=7)
    second = api.collection_items("pflege", limit=7, offset=7)
    assert first["numberMatched"] == 300 and len(first["features"]) == 7
    assert [f["id"] for f in first["features"] + second["features"]] == \
        [f"P{i:04d}" for i in range(1, 15)]
    hospize = api.collection_items("pflege", art="Hospiz", limit=1000)
    assert {f["properties"]["art"] for f in hospize["features"]} == {"Hospiz"}
    assert api.collection_item("pflege", "P0003")["properties"]["name"] == "Einrichtung 3"
    queryables = api.collection_queryables("pflege")
    assert queryables["properties"]["plaetze"]["type"] == "integer"
    with pytest.raises(RuntimeError, match=r"404|Not Found|NotFound"):
        api.collection("intern")


def test_gdal_sends_where_clauses_as_cql_filters(ogc_site: Site,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    """GDAL turns an OGR `where` into `filter=…&filter-lang=cql-text` when the OpenAPI offers
    it (its pre-standard name; the hub reads it as CQL2 text); the server's answer must be the
    same rows a Python evaluation of the clause gives."""
    rows = ogc_site.project.rows("pflege")
    cases = {
        "art = 'Hospiz' AND plaetze > 50":
            lambda r: r["art"] == "Hospiz" and (r["plaetze"] or 0) > 50,
        "name LIKE 'Einrichtung 1%' OR plaetze < 10":
            lambda r: r["name"].startswith("Einrichtung 1") or
            (r["plaetze"] is not None and r["plaetze"] < 10),
        "stand >= '2025-06-01' AND NOT (rollstuhlgerecht = 1)":
            lambda r: r["stand"] is not None and r["stand"] >= dt.date(2025, 6, 1)
            and r["rollstuhlgerecht"] is False,
        "plaetze BETWEEN 10 AND 20": lambda r: r["plaetze"] is not None and
            10 <= r["plaetze"] <= 20,
        "plaetze IS NULL": lambda r: r["plaetze"] is None,
    }
    pyogrio.set_gdal_config_options({"CPL_DEBUG": True})
    try:
        for where, test in cases.items():
            capfd.readouterr()
            frame = pyogrio.read_dataframe(f"OAPIF:{ogc_site.url}", layer="pflege", where=where)
            log = capfd.readouterr().err
            assert "filter-lang=cql-text" in log and "&filter=" in log, where
            assert sorted(frame["id"]) == sorted(r["id"] for r in rows if test(r)), where
    finally:
        pyogrio.set_gdal_config_options({"CPL_DEBUG": None})


def test_owslib_passes_a_cql2_filter(ogc_site: Site) -> None:
    api = Features(ogc_site.url + "/")
    got = api.collection_items("pflege", filter="art IN ('Hospiz') AND plaetze >= 60",
                               limit=1000)
    rows = ogc_site.project.rows("pflege")
    assert [f["id"] for f in got["features"]] == [
        r["id"] for r in rows if r["art"] == "Hospiz" and (r["plaetze"] or 0) >= 60]
    box = api.collection_items("gross", filter="S_INTERSECTS(geometry, BBOX(13.3,51.5,13.31,51.51))"
                               " AND gruppe = 'B'", limit=1000)
    assert box["numberMatched"] == len(box["features"]) > 0
    assert {f["properties"]["gruppe"] for f in box["features"]} == {"B"}
