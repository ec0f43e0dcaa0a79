"""The OGC API's layer cache: bounded by bytes, least recently used evicted first, layers as
files mapped into memory and shared by the workers of `hub serve --workers N`.

The layers are the OGC test site's versions (tests/ogc_site.py): "pflege" (points), "gross"
(100,000 points), "flaechen" (polygons).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import hub_server, serving_app
from fastapi import FastAPI
from ogc_site import Site

from hub.access import ANONYMOUS
from hub.api.ogc import LayerCache, crs, mapped, ogc_router
from hub.api.ogc.layer import Layer, describe
from hub.api.ogc.params import make_area
from hub.store.versions import Version

BBOX = "13.20,51.45,13.45,51.60"


def current(site: Site, name: str) -> Version:
    version = site.project.store.current(name)
    assert version is not None
    return version


def test_layers_are_evicted_by_bytes_least_recently_used_first(ogc_site: Site,
                                                               tmp_path: Path) -> None:
    a, b, c = (current(ogc_site, n) for n in ("pflege", "gross", "flaechen"))
    size = {v.dataset: Layer(v, describe(v), tmp_path).nbytes for v in (a, b, c)}
    bound = size["pflege"] + max(size["gross"], size["flaechen"])
    cache = LayerCache(max_bytes=bound, folder=tmp_path)
    for v in (a, b, a):
        cache.layer(v)
    assert cache.held() == [("gross", b.version), ("pflege", a.version)]
    cache.layer(c)  # all three do not fit: "gross", used least recently, goes
    assert cache.held() == [("pflege", a.version), ("flaechen", c.version)]
    assert cache.nbytes <= bound
    reads = cache.reads["gross"]
    cache.layer(b)  # read again: now "pflege" is the least recently used
    assert cache.reads["gross"] == reads + 1
    assert cache.held() == [("flaechen", c.version), ("gross", b.version)]
    # a layer larger than the whole bound is still served, alone
    tiny = LayerCache(max_bytes=1, folder=tmp_path)
    for v in (a, b, c):
        assert tiny.layer(v).rows == v.rows
        assert tiny.held() == [(v.dataset, v.version)]


def test_cache_size_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("HUB_LAYER_CACHE_MB", "1.5")
    monkeypatch.setenv("HUB_LAYER_CACHE_DIR", str(tmp_path / "layers"))
    cache = LayerCache.for_store(tmp_path / "store")
    assert (cache.max_bytes, cache.folder) == (1536 << 10, tmp_path / "layers")
    monkeypatch.delenv("HUB_LAYER_CACHE_DIR")
    assert LayerCache.for_store(tmp_path / "store").folder == tmp_path / "store/cache/layers"
    for bad in ("0", "-3", "viel"):
        monkeypatch.setenv("HUB_LAYER_CACHE_MB", bad)
        with pytest.raises(ValueError, match="HUB_LAYER_CACHE_MB"):
            LayerCache.for_store(tmp_path)


def same_layer(one: Layer, other: Layer) -> None:
    assert one.rows == other.rows
    assert one.properties.equals(other.properties)
    assert one.geometry is not None and other.geometry is not None
    assert one.geometry.equals(other.geometry)
    assert one.boxes is not None and other.boxes is not None
    for x, y in zip(one.boxes, other.boxes, strict=True):
        np.testing.assert_array_equal(x, y)
    area = make_area([13.2, 51.45, 13.45, 51.6], crs.DEFAULT, "bbox")
    np.testing.assert_array_equal(one.select(area, None, ()), other.select(area, None, ()))


@pytest.mark.parametrize("name", ["pflege", "flaechen"])
def test_a_mapped_layer_is_the_version_read_into_memory(ogc_site: Site, tmp_path: Path,
                                                        name: str) -> None:
    version = current(ogc_site, name)
    meta = describe(version)
    in_memory = Layer(version, meta)
    built = Layer(version, meta, tmp_path)  # writes the files, then maps them
    again = Layer(version, meta, tmp_path)  # maps the files written before
    assert (in_memory.mapped, built.mapped, again.mapped) == (False, True, True)
    same_layer(in_memory, built)
    same_layer(in_memory, again)


def test_mapped_files_that_do_not_match_are_written_again(ogc_site: Site,
                                                          tmp_path: Path) -> None:
    version = current(ogc_site, "pflege")
    meta = describe(version)
    reference = Layer(version, meta)
    folder = mapped.folder_of(tmp_path, version)
    Layer(version, meta, tmp_path)
    table = folder / mapped.TABLE
    for damage in ("truncate", "manifest", "checksum"):
        if damage == "truncate":  # a worker killed while writing, a full disk
            table.write_bytes(table.read_bytes()[:1000])
        elif damage == "manifest":
            (folder / mapped.MANIFEST).write_text("{not json")
        else:  # files of other content under this version's name
            text = (folder / mapped.MANIFEST).read_text()
            (folder / mapped.MANIFEST).write_text(text.replace(version.checksum, "0" * 64))
        assert mapped.load(tmp_path, version) is None
        assert not folder.exists()  # removed, so the next reader writes it again
        layer = Layer(version, meta, tmp_path)
        assert layer.mapped
        same_layer(reference, layer)
    # a new version's files replace the dataset's older ones
    other = folder.parent / "v0-0123456789abcdef"
    other.mkdir()
    mapped.save(tmp_path, version, mapped.load(tmp_path, version))  # type: ignore[arg-type]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


@pytest.fixture()
def evicting(ogc_site: Site, tmp_path: Path) -> Iterator[tuple[str, LayerCache]]:
    """The OGC router with a cache that holds one layer at a time."""
    layers = LayerCache(max_bytes=1, folder=tmp_path)
    app = FastAPI()
    app.include_router(ogc_router(ogc_site.project.store, viewer=lambda request: ANONYMOUS,
                                  cache=layers))
    with serving_app(app) as url:
        yield f"{url}/ogc", layers


def test_a_cold_layer_answers_as_a_warm_one(evicting: tuple[str, LayerCache]) -> None:
    url, layers = evicting
    items = f"{url}/collections/pflege/items"
    params = {"bbox": BBOX, "limit": "10", "offset": "5"}
    with httpx.Client(timeout=60) as client:
        first = client.get(items, params=params)  # from the file; the layer is read behind
        assert first.status_code == 200, first.text
        assert first.json()["numberMatched"] > 15
        layers.builds.submit(lambda: None).result(timeout=60)  # that read is done
        warm = client.get(items, params=params)
        assert client.get(f"{url}/collections/gross/items", params={"bbox": BBOX}) \
            .status_code == 200
        layers.builds.submit(lambda: None).result(timeout=60)
        assert layers.held() == [("gross", layers.held()[0][1])]  # pflege was evicted
        cold = client.get(items, params=params)  # mapped again from its files
    assert layers.reads["pflege"] >= 3  # its footer and the version twice
    answers = [r.json() for r in (first, warm, cold)]
    for answer in answers:
        del answer["timeStamp"]  # the moment of the answer
    assert answers[0] == answers[1] == answers[2]


def mapping_workers(server_pid: int, table: str) -> set[int]:
    """The server's worker processes that map `table`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != server_pid:
                continue
            if table in (entry / "maps").read_text():
                found.add(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return found


def workers_of(server_pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{server_pid}/task/{server_pid}/children")
            .read_text().split()}


def test_two_workers_answer_the_same_from_one_mapped_copy(ogc_site: Site,
                                                          tmp_path: Path) -> None:
    root = ogc_site.project.root
    folder = tmp_path / "layers"
    with hub_server(root, HUB_WORKERS="2", HUB_LAYER_CACHE_DIR=str(folder),
                    HUB_ACCESS_LOG="off") as server:
        workers = workers_of(server.pid)
        assert len(workers) == 2
        items = f"{server.url}/ogc/collections/gross/items"
        params = {"bbox": BBOX, "limit": "100"}

        def fetch(_: int) -> str:
            with httpx.Client(timeout=60) as client:  # a connection of its own
                response = client.get(items, params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            del body["timeStamp"]  # the moment of the answer
            return json.dumps(body, sort_keys=True)
        answers: set[str] = set()
        table = ""
        with ThreadPoolExecutor(8) as pool:
            for _ in range(50):  # a bound against a hang only: both workers serve at once
                answers |= set(pool.map(fetch, range(16)))
                table = str(next(folder.glob(f"gross/*/{mapped.TABLE}"), ""))
                if table and mapping_workers(server.pid, table) == workers:
                    break
        assert mapping_workers(server.pid, table) == workers  # both map the one file
        assert len(answers) == 1
        assert len(list(folder.glob("gross/*"))) == 1

        # a worker that dies is replaced; the server keeps answering
        killed = next(iter(workers))
        os.kill(killed, signal.SIGKILL)
        for _ in range(600):  # a bound against a hang only
            now = workers_of(server.pid)
            if len(now) == 2 and killed not in now:
                break
            time.sleep(0.05)
        assert len(now) == 2 and killed not in now
        assert {fetch(i) for i in range(8)} == answers
    assert not any(Path(f"/proc/{pid}").exists() for pid in now)  # stopped with the server
