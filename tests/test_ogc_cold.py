"""A cold layer answered from its GeoParquet file (`hub.api.ogc.cold`): the same pages, ids,
order and numberMatched as the layer in memory, reading only the row groups that can hold them.

The project's versions are written with row groups of 100 rows (instead of 65,536) so that
pruning has groups to skip: "geordnet" (points in spatial order, no key: ids are row numbers),
"pflege" (points in random order, a string key, nulls in integer and date columns) and
"flaechen" (triangles, whose boxes are much larger than they are).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import DISTRICT_BBOX, Project, serving_app
from fastapi import FastAPI
from ogc_site import POINT_FIELDS, _write_pflege

from hub.access import ANONYMOUS
from hub.api.ogc import LayerCache, cold, crs, geojson, mapped, ogc_router
from hub.api.ogc.layer import Layer, describe
from hub.api.ogc.params import make_area
from hub.store import geoparquet
from hub.store.versions import Version

GROUP_ROWS = 100
CRSES = [crs.DEFAULT, crs.SUPPORTED[crs.EPSG + "4326"], crs.SUPPORTED[crs.EPSG + "25833"]]


def _write_geordnet(path: Path, rng: np.random.Generator, n: int) -> None:
    """Points sorted by a coarse grid cell, as many sources are (by municipality, street)."""
    x0, y0, x1, y1 = DISTRICT_BBOX
    lon, lat = rng.uniform(x0, x1, n).round(7), rng.uniform(y0, y1, n).round(7)
    order = np.lexsort((lon, np.floor((lat - y0) / (y1 - y0) * 8)))
    lines = ["name,gruppe,wert,lon,lat"]
    for i, k in enumerate(order):
        lines.append(f"Punkt {i + 1},{'ABCD'[i % 4]},{'' if i % 9 == 0 else i % 50},"
                     f"{lon[k]},{lat[k]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_flaechen(path: Path, rng: np.random.Generator, n: int) -> None:
    x0, y0, x1, y1 = DISTRICT_BBOX
    lines = ["name;typ;wkt"]
    for i in range(n):
        x, y = rng.uniform(x0, x1 - 0.1), rng.uniform(y0, y1 - 0.08)
        w, h = rng.uniform(0.002, 0.1), rng.uniform(0.002, 0.08)
        lines.append(f"Fläche {i + 1};{'Wald' if i % 2 else 'Wiese'};"
                     f"POLYGON (({x} {y}, {x + w} {y}, {x} {y + h}, {x} {y}))")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project(tmp_path_factory.mktemp("cold") / "project")
    rng = np.random.default_rng(20261202)
    csv = {"crs": "EPSG:4326", "geometry": {"lon": "lon", "lat": "lat"}}
    project.schema("geordnet", [{"name": "name", "type": "string"},
                                {"name": "gruppe", "type": "string"},
                                {"name": "wert", "type": "integer"},
                                {"name": "geometry", "type": "geojson"}])
    _write_geordnet(project.data / "geordnet.csv", rng, 2000)
    project.pipeline("geordnet", "geordnet", {"path": "data/geordnet.csv", **csv},
                     access="public")
    project.schema("pflege", POINT_FIELDS, primaryKey=["id"])
    _write_pflege(project.data / "pflege.csv", rng, 900)
    project.pipeline("pflege", "pflege", {"path": "data/pflege.csv", **csv}, access="public")
    project.schema("flaechen", [{"name": "name", "type": "string"},
                                {"name": "typ", "type": "string"},
                                {"name": "geometry", "type": "geojson"}])
    _write_flaechen(project.data / "flaechen.csv", rng, 600)
    project.pipeline("flaechen", "flaechen", {"path": "data/flaechen.csv", "crs": "EPSG:4326",
                                              "geometry": {"wkt": "wkt"}}, access="public")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(geoparquet, "ROW_GROUP_ROWS", GROUP_ROWS)
        for name in ("geordnet", "pflege", "flaechen"):
            report = project.ingest(name)
            assert report.status == "committed", (name, report.error)
    return project


def current(project: Project, name: str) -> Version:
    version = project.store.current(name)
    assert version is not None
    return version


def random_box(rng: np.random.Generator) -> tuple[list[float], crs.Crs]:
    """A box in one of the CRSs (its axis order): mostly inside the district, some empty,
    some crossing the antimeridian."""
    box_crs = CRSES[int(rng.integers(len(CRSES)))]
    kind = rng.random()
    if kind < 0.08:
        return [179.5, -10.0, -179.5, 10.0], crs.DEFAULT  # across the antimeridian: nothing
    x0, y0, x1, y1 = DISTRICT_BBOX
    w, h = (x1 - x0) * rng.uniform(0.01, 0.6), (y1 - y0) * rng.uniform(0.01, 0.6)
    a, b = rng.uniform(x0 - 0.05, x1 - w + 0.05), rng.uniform(y0 - 0.05, y1 - h + 0.05)
    if kind < 0.15:
        a, b = a + 5, b + 5  # outside the data
    box = [a, b, a + w, b + h]
    if box_crs.lat_first:
        return [b, a, b + h, a + w], box_crs
    if not box_crs.geographic:
        return crs.box_from_crs84(box, box_crs), box_crs
    return box, box_crs


def features(layer: Layer, rows: np.ndarray, out: crs.Crs) -> str:
    return geojson.dumps({"features": geojson.features(layer, rows, out)}).decode()


@pytest.mark.parametrize("name", ["geordnet", "pflege", "flaechen"])
def test_cold_pages_are_the_warm_pages(project: Project, name: str) -> None:
    version = current(project, name)
    meta = describe(version)
    warm = Layer(version, meta)
    source = cold.Source(version, meta)
    assert source.groups >= version.rows // GROUP_ROWS
    rng = np.random.default_rng(sum(map(ord, name)))
    nonempty = 0
    for case in range(70):
        box, box_crs = random_box(rng)
        area = make_area(box, box_crs, "bbox")
        filters: tuple[tuple[str, Any], ...] = ()
        interval = None
        if case % 5 == 1:
            filters = (("typ" if name == "flaechen" else "name" if name == "pflege"
                        else "gruppe", "Wald" if name == "flaechen" else "B"),)
        if name == "pflege" and case % 5 == 2:
            interval = (None, 1_752_000_000_000_000)  # through mid-2025; rows without a date too
        bbox = None if case % 7 == 3 else area
        key = (bbox, interval, filters, None)
        offset, limit = int(rng.choice([0, 0, 3, 40, 150])), int(rng.choice([1, 10, 100]))
        rows = warm.select(*key)
        matched = warm.rows if rows is None else len(rows)
        expected = np.arange(warm.rows)[offset:offset + limit] if rows is None \
            else rows[offset:offset + limit]
        page = source.page(key, offset, limit)
        out = CRSES[case % len(CRSES)]
        assert page.matched == matched, (name, case, key)
        assert features(page.layer, page.rows, out) == features(warm, expected, out), \
            (name, case, key, offset, limit)
        nonempty += matched > offset
    assert nonempty > 30  # most cases have a page to compare


def test_a_small_box_reads_few_row_groups_of_ordered_rows(project: Project) -> None:
    version = current(project, "geordnet")
    source = cold.Source(version, describe(version))
    x0, y0, x1, y1 = DISTRICT_BBOX
    w, h = (x1 - x0) / 20, (y1 - y0) / 20
    area = make_area([x0 + 8 * w, y0 + 3 * h, x0 + 9 * w, y0 + 4 * h], crs.DEFAULT, "bbox")
    assert 3 <= len(source.groups_in(area)) <= source.groups // 4
    page = source.page((area, None, (), None), 0, 10)
    assert page.matched > 0
    assert page.groups <= source.groups // 4 + 1
    nowhere = make_area([x0 + 5, y0 + 5, x1 + 5, y1 + 5], crs.DEFAULT, "bbox")
    empty = source.page((nowhere, None, (), None), 0, 10)
    assert (empty.matched, empty.groups, len(empty.rows)) == (0, 0, 0)


@pytest.mark.parametrize("name", ["geordnet", "pflege"])
def test_features_by_id_from_the_file(project: Project, name: str) -> None:
    version = current(project, name)
    meta = describe(version)
    warm = Layer(version, meta)
    source = cold.Source(version, meta)
    ids = geojson.feature_ids(warm, np.arange(0, warm.rows, 37))
    for fid in [*map(str, ids), "0", str(warm.rows + 1), "P99999", "abc", "", "1.5"]:
        row = warm.find(fid)
        found = source.find(fid)
        if row is None:
            assert found is None, fid
            continue
        assert found is not None, fid
        assert features(found.layer, found.rows, crs.DEFAULT) == \
            features(warm, np.array([row]), crs.DEFAULT)
        assert found.groups <= (1 if meta.id_field is None else source.groups)


@pytest.fixture()
def held_back(project: Project, tmp_path: Path) -> Iterator[tuple[str, LayerCache,
                                                                   threading.Event]]:
    """The OGC router whose background reads of layers wait until the event is set."""
    layers = LayerCache(folder=tmp_path / "layers")
    gate = threading.Event()
    layers.builds.submit(gate.wait)  # the one build thread waits: later reads queue behind
    app = FastAPI()
    app.include_router(ogc_router(project.store, viewer=lambda request: ANONYMOUS,
                                  cache=layers))
    try:
        with serving_app(app) as url:
            yield f"{url}/ogc", layers, gate
    finally:
        gate.set()
        layers.builds.shutdown(wait=True)


def test_the_server_answers_a_cold_layer_from_the_file_and_then_from_memory(
        held_back: tuple[str, LayerCache, threading.Event], project: Project) -> None:
    url, layers, gate = held_back
    x0, y0 = DISTRICT_BBOX[:2]
    box = f"{x0 + 0.1},{y0 + 0.1},{x0 + 0.4},{y0 + 0.3}"
    requests = [
        ("flaechen/items", {"bbox": box, "limit": "7", "offset": "2"}),
        ("pflege/items", {"bbox": box, "limit": "5", "crs": crs.EPSG + "25833",
                          "art": "Hospiz"}),
        ("pflege/items", {"limit": "3", "offset": "898"}),
        ("pflege/items", {"bbox": box, "f": "html"}),
        ("pflege/items/P0017", {}),
        ("pflege/items/P9999", {}),
        ("geordnet/items/1999", {"crs": crs.EPSG + "4326"}),
    ]

    def answers(client: httpx.Client) -> list[tuple[int, str]]:
        out = []
        for path, params in requests:
            response = client.get(f"{url}/collections/{path}", params=params)
            body = response.text
            if response.headers["content-type"].startswith("application/geo+json"):
                document = response.json()
                document.pop("timeStamp", None)  # the moment of the answer
                body = json.dumps(document, sort_keys=True)
            out.append((response.status_code, body))
        return out
    with httpx.Client(timeout=60) as client:
        cold_answers = answers(client)
        assert layers.held() == []  # answered from the files: no layer read yet
        for name in ("flaechen", "pflege", "geordnet"):
            assert not mapped.ready(layers.folder, current(project, name))  # type: ignore[arg-type]
        gate.set()
        layers.builds.submit(lambda: None).result(timeout=60)  # the background reads are done
        assert {name for name, _ in layers.held()} == {"flaechen", "pflege", "geordnet"}
        warm_answers = answers(client)
    assert [status for status, _ in cold_answers] == [200, 200, 200, 200, 200, 404, 200]
    assert cold_answers == warm_answers


def test_a_damaged_page_read_from_the_file_answers_503(tmp_path: Path) -> None:
    """Versions are written with page checksums: a page damaged on disk fails to read (it
    would otherwise give wrong values), the file is checked and the version marked broken."""
    import pyarrow.parquet as pq

    project = Project(tmp_path / "project")
    project.schema("geordnet", [{"name": "name", "type": "string"},
                                {"name": "gruppe", "type": "string"},
                                {"name": "wert", "type": "integer"},
                                {"name": "geometry", "type": "geojson"}])
    _write_geordnet(project.data / "geordnet.csv", np.random.default_rng(7), 300)
    project.pipeline("geordnet", "geordnet", {"path": "data/geordnet.csv", "crs": "EPSG:4326",
                                              "geometry": {"lon": "lon", "lat": "lat"}},
                     access="public")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(geoparquet, "ROW_GROUP_ROWS", GROUP_ROWS)
        assert project.ingest("geordnet").status == "committed"
    version = current(project, "geordnet")
    path = Path(str(version.source()))
    meta = pq.ParquetFile(path).metadata
    column = meta.row_group(0).column(meta.schema.names.index("geometry"))
    data = bytearray(path.read_bytes())
    data[column.data_page_offset + column.total_compressed_size * 3 // 4] ^= 0x5A
    path.write_bytes(bytes(data))
    layers = LayerCache(folder=tmp_path / "layers")
    gate = threading.Event()
    layers.builds.submit(gate.wait)  # the background read (which would find it too) waits
    app = FastAPI()
    app.include_router(ogc_router(project.store, viewer=lambda request: ANONYMOUS,
                                  cache=layers))
    try:
        with serving_app(app) as url, httpx.Client(timeout=60) as client:
            response = client.get(f"{url}/ogc/collections/geordnet/items/3")
            assert layers.held() == []
    finally:
        gate.set()
        layers.builds.shutdown(wait=True)
    assert response.status_code == 503, response.text
    assert "checksum mismatch" in response.json()["description"]
    assert current(project, "geordnet").broken
