"""Expensive OGC requests against a real server: off the event loop, bounded, within a budget.

Each test runs its own `hub serve` on the OGC test project with the budget settings it needs.
The heavy filter is the worst case within the documented limits: 256 case-insensitive `LIKE`
conditions, evaluated over the 100,000 features of `gross` (seconds of work each)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import shapely
from conftest import Server, hub_server
from ogc_site import BIG_ROWS, Site

Start = Callable[..., Server]


def heavy_filter(seed: int) -> str:
    """256 conditions, all scanning text; only the last one matches (group A)."""
    misses = [f"CASEI(gruppe) LIKE '%{seed}x{j}%'" for j in range(255)]
    return " OR ".join([*misses, "CASEI(gruppe) LIKE 'a'"])


@pytest.fixture(scope="module")
def serve(ogc_site: Site) -> Iterator[Start]:
    """Start `hub serve` on the OGC test project with extra environment settings."""
    project = ogc_site.project
    with contextlib.ExitStack() as stack:
        yield lambda **env: stack.enter_context(
            hub_server(project.root, project.store_dir, **env))


def items(base: str, **params: str | int) -> httpx.Response:
    return httpx.get(f"{base}/ogc/collections/gross/items", params=params, timeout=300)


def test_light_requests_answer_while_worst_case_filters_run(serve: Start, ogc_site: Site) -> None:
    server = serve(HUB_OGC_FILTER_BUDGET=str(10 ** 13), HUB_OGC_WORK_SECONDS="600",
                   HUB_OGC_QUEUE_SECONDS="600", HUB_OGC_WORKERS="2")
    items(server.url, limit=1)  # the version is in memory: what follows is evaluation only
    near, far = (point_tile(ogc_site, "gross", i, zoom=17) for i in (0, 1))
    assert httpx.get(server.url + near, timeout=300).status_code == 200  # the tile source built
    with ThreadPoolExecutor(6) as clients:  # three rounds for the two workers
        heavy = [clients.submit(items, server.url, filter=heavy_filter(i), limit=1)
                 for i in range(6)]
        time.sleep(0.3)  # every heavy request has arrived
        # a new tile of a few points is rendered on the event loop, not queued for the pool
        for path in ("/ogc/conformance", "/ogc/collections/pflege", "/api/3/action/status_show",
                     far):
            light = httpx.get(server.url + path, timeout=300)
            # answered before any heavy request ended: it did not wait for a worker
            assert not any(f.done() for f in heavy), path
            # 503 from status_show: the OGC test project has no catalog
            assert light.status_code in ((200, 503) if "status" in path else (200,)), path
        assert not all(f.done() for f in heavy)  # they were still running meanwhile
        answers = [f.result() for f in heavy]
    group_a = sum(1 for r in ogc_site.project.rows("gross") if r["gruppe"] == "A")
    assert group_a == BIG_ROWS // 4
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["numberMatched"] == group_a


def point_tile(site: Site, name: str, row: int, zoom: int) -> str:
    """The URL of the tile at `zoom` that holds the point of `row`."""
    lon, lat = shapely.get_coordinates(site.project.geometries(name)[row])[0]
    n = 2 ** zoom
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/ogc/collections/{name}/tiles/WebMercatorQuad/{zoom}/{y}/{x}"


def test_a_filter_over_the_budget_is_refused_before_it_runs(serve: Start, ogc_site: Site) -> None:
    server = serve(HUB_OGC_FILTER_BUDGET="2000000")
    refused = items(server.url, filter=heavy_filter(0))
    assert refused.status_code == 400
    body = refused.json()
    assert body["parameter"] == "filter"
    assert "HUB_OGC_FILTER_BUDGET" in body["description"] and "2,000,000" in body["description"]
    # the same filter on a small collection, and a cheap one on the large, are within it
    small = httpx.get(f"{server.url}/ogc/collections/pflege/items",
                      params={"filter": heavy_filter(0).replace("gruppe", "art"), "limit": 1})
    assert small.status_code == 200 and small.json()["numberMatched"] == 0
    cheap = items(server.url, filter="gruppe = 'B'", limit=1)
    assert cheap.status_code == 200 and cheap.json()["numberMatched"] == sum(
        1 for r in ogc_site.project.rows("gross") if r["gruppe"] == "B")


def test_time_limit_and_a_full_pool_answer_503_with_retry_after(serve: Start) -> None:
    server = serve(HUB_OGC_FILTER_BUDGET=str(10 ** 13), HUB_OGC_WORKERS="1",
                   HUB_OGC_QUEUE_SECONDS="0.2", HUB_OGC_WORK_SECONDS="0.3")
    items(server.url, limit=1)
    with ThreadPoolExecutor(3) as clients:
        answers = list(clients.map(lambda i: items(server.url, filter=heavy_filter(i)),
                                   range(3)))
    assert [a.status_code for a in answers] == [503] * 3
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers)
    texts = [a.json()["description"] for a in answers]
    assert any("HUB_OGC_WORK_SECONDS" in t for t in texts)  # stopped between two conditions
    assert any("HUB_OGC_WORKERS" in t for t in texts)  # waited 0.2 s for the one worker
    timed_out = next(a.json() for a in answers if "WORK_SECONDS" in a.json()["description"])
    assert timed_out["parameter"] == "filter"
    after = items(server.url, filter="gruppe = 'C'", limit=1)  # the pool is free again
    assert after.status_code == 200 and after.json()["numberMatched"] == BIG_ROWS // 4


def test_budget_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.api.ogc.work import Budget

    for name in ("HUB_OGC_WORKERS", "HUB_OGC_QUEUE_SECONDS", "HUB_OGC_FILTER_BUDGET",
                 "HUB_OGC_WORK_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert Budget.from_env() == Budget()
    monkeypatch.setenv("HUB_OGC_WORKERS", "4")
    monkeypatch.setenv("HUB_OGC_QUEUE_SECONDS", "0.5")
    assert (Budget.from_env().workers, Budget.from_env().queue_seconds) == (4, 0.5)
    for name, bad, words in (("HUB_OGC_WORKERS", "zwei", "not a number"),
                             ("HUB_OGC_WORK_SECONDS", "0", "greater than 0"),
                             ("HUB_OGC_FILTER_BUDGET", "1.5", "not a number")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValueError, match=f"{name}.*{words}"):
            Budget.from_env()
        monkeypatch.delenv(name)


def test_requests_waiting_for_work_under_way_hold_no_worker() -> None:
    """Requests for work another request is doing (a tile being rendered, a version being
    read) wait for it on the event loop: with two workers, one rendering a slow tile and three
    requests waiting for that tile, other expensive work still gets the second worker; the
    tile is rendered once, and a waiter beyond the queue budget gets 503 with Retry-After."""
    import asyncio
    import threading

    from starlette.requests import Request

    from hub.api.ogc import work

    pool = work.Pool(work.Budget(workers=2, queue_seconds=5.0))
    flight = work.SingleFlight()
    tiles: dict[str, bytes] = {}
    release = threading.Event()
    renders: list[str] = []

    def render() -> bytes:
        renders.append("tile")
        assert release.wait(30)  # hang guard only
        return b"tile"

    def tile(request: Request) -> bytes:  # as the tile route: cached, under way, or render
        if "t" in tiles:
            return tiles["t"]
        work.wait_for(request, flight.pending("t"))
        return work.then(request, work.UNBOUNDED, lambda: flight.run(
            "t", lambda: tiles.get("t"), lambda: tiles.setdefault("t", render())))

    def other(request: Request) -> str:
        work.needs(request, work.UNBOUNDED)
        return "other"

    def request() -> Request:
        return Request({"type": "http", "method": "GET", "path": "/", "headers": []})

    async def scenario() -> None:
        r0 = request()
        first = asyncio.create_task(pool.answer(r0, lambda: tile(r0)))
        while flight.pending("t") is None:  # the first request renders in a worker
            await asyncio.sleep(0.01)
        waiting = [asyncio.create_task(pool.answer(r, lambda r=r: tile(r)))
                   for r in (request(), request(), request())]
        await asyncio.sleep(0.1)
        r = request()
        assert await asyncio.wait_for(pool.answer(r, lambda: other(r)), 30) == "other"
        assert not first.done()  # the other work ran while the tile was still rendering
        release.set()
        assert await first == b"tile" and await asyncio.gather(*waiting) == [b"tile"] * 3

        release.clear()
        tiles.clear()
        short = work.Pool(work.Budget(workers=2, queue_seconds=0.2))
        r1 = request()
        busy = asyncio.create_task(short.answer(r1, lambda: tile(r1)))
        while flight.pending("t") is None:
            await asyncio.sleep(0.01)
        r = request()
        with pytest.raises(work.Busy) as refused:
            await short.answer(r, lambda: tile(r))
        assert refused.value.retry_after >= 1
        release.set()
        assert await busy == b"tile"

    asyncio.run(scenario())
    assert renders == ["tile", "tile"]


def test_a_handlers_last_expensive_step_alone_runs_in_the_pool() -> None:
    """`work.then`: the steps before an expensive last step run once, on the event loop; the
    step itself in a worker thread with a deadline; a cheap one right away, on the loop."""
    import asyncio
    import threading

    from starlette.requests import Request

    from hub.api.ogc import work

    pool = work.Pool(work.Budget(workers=1))
    before: list[str] = []

    def handler(request: Request, cost: float) -> tuple[str, bool]:
        before.append(threading.current_thread().name)
        return work.then(request, cost, lambda: (threading.current_thread().name,
                                                 work.deadline(request) is not None))

    def request() -> Request:
        return Request({"type": "http", "method": "GET", "path": "/", "headers": []})

    async def scenario() -> None:
        loop = threading.current_thread().name
        r = request()
        thread, timed = await pool.answer(r, lambda: handler(r, work.UNBOUNDED))
        assert before == [loop] and thread.startswith("ogc-work") and timed
        r = request()
        assert await pool.answer(r, lambda: handler(r, 10)) == (loop, False)
        assert before == [loop, loop]

    asyncio.run(scenario())
