"""hub.memory: the caches' sizes beside their bounds, the process's memory, the allocator's
settings and the `hub.memory` log line of a running server."""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path

import pytest

from hub import memory


class Held:
    def __init__(self, nbytes: int, max_bytes: int):
        self.nbytes, self.max_bytes, self.other = nbytes, max_bytes, 7


def test_registered_caches_are_reported_by_name_and_dropped_when_gone() -> None:
    a, b, c = Held(10, 100), Held(5, 50), Held(1, 2)
    memory.register("test cache", a)
    memory.register("test cache", b)  # one name: added up
    memory.register("test other", c, nbytes="other")
    found = memory.caches()
    assert found["test cache"] == {"bytes": 15, "max_bytes": 150}
    assert found["test other"] == {"bytes": 7, "max_bytes": 2}
    del a, b, c
    gc.collect()
    assert "test cache" not in memory.caches() and "test other" not in memory.caches()


def test_the_process_memory_comes_from_smaps_rollup() -> None:
    mine = memory.process()
    assert 0 < mine["uss_mib"] <= mine["pss_mib"] <= mine["rss_mib"]
    usage = memory.usage()
    assert usage["pid"] == os.getpid() and "caches" in usage


def test_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_MEMORY_LOG", raising=False)
    monkeypatch.delenv("HUB_MALLOC_ARENAS", raising=False)
    assert memory.log_interval() is None and memory.arenas_from_environment() == memory.ARENAS
    monkeypatch.setenv("HUB_MEMORY_LOG", "2.5")
    monkeypatch.setenv("HUB_MALLOC_ARENAS", "4")
    assert memory.log_interval() == 2.5 and memory.arenas_from_environment() == 4
    for variable, bad in (("HUB_MEMORY_LOG", "0"), ("HUB_MEMORY_LOG", "oft"),
                          ("HUB_MALLOC_ARENAS", "0"), ("HUB_MALLOC_ARENAS", "2.5"),
                          ("HUB_PAGE_CACHE_MB", "-1")):
        monkeypatch.setenv(variable, bad)
        with pytest.raises(memory.MemorySettingError, match=f"{variable}='{bad}'"):
            memory.log_interval()
            memory.arenas_from_environment()
            from hub.web.portal.cache import max_bytes_from_environment
            max_bytes_from_environment()
        monkeypatch.delenv(variable)
    memory.trim()  # glibc here: gives free pages back, raises nothing
    memory.tune_allocator()


def test_a_server_logs_its_memory_and_its_caches(demo_district: Path, tmp_path: Path) -> None:
    """`hub serve` with HUB_MEMORY_LOG: a `hub.memory` line names the portal's kept pages and
    the OGC caches, each within its bound, after requests filled them."""
    import httpx
    from conftest import demo_copy, hub_server

    root = demo_copy(demo_district, tmp_path / "demo")
    with hub_server(root, HUB_MEMORY_LOG="0.2", HUB_PAGE_CACHE_MB="1") as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get("/").status_code == 200
            assert client.get("/ogc/collections/pflege/items?limit=5&bbox=13,51,14,52"
                              ).status_code == 200
        line = {}
        for _ in range(100):  # a bound against a hang only
            lines = [x for x in server.output().splitlines() if x.startswith("hub.memory ")]
            if lines:
                line = json.loads(lines[-1].removeprefix("hub.memory "))
                if all(line["caches"].get(name, {}).get("bytes") for name in
                       ("portal pages", "ogc layers (mapped, shared)")):
                    break
            time.sleep(0.1)
    caches = line["caches"]
    assert caches["portal pages"]["max_bytes"] == 1 << 20
    assert 0 < caches["portal pages"]["bytes"] <= 1 << 20
    assert 0 < caches["ogc layers (mapped, shared)"]["bytes"] <= \
        caches["ogc layers (mapped, shared)"]["max_bytes"]
    assert caches["ogc selections"]["bytes"] <= caches["ogc selections"]["max_bytes"]
    for name in ("ogc tiles", "ogc pre-rendered tiles (mapped, shared)"):
        assert caches[name]["bytes"] <= caches[name]["max_bytes"]
    assert line["pid"] > 0 and 0 < line["uss_mib"] <= line["rss_mib"]
