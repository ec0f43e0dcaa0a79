"""The low-zoom tiles of a version are rendered in the background once it is read, and again
for each new version of a collection in use, so a map opened after a commit finds them cached.

Served by the real OGC router over HTTP (uvicorn on 127.0.0.1) with a tile cache the test holds,
so it can tell a tile rendered for a request from one rendered beforehand; the tiles' bytes are
compared with `tiles.render` on the version itself."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from conftest import Project, serving_app

from hub.api.ogc import tiles
from hub.api.ogc.layer import LayerCache
from hub.api.ogc.prerender import MAX_TILES, highest_zoom, low_tiles

TMS = "WebMercatorQuad"


def _write_polygons(path: Path, shift: float) -> None:
    lines = ["name;wkt"]
    for i in range(40):
        x, y = 13.1 + (i % 8) * 0.09 + shift, 51.4 + (i // 8) * 0.08
        lines.append(f"Fläche {i + 1};POLYGON (({x} {y}, {x + 0.07} {y}, {x + 0.07} {y + 0.05}, "
                     f"{x} {y + 0.05}, {x} {y}))")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _project(project: Project) -> Project:
    project.schema("flaechen", [{"name": "name", "type": "string"},
                                {"name": "geometry", "type": "geojson"}])
    _write_polygons(project.data / "flaechen.csv", 0.0)
    source = {"path": "data/flaechen.csv", "crs": "EPSG:4326", "geometry": {"wkt": "wkt"}}
    project.pipeline("flaechen", "flaechen", source, access="public")
    project.pipeline("andere", "flaechen", source, access="public")
    for name in ("flaechen", "andere"):
        assert project.ingest(name).status == "committed"
    return project


def _rendered(cache: tiles.TileCache, name: str, count: int) -> int:
    for _ in range(600):  # a bound against a hang only: rendering these takes milliseconds
        if cache.rendered[name] >= count:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # anything beyond `count` would show now
    return cache.rendered[name]


def test_low_zoom_tiles_are_rendered_before_a_map_asks(ingest_project: Project,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI

    from hub.access import ANONYMOUS
    from hub.api.ogc import ogc_router

    monkeypatch.delenv("HUB_OGC_TILES_PRERENDER", raising=False)
    project = _project(ingest_project)
    cache = tiles.TileCache()
    app = FastAPI()
    app.include_router(ogc_router(project.store, viewer=lambda request: ANONYMOUS,
                                  tile_cache=cache))
    first = project.store.current("flaechen")
    wanted = list(low_tiles(first, 10))
    assert [z for z, _, _ in wanted][:1] == [0] and max(z for z, _, _ in wanted) == 10
    with serving_app(app) as url, httpx.Client(base_url=url + "/ogc", timeout=60) as client:
        assert client.get("/collections/andere").status_code == 200  # never read: nothing
        assert client.get("/collections/flaechen/items?limit=1").status_code == 200
        assert _rendered(cache, "flaechen", len(wanted)) == len(wanted)
        layer = LayerCache().layer(first)
        for z, x, y in wanted:
            response = client.get(f"/collections/flaechen/tiles/{TMS}/{z}/{y}/{x}")
            assert response.status_code in (200, 204)
            assert response.content == tiles.render(layer, "flaechen", z, x, y)
        assert cache.rendered["flaechen"] == len(wanted)  # every one came from the cache
        assert cache.rendered["andere"] == 0

        # a new version of the collection in use: its tiles are rendered when a request
        # meets it, before any tile of it is asked for
        _write_polygons(project.data / "flaechen.csv", 0.02)
        assert project.ingest("flaechen").status == "committed"
        second = project.store.current("flaechen")
        assert second.version == first.version + 1
        assert client.get("/collections/flaechen").status_code == 200
        again = list(low_tiles(second, 10))
        assert _rendered(cache, "flaechen", len(wanted) + len(again)) == \
            len(wanted) + len(again)
        layer = LayerCache().layer(second)
        for z, x, y in again:
            response = client.get(f"/collections/flaechen/tiles/{TMS}/{z}/{y}/{x}")
            assert response.content == tiles.render(layer, "flaechen", z, x, y)
        assert cache.rendered["flaechen"] == len(wanted) + len(again)
        span = tiles.limits(second.bbox, range(12, 13))[0]  # above the pre-rendered zooms:
        client.get(f"/collections/flaechen/tiles/{TMS}/12/{span['minTileRow']}/"  # rendered
                   f"{span['minTileCol']}")  # when asked
        assert cache.rendered["flaechen"] == len(wanted) + len(again) + 1


def test_how_many_tiles_and_zooms(ingest_project: Project,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    version = _project(ingest_project).store.current("flaechen")
    per_zoom = [len([t for t in low_tiles(version, 14, 10 ** 6) if t[0] == z])
                for z in range(15)]
    assert per_zoom[0] == 1 and per_zoom[14] > MAX_TILES
    capped = list(low_tiles(version, 14))
    top = max(z for z, _, _ in capped)
    assert len(capped) == sum(per_zoom[:top + 1]) <= MAX_TILES < sum(per_zoom[:top + 2])
    monkeypatch.delenv("HUB_OGC_TILES_PRERENDER", raising=False)
    assert highest_zoom(20) == 10 and highest_zoom(8) == 8
    monkeypatch.setenv("HUB_OGC_TILES_PRERENDER", "-1")
    assert highest_zoom(20) == -1
    for bad, message in (("zehn", "not a whole number"), ("21", "between -1 \\(none\\) and 20")):
        monkeypatch.setenv("HUB_OGC_TILES_PRERENDER", bad)
        with pytest.raises(ValueError, match=message):
            highest_zoom(20)


def test_workers_share_one_file_of_the_prerendered_tiles(ingest_project: Project) -> None:
    """Two workers (each its own tile cache and `Prerender`, one layer cache folder) starting
    at once: one renders the tiles and writes them to one file, the other waits and maps it;
    both serve the same bytes as `tiles.render`, and neither keeps them in its tile cache."""
    import threading

    from hub.api.ogc import tilefiles
    from hub.api.ogc.prerender import Prerender

    project = _project(ingest_project)
    version = project.store.current("flaechen")
    folder = project.store.root / "cache" / "layers"
    layers = LayerCache(folder=folder)
    workers = [Prerender(tiles.TileCache(), layers.layer, 10, folder) for _ in range(2)]
    start = threading.Barrier(2)

    def begin(worker: Prerender) -> None:
        start.wait(30)
        worker.seen(version, loaded=True)
    threads = [threading.Thread(target=begin, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(w.wait(120) for w in workers)  # a bound against a hang only

    wanted = list(low_tiles(version, 10))
    assert sum(w.cache.rendered["flaechen"] for w in workers) == len(wanted)  # rendered once
    assert all(w.cache.nbytes == 0 for w in workers)  # served from the file, not kept
    path = tilefiles.path_of(folder, version, tiles.ENCODER, 10)
    mapped = [line for line in Path("/proc/self/maps").read_text().splitlines()
              if line.endswith(str(path))]
    assert len(mapped) == 2  # each worker maps the one file
    layer = layers.layer(version)
    for z, x, y in wanted:
        key = ("flaechen", version.version, z, x, y)
        expected = tiles.render(layer, "flaechen", z, x, y)
        assert workers[0].tile(key) == workers[1].tile(key) == expected
    assert workers[0].tile(("flaechen", version.version + 1, 0, 0, 0)) is None
    assert workers[0].nbytes == path.stat().st_size


def test_a_damaged_tile_file_is_written_again_and_old_versions_go(ingest_project: Project
                                                                   ) -> None:
    from hub.api.ogc import tilefiles
    from hub.api.ogc.prerender import Prerender

    project = _project(ingest_project)
    first = project.store.current("flaechen")
    folder = project.store.root / "cache" / "layers"
    layers = LayerCache(folder=folder)
    path = tilefiles.path_of(folder, first, tiles.ENCODER, 10)
    path.parent.mkdir(parents=True)
    path.write_bytes(tilefiles.MAGIC + (5).to_bytes(4, "little") + b"cut short")
    assert tilefiles.TileFile.open(path) is None and not path.exists()  # removed
    path.write_bytes(b"")
    worker = Prerender(tiles.TileCache(), layers.layer, 10, folder)
    worker.seen(first, loaded=True)
    assert worker.wait(120)
    assert worker.cache.rendered["flaechen"] == len(list(low_tiles(first, 10)))
    assert tilefiles.TileFile.open(path) is not None

    _write_polygons(project.data / "flaechen.csv", 0.02)
    assert project.ingest("flaechen").status == "committed"
    second = project.store.current("flaechen")
    worker.seen(second)
    assert worker.wait(120)
    values = tilefiles.index_of(folder, second, tiles.ENCODER, "values").name  # mvt.Attributes
    assert sorted(p.name for p in path.parent.iterdir()) == \
        sorted([tilefiles.path_of(folder, second, tiles.ENCODER, 10).name,
                tilefiles.path_of(folder, second, tiles.ENCODER, 10).name + ".lock",
                values, values + ".lock"])
    span = tiles.limits(second.bbox, range(10, 11))[0]
    key = ("flaechen", second.version, 10, span["minTileCol"], span["minTileRow"])
    assert worker.tile(key) == tiles.render(layers.layer(second), "flaechen", *key[2:])
    assert worker.tile(("flaechen", first.version, 0, 0, 0)) is None  # not the old file
