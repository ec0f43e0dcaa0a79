"""Places: the answers per place of the demo district over HTTP, at 8 concurrent clients.

`places-answers`  one `hub serve` on the demo district (boundaries, care, mobility, and a
                  per-municipality broadband aggregate made here from the boundaries as the
                  derived pipeline will make it), warmed once; 8 client threads with keep-alive
                  connections ask a mix of place answers (`/api/orte/{slug}`, 70 %), point
                  answers at seeded points (15 %, half of them new), and searches (15 %);
                  latency measured at the client (an upper bound of server time on 127.0.0.1);
                  the same with one client. The baseline (against one client) is a naive answer
                  in-process: read the versions' files and compute the nearest items per
                  request, as a hub without the version cache would.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import DATA_DIR, Result, judge
from bench._serve import HubServer, demo_project

CASES = {"places-answers": "answers per place/point/search at 8 clients: p50/p95 (server) vs "
                           "naive per-request computation"}
LARGE: frozenset[str] = frozenset()
WORK = DATA_DIR / "places"
VERSION = 2  # bump when the seeded project changes
CLIENTS = 8
REQUESTS = 250  # per client and run


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    root = _project()
    slugs, hub_runs, single_runs, sizes = [], [], [], []
    with HubServer(root) as server:
        slugs = [p["slug"] for p in _get_json(server.port, "/api/orte")]
        for slug in slugs:  # warm: the versions are read once, as on a server up a while
            _get_json(server.port, f"/api/orte/{slug}")
        sizes = [len(json.dumps(_get_json(server.port, f"/api/orte/{s}")).encode())
                 for s in slugs]
        for n in range(args.repeat):
            hub_runs.append(_load(server.port, slugs, seed=n))
            single_runs.append(_load(server.port, slugs, seed=n, clients=1))
    baseline = _naive(root, len(slugs))
    p50 = statistics.median(r[0] for r in hub_runs)
    p95 = statistics.median(r[1] for r in hub_runs)
    s50 = statistics.median(r[0] for r in single_runs)
    b50 = statistics.median(baseline)
    target, ok = judge(("p50 ≤ 20 ms at 8 clients", p50 <= 20))
    note = (f"{REQUESTS} requests per client and run, {args.repeat} runs; "
            f"{len(slugs)} places; answer {statistics.median(sizes) / 1024:.1f} KiB "
            "(uncompressed JSON)")
    return [Result("places-answers", f"p50 per request, {CLIENTS} clients", "ms", p50, None,
                   None, "", target, ok, [r[0] for r in hub_runs], note=note),
            Result("places-answers", f"p95 per request, {CLIENTS} clients", "ms", p95, None,
                   None, "", "", None, [r[1] for r in hub_runs], note=note),
            Result("places-answers", "p50 per request, 1 client", "ms", s50, b50, b50 / s50,
                   "baseline/hub", "", None, [r[0] for r in single_runs], baseline,
                   note="baseline: the naive answer per place, in-process (no HTTP)")]


# -- the seeded project ---------------------------------------------------------------------

def _project() -> Path:
    """The demo district as `make demo` leaves it, its broadband aggregate per municipality
    derived from the generated grid by its own pipeline (made once)."""
    return demo_project(WORK / f"demo-v{VERSION}")


# -- measuring ------------------------------------------------------------------------------

def _get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}: {body[:200]!r}")
    return json.loads(body)


def _paths(slugs: list[str], rng: random.Random) -> list[str]:
    paths = []
    for _ in range(REQUESTS):
        draw = rng.random()
        if draw < 0.70:
            paths.append(f"/api/orte/{rng.choice(slugs)}")
        elif draw < 0.85:  # half of the points repeat (a picker's places), half are new
            grid = 20 if rng.random() < 0.5 else 100_000
            lon = 13.25 + 0.5 * rng.randrange(grid) / grid
            lat = 51.45 + 0.35 * rng.randrange(grid) / grid
            paths.append(f"/api/orte/punkt?lon={lon:.5f}&lat={lat:.5f}")
        else:
            paths.append(f"/api/orte/suche?q={rng.choice(slugs)[:rng.randint(2, 6)]}")
    return paths


def _load(port: int, slugs: list[str], seed: int, clients: int = CLIENTS
          ) -> tuple[float, float]:
    """p50 and p95 (ms) of `clients` threads asking `REQUESTS` each."""
    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for path in _paths(slugs, random.Random(seed * 100 + n)):
            start = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - start) * 1000)
            if response.status not in (200, 404):
                failures.append(f"{path}: {response.status}")
        conn.close()
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[:3]}")
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def _naive(root: Path, places: int) -> list[float]:
    """Per place: read the versions' files and find the nearest care service of each type and
    the nearest stations of each kind by the haversine formula (ms per answer)."""
    import numpy as np
    import pyarrow.parquet as pq
    import shapely

    from hub.store.versions import Store

    store = Store(root / "store")

    def read(name: str) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
        table = pq.read_table(store.current(name).data_file)
        shapes = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
        points = shapely.point_on_surface(shapes)
        return (table.drop_columns(["geometry", "bbox"]).to_pylist(), shapely.get_x(points),
                shapely.get_y(points))

    def metres(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        p1, p2 = np.radians(lat), np.radians(lats)
        a = (np.sin((p2 - p1) / 2) ** 2
             + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lons - lon) / 2) ** 2)
        return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))

    times = []
    for i in range(places):
        start = time.perf_counter()
        municipalities, mx, my = read("gemeinden")
        for name, column in (("pflege", "art"), ("mobilitaet", "typ")):
            rows, xs, ys = read(name)
            d = metres(float(mx[i]), float(my[i]), xs, ys)
            nearest: dict[str, int] = {}
            for j, row in enumerate(rows):
                if row[column] not in nearest or d[j] < d[nearest[row[column]]]:
                    nearest[row[column]] = j
        broadband, _, _ = read("breitband-gemeinden")
        next((r for r in broadband if r["ags"] == municipalities[i]["ags"]), None)
        times.append((time.perf_counter() - start) * 1000)
    return times
