"""`hub serve --workers N`: memory per replica with 20 layers of 1M points, and the OGC items
mix at 8 clients with 1 and 2 workers.

Data (made once under bench/data/workers/): 20 datasets `punkte01` … `punkte20`, each the
ingest case's 1,000,000-point CSV ingested by the hub (so 20 versions of 1M rows). Layers are
memory-mapped files in the store's layer cache (`hub.api.ogc.mapped`), written by the first
run and shared by the workers through the page cache.

Measured per worker count (1, then 2), on one `hub serve` with HUB_LAYER_CACHE_MB large enough
for all 20 layers:
  memory after every layer answered bbox requests from 8 clients: RSS, PSS and USS summed
  over the server's processes (supervisor and workers, /proc/PID/smaps_rollup); PSS splits a
  page shared by k processes k ways, USS counts only the pages a process holds alone
  items?bbox=…&limit=100 over the 20 layers, 8 keep-alive clients for 10 s: req/s, p50, p99
  a cold bbox request: the first request of a layer after it was evicted (files kept; the
  process verified the version's checksum before), and the very first one (checksum verified,
  files written), p50 over the layers
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import DATA_DIR, Result
from bench._serve import HubServer, add_catalog

CASES = {"workers": "hub serve --workers 1 vs 2: memory with 20 × 1M points, items req/s p50/p99",
         "cold": "first bbox request of a new 1M-point version, answered from GeoParquet (no "
                 "layer files, HUB_LAYER_CACHE_MB=1), before/after; row-group pruning on "
                 "ingest-ordered vs spatially ordered rows"}
LARGE: frozenset[str] = frozenset()
WORK = DATA_DIR / "workers"
DATASETS = [f"punkte{i:02d}" for i in range(1, 21)]
CLIENTS = 8
SECONDS = 10.0
VERSION = 1  # bump when the generated data changes


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    root = project()
    results: list[Result] = []
    if "cold" in cases:
        from bench._cold import cold_layers

        results += cold_layers(root)
    if "workers" not in cases:
        return results
    figures: dict[int, dict[str, Any]] = {}
    for workers in (1, 2):
        figures[workers] = measure(root, workers)
    one, two = figures[1], figures[2]
    note = (f"load (uptime) {one['load']} / {two['load']}; 2 cores shared with the clients; "
            "layers mapped from the layer cache")
    for key, metric, unit in (("rss_mib", "server RSS, 20 layers of 1M points", "MiB"),
                              ("pss_mib", "server PSS, 20 layers of 1M points", "MiB"),
                              ("uss_mib", "server USS, 20 layers of 1M points", "MiB")):
        results.append(Result("workers", f"{metric} (1 worker → 2)", unit, two[key], one[key],
                              two[key] / one[key], "2 workers/1 worker", note=note,
                              details={"1": one, "2": two}))
    results.append(Result("workers", f"items bbox limit=100, {CLIENTS} clients (1 → 2 workers)",
                          "req/s", two["rps"], one["rps"], two["rps"] / one["rps"],
                          "2 workers/1 worker", note=note))
    results.append(Result("workers", "server CPU per request (1 → 2 workers)", "ms",
                          two["cpu_ms_per_request"], one["cpu_ms_per_request"],
                          two["cpu_ms_per_request"] / one["cpu_ms_per_request"],
                          "2 workers/1 worker", note=note))
    for key in ("p50", "p99"):
        results.append(Result("workers", f"items bbox limit=100 {key}, {CLIENTS} clients "
                              "(1 → 2 workers)", "ms", two[key], one[key],
                              two[key] / one[key], "2 workers/1 worker", note=note))
    results.append(Result("workers", "cold bbox request after eviction p50 (files kept)", "ms",
                          one["cold_mapped_p50"], note="1 worker, HUB_LAYER_CACHE_MB=1"))
    if one.get("first_p50") is not None:
        results.append(Result("workers", "first bbox request of a layer (files written) p50",
                              "ms", one["first_p50"], note="1 worker, the run that made them"))
    return results


# -- data ---------------------------------------------------------------------------------------

def project() -> Path:
    """A hub project with the 20 datasets ingested (made once)."""
    from bench._csvgen import CATEGORIES, ensure_csv
    from bench.ingest import SCHEMA

    root = WORK / f"project-v{VERSION}"
    if (root / "READY").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    csv, _ = ensure_csv(1_000_000)
    (root / "schemas").mkdir(parents=True)
    (root / "pipelines").mkdir()
    schema = json.loads(json.dumps(SCHEMA))
    schema["fields"][3]["constraints"]["enum"] = list(CATEGORIES)
    (root / "schemas" / "punkte.json").write_text(json.dumps(schema), encoding="utf-8")
    for name in DATASETS:
        (root / "pipelines" / f"{name}.yaml").write_text(json.dumps({
            "title": name, "schema": "punkte", "organization": "Benchmark",
            "on_error": "reject", "outside_extent": "keep", "access": "public",
            "source": {"path": str(csv.resolve()), "crs": "EPSG:25833",
                       "geometry": {"lon": "rechtswert", "lat": "hochwert"}}}),
            encoding="utf-8")
    add_catalog(root)
    for name in DATASETS:
        failed = ingest(root, name)
        if failed:
            raise RuntimeError(f"ingest of {name} failed: {failed}")
    (root / "READY").write_text("ok")
    return root


def ingest(root: Path, name: str) -> str:
    from hub.config import load_settings
    from hub.ingest.pipeline import load_pipeline
    from hub.ingest.run import ingest as run_ingest
    from hub.store import Store

    settings = load_settings(root, root / "store")
    pipeline = load_pipeline(root / "pipelines" / f"{name}.yaml", settings.schemas_dir)
    report = run_ingest(pipeline, Store(settings.store), settings, who="bench", force=True)
    return "" if report.status == "committed" else str(report.error)


# -- measuring ----------------------------------------------------------------------------------

def measure(root: Path, workers: int) -> dict[str, Any]:
    """Memory and the items mix on `hub serve --workers N` over the 20 layers."""
    first: list[float] = []
    fresh = not (root / "store" / "cache" / "layers").exists()
    with HubServer(root, ready="/ogc/", HUB_WORKERS=str(workers), HUB_LAYER_CACHE_MB="16384",
                   HUB_ACCESS_LOG="off") as server:
        for name in DATASETS:  # every layer read once; the first run writes the files
            first += timed(server.port, [items(name, box) for box in boxes(1, 0)])
        concurrent(server.port, CLIENTS, SECONDS / 2)  # every worker verifies and maps each
        clients = concurrent(server.port, CLIENTS, SECONDS, servers=(server.pid,))
        memory = memory_of(server.pid)
    out = {"workers": workers, **clients, **memory, "load": load()}
    if fresh:
        out["first_p50"] = statistics.median(first)
    if workers == 1:
        with HubServer(root, ready="/ogc/", HUB_LAYER_CACHE_MB="1",
                       HUB_ACCESS_LOG="off") as server:
            for name in DATASETS:  # verified (once per process) and mapped
                timed(server.port, [items(name, box) for box in boxes(1, 0)])
            cold = []
            for name in DATASETS:  # each evicts the one before: every request is cold
                cold += timed(server.port, [items(name, box) for box in boxes(1, 1)])
        out["cold_mapped_p50"] = statistics.median(cold)
    return out


def items(name: str, box: str) -> str:
    return f"/ogc/collections/{name}/items?f=json&limit=100&bbox={box}"


def boxes(n: int, seed: int) -> list[str]:
    """Random ~1.4 × 1.4 km boxes over the district (bench/ogc.py's)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x, y = rng.uniform(13.1, 13.85), rng.uniform(51.4, 51.86)
        out.append(f"{x:.5f},{y:.5f},{x + 0.02:.5f},{y + 0.013:.5f}")
    return out


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def timed(port: int, paths: list[str]) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    out = []
    for path in paths:
        start = time.perf_counter()
        status, body = get(conn, path)
        out.append((time.perf_counter() - start) * 1000)
        if status not in (200, 204):  # 204: an empty tile
            raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
    conn.close()
    return out


def concurrent(port: int, clients: int, seconds: float, paths_of: Any = None,
               servers: tuple[int, ...] = ()) -> dict[str, float]:
    """`clients` keep-alive clients for `seconds`: req/s, p50 and p99 in ms, and the CPU time
    per request (ms) of the `servers` processes and their descendants. `paths_of(i)` gives
    client i's paths (default: bbox items over the 20 layers)."""
    cpu_before = cpu_seconds(*servers)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        paths = paths_of(i) if paths_of else [
            items(DATASETS[k % len(DATASETS)], box)
            for k, box in enumerate(boxes(200, 100 + i))]
        k = 0
        while time.monotonic() < stop:
            start = time.perf_counter()
            status, _ = get(conn, paths[k % len(paths)])
            latencies[i].append((time.perf_counter() - start) * 1000)
            if status not in (200, 204):
                errors.append(f"{paths[k % len(paths)]}: {status}")
                return
            k += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"concurrent requests failed: {errors[:3]}")
    every = sorted(x for part in latencies for x in part)
    cpu = cpu_seconds(*servers) - cpu_before
    return {"rps": len(every) / (time.monotonic() - started), "requests": len(every),
            "p50": every[len(every) // 2], "p99": every[int(len(every) * 0.99)],
            "cpu_ms_per_request": cpu * 1000 / max(len(every), 1)}


def cpu_seconds(*pids: int) -> float:
    """User and system CPU time of the processes and their descendants (alive now)."""
    total = 0
    for top in pids:
        for p in processes(top):
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def processes(pid: int) -> list[int]:
    """`pid` and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):  # exited meanwhile
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def memory_of(*pids: int) -> dict[str, float]:
    """RSS, PSS and USS in MiB summed over the processes (and their descendants)."""
    total = {"rss_mib": 0.0, "pss_mib": 0.0, "uss_mib": 0.0, "processes": 0.0}
    for top in pids:
        for p in processes(top):
            fields = {}
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()[1:]:
                name, value = line.split(":", 1)
                fields[name] = int(value.split()[0]) / 1024
            total["rss_mib"] += fields["Rss"]
            total["pss_mib"] += fields["Pss"]
            total["uss_mib"] += fields["Private_Clean"] + fields["Private_Dirty"]
            total["processes"] += 1
    return {k: round(v, 1) for k, v in total.items()}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
