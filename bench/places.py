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
import csv
import http.client
import json
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import DATA_DIR, ROOT, Result, judge
from bench._serve import HubServer

CASES = {"places-answers": "answers per place/point/search at 8 clients: p50/p95 (server) vs "
                           "naive per-request computation"}
LARGE: frozenset[str] = frozenset()
WORK = DATA_DIR / "places"
VERSION = 1  # bump when the seeded project changes
CLIENTS = 8
REQUESTS = 250  # per client and run
HUB = [sys.executable, "-c", "import sys; from hub.cli import app; sys.exit(app())"]


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
    """The demo district's boundaries, care and mobility data and a broadband aggregate per
    municipality, ingested and loaded into the catalog (made once)."""
    root = WORK / f"demo-v{VERSION}"
    if (root / "READY").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for part in ("pipelines", "schemas", "catalog"):
        shutil.copytree(ROOT / part, root / part,  # code stays in the repository
                        ignore=shutil.ignore_patterns("generated", "__pycache__", "*.py"))
    where = ["--root", str(root), "--store", str(root / "store")]
    _run([sys.executable, str(ROOT / "pipelines" / "generate_demo_data.py"), "--out",
          str(root / "pipelines" / "data" / "generated")])
    _run([*HUB, "ingest", "gemeinden", "pflege", "mobilitaet", *where])
    _broadband(root)
    _run([*HUB, "ingest", "breitband-gemeinden", *where])
    _run([*HUB, "catalog", "load", *where])
    (root / "READY").write_text("ok")
    return root


def _broadband(root: Path) -> None:
    """A per-municipality aggregate in the agreed schema (seeded figures, real polygons)."""
    import pyarrow.parquet as pq
    import shapely

    from hub.store.versions import Store

    version = Store(root / "store").current("gemeinden")
    table = pq.read_table(version.data_file)
    rng = random.Random(20261202)
    path = root / "pipelines" / "data" / "generated" / "breitband_gemeinden.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["ags", "gemeinde", "haushalte", "haushalte_1000", "haushalte_100",
                      "anteil_1000", "anteil_100", "haushalte_im_bau", "haushalte_geplant",
                      "fertigstellung_bis", "stand", "wkt"])
        for ags, name, wkb in zip(table.column("ags").to_pylist(),
                                  table.column("name").to_pylist(),
                                  table.column("geometry").to_pylist(), strict=True):
            households = rng.randint(500, 9000)
            g1000, g100 = rng.randint(0, households), rng.randint(0, households)
            out.writerow([ags, name, households, g1000, max(g100, g1000),
                          round(100 * g1000 / households, 1),
                          round(100 * max(g100, g1000) / households, 1), rng.randint(0, 300),
                          rng.randint(0, 500), f"2028-{rng.randint(1, 12):02d}-01",
                          "2026-11-01", shapely.from_wkb(wkb).wkt])
    fields = [{"name": "ags", "type": "string"}, {"name": "gemeinde", "type": "string"},
              *({"name": n, "type": "integer"} for n in (
                  "haushalte", "haushalte_1000", "haushalte_100", "haushalte_im_bau",
                  "haushalte_geplant")),
              {"name": "anteil_1000", "type": "number"}, {"name": "anteil_100", "type": "number"},
              {"name": "fertigstellung_bis", "type": "date"}, {"name": "stand", "type": "date"},
              {"name": "geometry", "type": "geojson"}]
    (root / "schemas" / "breitband_gemeinden.json").write_text(json.dumps({"fields": fields}))
    (root / "pipelines" / "breitband-gemeinden.yaml").write_text(json.dumps({
        "title": "Breitbandversorgung je Gemeinde", "organization": "breitbandkoordination",
        "access": "public", "schema": "breitband_gemeinden", "on_error": "reject",
        "source": {"path": "data/generated/breitband_gemeinden.csv", "crs": "EPSG:4326",
                   "geometry": {"wkt": "wkt"}}}, ensure_ascii=False), encoding="utf-8")


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"{cmd[-6:]} failed: {(done.stderr or done.stdout)[-2000:]}")


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
