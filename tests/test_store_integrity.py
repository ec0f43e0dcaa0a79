"""Damaged files in the store: `hub check` finds and isolates them, the server keeps serving
everything else (the damaged version answers 503 on its own URLs), `hub rollback` gets a good
version back, and exports left half-built by a killed server are cleaned up."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyogrio
import pytest
import yaml
from conftest import DISTRICT_BBOX, Project, free_port, hub_server

from hub.api.downloads.exports import check_folder
from hub.store.faults import wait_stopped
from hub.store.integrity import CorruptVersion
from soak.faults import (
    HubServer,
    cut_download,
    flip_bytes,
    hub_process,
    kill,
    truncate,
    write_points,
)

REPO = Path(__file__).resolve().parents[1]
FIELDS = [{"name": "id", "type": "string", "constraints": {"required": True}},
          {"name": "wert", "type": "number"},
          {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]


def make_project(root: Path, datasets: dict[str, tuple[str, int]]) -> Project:
    """A project with a catalog (as in production) and one point dataset per entry
    {name: (pipeline access, rows)}, each ingested once."""
    project = Project(root)  # with the production catalog (conftest.add_catalog)
    (root / "catalog" / "district.yaml").write_text(yaml.safe_dump({
        "name": "Testkreis", "ags": "12062", "bbox": DISTRICT_BBOX, "extent_buffer_km": 5,
        "default_license": "dl-by-de/2.0"}), encoding="utf-8")
    project.schema("punkte", FIELDS, primaryKey=["id"])
    for seed, (name, (access, rows)) in enumerate(datasets.items()):
        write_points(project.data / f"{name}.csv", rows, seed)
        project.pipeline(name, "punkte", {"path": f"data/{name}.csv", "crs": "EPSG:4326",
                                          "geometry": {"lon": "lon", "lat": "lat"}},
                         access=access, organization="sozialamt")
        assert project.ingest(name).status == "committed"
    loaded = project.cli("catalog", "load")
    assert loaded.exit_code == 0, loaded
    return project


def new_version(project: Project, name: str, rows: int, seed: int) -> None:
    write_points(project.data / f"{name}.csv", rows, seed)
    assert project.ingest(name).status == "committed"


# -- hub check and hub rollback ---------------------------------------------------------------

def test_check_isolates_a_damaged_version_and_rollback_restores_service(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"punkte": ("public", 300), "andere": ("public", 50)})
    new_version(project, "punkte", 400, seed=7)
    store = project.store
    v2 = store.current("punkte")
    original = v2.data_file.read_bytes()
    assert project.cli("check").exit_code == 0  # all sound

    truncate(v2.data_file)
    checked = project.cli("check")
    assert checked.exit_code == 1, checked
    assert "punkte" in checked.text and "broken" in checked.text
    assert "checksum mismatch" in checked.text
    assert "hub rollback punkte" in checked.text  # what the operator can do
    assert store.version("punkte", 2).broken and not store.version("punkte", 1).broken
    assert not store.current("andere").broken
    with pytest.raises(CorruptVersion, match=r"version 2 of 'punkte'.*hub check"):
        store.ensure_sound(store.current("punkte"))
    history = project.cli("history", "punkte")
    assert "broken" in history.text

    refused = project.cli("rollback", "punkte", "2")
    assert refused.exit_code == 1 and "broken" in refused.text
    rolled = project.cli("rollback", "punkte", "1")
    assert rolled.exit_code == 0, rolled
    assert store.current("punkte").version == 1
    assert project.cli("check", "andere").exit_code == 0  # one dataset, sound
    assert project.cli("check", "punkte").exit_code == 1  # v2 is still damaged

    v2.data_file.write_bytes(original)  # restored from a backup
    repaired = project.cli("check", "punkte")
    assert repaired.exit_code == 0 and "repaired" in repaired.text, repaired
    assert store.version("punkte", 2).broken is None
    assert [e["kind"] for e in store.events("punkte")][:3] == ["repaired", "rollback", "broken"]


def test_check_finds_a_damaged_data_page_and_a_missing_file(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"seiten": ("public", 2000), "weg": ("public", 10)})
    store = project.store
    flip_bytes(store.current("seiten").data_file)  # the footer still reads fine
    store.current("weg").data_file.unlink()
    checked = project.cli("check")
    assert checked.exit_code == 1
    assert "checksum mismatch" in checked.text and "data.parquet is missing" in checked.text
    assert store.current("seiten").broken and store.current("weg").broken


def test_ingest_replaces_a_broken_current_version_even_if_sources_are_unchanged(
        tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"punkte": ("public", 30)})
    truncate(project.store.current("punkte").data_file)
    assert project.cli("check").exit_code == 1
    report = project.ingest("punkte")  # same source, same pipeline
    assert report.status == "committed" and report.version == 2
    assert project.cli("check").exit_code == 1  # v1 stays broken (kept for the record) ...
    assert project.store.current("punkte").broken is None  # ... but is not served


# -- the server with damaged files ------------------------------------------------------------

@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Project, httpx.Client, str]]:
    project = make_project(tmp_path / "p", {
        "kaputt": ("public", 3000), "selbst": ("public", 3000), "heil": ("public", 200),
        "intern": ("internal", 3000)})
    new_version(project, "kaputt", 2500, seed=11)
    with hub_server(project.root, project.store_dir) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        yield project, client, server.url


KAPUTT_URLS = ["/downloads/kaputt/latest.geojson", "/downloads/kaputt/latest.csv",
               "/downloads/kaputt/v2.gpkg", "/downloads/kaputt/latest.parquet",
               "/downloads/kaputt/latest.fgb", "/ogc/collections/kaputt",
               "/ogc/collections/kaputt/items?limit=5", "/ogc/collections/kaputt/items/P11-1",
               "/ogc/collections/kaputt/queryables",
               "/ogc/collections/kaputt/tiles/WebMercatorQuad/8/84/137"]


def test_a_damaged_version_answers_503_and_everything_else_is_served(served) -> None:
    project, client, _ = served
    store = project.store
    # served before the damage: the layer is in memory and the GeoPackage is built
    assert client.get("/ogc/collections/kaputt/items?limit=5").status_code == 200
    assert client.get("/downloads/kaputt/v2.gpkg").status_code == 200
    assert client.get("/downloads/kaputt/v1.csv").status_code == 200
    flip_bytes(store.current("kaputt").data_file)
    assert project.cli("check", "kaputt").exit_code == 1

    for url in KAPUTT_URLS:
        response = client.get(url)
        assert response.status_code == 503, (url, response.status_code, response.text[:200])
        assert "version 2 of 'kaputt'" in response.text and "hub check" in response.text, url
    for url in ("/", "/api/datasets", "/ogc/collections", "/ogc/collections/heil/items",
                "/downloads/heil/latest.geojson", "/downloads/heil/latest.gpkg",
                "/downloads/kaputt/v1.geojson", "/downloads/kaputt", "/api/3/action/status_show"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
    collections = [c["id"] for c in client.get("/ogc/collections?f=json").json()["collections"]]
    assert "heil" in collections and "kaputt" not in collections
    listed = client.get("/downloads/kaputt").json()["versions"]
    assert [v.get("broken", "") != "" for v in listed] == [True, False]

    assert project.cli("rollback", "kaputt", "1").exit_code == 0
    for url in ("/downloads/kaputt/latest.geojson", "/downloads/kaputt/latest.gpkg",
                "/ogc/collections/kaputt/items?limit=5"):
        assert client.get(url).status_code == 200, url
    assert client.get("/ogc/collections/kaputt/items?limit=1").json()["features"][0][
        "id"].startswith("P0-")


def test_the_server_finds_damage_itself_on_first_read(served) -> None:
    project, client, _ = served
    store = project.store
    truncate(store.current("selbst").data_file)  # never read by this server yet
    flip_bytes(store.current("intern").data_file)
    for url in ("/downloads/selbst/latest.csv", "/ogc/collections/selbst/items"):
        response = client.get(url)
        assert response.status_code == 503 and "version 1 of 'selbst'" in response.text, url
    assert store.current("selbst").broken  # recorded for every process and `hub history`
    assert store.events("selbst")[0]["kind"] == "broken"
    for url in ("/downloads/intern/latest.csv", "/ogc/collections/intern/items",
                "/downloads/intern"):  # hidden data stays hidden, damaged or not
        assert client.get(url).status_code == 404, url
    assert client.get("/downloads/heil/latest.fgb").status_code == 200
    assert client.get("/ogc/collections").status_code == 200


def test_damage_after_the_first_check_is_found_on_the_next_read_error(served) -> None:
    project, client, _ = served
    store = project.store
    assert client.get("/downloads/kaputt/latest.csv").status_code == 200  # verified
    truncate(store.current("kaputt").data_file)  # damaged later, while the server runs
    for url in ("/downloads/kaputt/latest.gpkg", "/ogc/collections/kaputt/items"):
        response = client.get(url)  # building the export / loading the layer fails to read
        assert response.status_code == 503 and "version 2 of 'kaputt'" in response.text, url
    assert store.current("kaputt").broken
    assert client.get("/downloads/kaputt/v1.gpkg").status_code == 200


def test_a_damaged_export_is_deleted_and_built_again(served, tmp_path: Path) -> None:
    project, client, _ = served
    good = client.get("/downloads/heil/latest.gpkg")
    assert good.status_code == 200
    exports = project.store.current("heil").path / "exports"
    [gpkg] = exports.glob("*.gpkg")
    assert (exports / (gpkg.name + ".sha256")).exists()
    flip_bytes(gpkg)
    checked = project.cli("check", "heil")
    assert checked.exit_code == 1 and "damaged, deleted" in checked.text, checked
    assert not gpkg.exists()
    again = client.get("/downloads/heil/latest.gpkg")
    assert again.status_code == 200
    copies = []
    for i, body in enumerate((good.content, again.content)):
        copies.append(tmp_path / f"heil{i}.gpkg")
        copies[-1].write_bytes(body)
    first, second = (pyogrio.read_dataframe(c) for c in copies)
    assert len(second) == 200 and second.equals(first)
    assert project.cli("check", "heil").exit_code == 0


def test_a_server_finds_a_damaged_export_before_serving_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"heil": ("public", 200)})
    with hub_server(project.root, project.store_dir) as server:
        good = httpx.get(server.url + "/downloads/heil/latest.fgb", timeout=60)
    assert good.status_code == 200
    [fgb] = (project.store.current("heil").path / "exports").glob("*.fgb")
    flip_bytes(fgb)
    with hub_server(project.root, project.store_dir) as server:  # a new process
        again = httpx.get(server.url + "/downloads/heil/latest.fgb", timeout=60)
    assert again.status_code == 200 and again.content == good.content


# -- leftovers of killed export builders ------------------------------------------------------

def _age(path: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _ignore_errors(call: Callable[..., object], *args: object, **kwargs: object) -> None:
    with contextlib.suppress(httpx.HTTPError):
        call(*args, **kwargs)


def test_leftovers_of_a_server_killed_while_building_are_removed(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"gross": ("public", 2000)})
    exports = project.store.current("gross").path / "exports"
    with hub_server(project.root, project.store_dir,
                    HUB_FAULT_POINT="export-written") as server:  # stops there (SIGSTOP)
        request = threading.Thread(target=lambda: _ignore_errors(
            httpx.get, server.url + "/downloads/gross/latest.gpkg", timeout=120))
        request.start()
        wait_stopped(server.pid)  # the GeoPackage is written, not yet in place
        os.kill(server.pid, signal.SIGKILL)
        request.join()
    leftovers = sorted(p.name for p in exports.glob(".tmp-*"))
    assert leftovers, "the kill left nothing behind"
    assert not [p for p in exports.glob("*.gpkg") if not p.name.startswith(".")]
    for p in exports.glob(".tmp-*"):
        _age(p)  # older than the grace period
    with hub_server(project.root, project.store_dir) as server:  # the folder is used again
        assert httpx.get(server.url + "/downloads/gross/latest.fgb",
                         timeout=120).status_code == 200
    assert not list(exports.glob(".tmp-*"))


def test_check_removes_only_leftovers_of_dead_builders(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"punkte": ("public", 20)})
    version = project.store.current("punkte")
    exports = version.path / "exports"
    exports.mkdir()
    dead = [exports / ".tmp-0123456789ab-punkte-v1.x.r1.gpkg",
            exports / ".tmp-0123456789ab-punkte-v1.x.r1.gpkg-journal",
            exports / ".tmp-0123456789ab.lock",  # its builder died: nobody holds the lock
            exports / ".tmp-aaaaaaaaaaaa-punkte-v1.x.r1.fgb"]  # made before builders locked
    live = [exports / ".tmp-fedcba987654-punkte-v1.y.r1.gpkg"]
    fresh = [exports / ".tmp-bbbbbbbbbbbb-punkte-v1.z.r1.gpkg"]  # a builder taking its lock
    for path in dead + live + fresh:
        path.write_bytes(b"partial")
    for path in dead + live:
        _age(path)
    lock = exports / ".tmp-fedcba987654.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a live builder (another process in real life)
        _age(lock)
        found = check_folder(version)
        assert sorted(found.leftovers) == sorted(p.name for p in dead)
        assert all(p.exists() for p in [*live, *fresh, lock])
        checked = project.cli("check", "punkte")
        assert checked.exit_code == 0 and "leftovers" not in checked.text
    _age(lock)
    for path in fresh:
        _age(path)
    checked = project.cli("check", "punkte")
    assert checked.exit_code == 0 and "3 leftovers removed" in checked.text, checked
    assert not list(exports.glob(".tmp-*"))


def test_sql_views_leave_out_a_broken_version(tmp_path: Path) -> None:
    import duckdb

    from hub.store.query import connect, refresh

    project = make_project(tmp_path / "p", {"gut": ("public", 40), "schlecht": ("public", 30)})
    store = project.store
    con = connect(store, spatial=False)
    assert con.sql("SELECT count(*) FROM schlecht").fetchone() == (30,)
    truncate(store.current("schlecht").data_file)
    assert project.cli("check").exit_code == 1
    refresh(con, store)
    assert con.sql("SELECT count(*) FROM gut").fetchone() == (40,)
    with pytest.raises(duckdb.CatalogException, match="schlecht"):
        con.sql("SELECT count(*) FROM schlecht")


# -- the server killed while it serves --------------------------------------------------------

def _answer(url: str) -> tuple[int, int, str]:
    body = httpx.get(url, timeout=60).json()
    return body["version"], body["rows"], body["checksum"]


def test_a_server_killed_mid_request_comes_back_on_the_last_good_version(
        tmp_path: Path) -> None:
    """SIGKILL while a download is under way and an ingest is stopped after renaming its
    version folder (not recorded): the restarted server serves the last committed version,
    every file verifies, and the next ingest commits without cleanup by hand."""
    project = make_project(tmp_path / "p", {"punkte": ("public", 5000)})
    new_version(project, "punkte", 30_000, seed=5)  # v2: the last good version
    good = (2, 30_000, project.store.current("punkte").checksum)
    write_points(project.data / "punkte.csv", 4000, seed=6)
    writer = hub_process(project.root, project.store_dir, "ingest", "punkte",
                         HUB_FAULT_POINT="version-renamed")
    wait_stopped(writer.pid)  # v3's folder is in place, the log does not know it
    server = HubServer(project.root, project.store_dir, free_port(), log=tmp_path / "log")
    server.start()
    try:
        url = server.url + "/downloads/punkte/latest.geojson"  # about 4 MB
        reference = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=60).content
        assert _answer(server.url + "/api/datasets/punkte") == good
        cut = cut_download(url, server, after=16_384)  # killed mid-request
        assert cut.error is not None and reference.startswith(cut.body)
        kill(writer)
        server.start()
        assert _answer(server.url + "/api/datasets/punkte") == good
        assert httpx.get(url, headers={"Accept-Encoding": "identity"},
                         timeout=60).content == reference
        assert project.cli("check").exit_code == 0
        assert project.ingest("punkte").version == 3  # the dead run's folder is cleaned
        assert _answer(server.url + "/api/datasets/punkte")[:2] == (3, 4000)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("big") / "p", {"gross": ("public", 60_000)})


@pytest.mark.parametrize(("ext", "framing"), [("geojson", "chunked"), ("csv", "chunked"),
                                              ("fgb", "length")])
def test_a_download_cut_by_a_restart_ends_in_an_error_and_comes_again_identical(
        big: Project, tmp_path: Path, ext: str, framing: str) -> None:
    """The server dies part-way through a download: the client's transfer fails (the chunked
    stream lacks its last chunk, or the body falls short of Content-Length) — it never looks
    complete, short or mixed — and after the restart the same bytes come again."""
    project = big
    server = HubServer(project.root, project.store_dir, free_port(), log=tmp_path / "log")
    server.start()
    try:
        url = f"{server.url}/downloads/gross/latest.{ext}"
        reference = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=60).content
        cut = cut_download(url, server, after=16_384)
        assert cut.framing == framing
        assert cut.error is not None, "a transfer the server could not finish looked complete"
        assert len(cut.body) < len(reference) and reference.startswith(cut.body)
        if framing == "length":
            assert int(cut.headers["content-length"]) == len(reference)
        server.start()
        again = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=60)
        assert again.status_code == 200 and again.content == reference
    finally:
        server.stop()
