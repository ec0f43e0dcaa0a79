"""The same data and request mixes on the three deployments of issue 14.

`backends`  The demo district (pages, catalog of about 60 records, the `pflege`, `mobilitaet`,
            `gemeinden`, … layers) plus the OGC case's `punkte` (1,000,000 points) and
            `flaechen` (50,000 polygons), made once under bench/data/backends/, served
            (1) `local`: one `hub serve` on SQLite + the store folder;
            (2) `pg+s3`: one `hub serve` replica on PostgreSQL + S3 (moto's server), asked
                directly;
            (3) `2 replicas`: two such replicas behind haproxy (deploy/haproxy.cfg).
            (2) and (3) are deploy/cluster.py's `Cluster` with 2 replicas and no worker, the
            project ingested into its PostgreSQL + S3 by `hub ingest --all` (as `make cluster`).
            All three run side by side; every server gets the server settings of deploy/hub.env.

Two mixes, each warmed up first (every path asked once on every server, so layers are loaded
and cacheable answers cached), then CLIENTS keep-alive clients (threads of this process) for
SECONDS each, the setups taking turns, `--repeat` rounds:
  ogc   items with a bbox (limit=100; `punkte`, `flaechen`, `pflege`, `mobilitaet`), a feature
        by id, /collections and one collection, vector tiles z9–13 within the tilesets' limits
  ckan  package_search with q, package_search with facets (rows=0), package_show,
        organization_list
Measured: req/s, p50, p99 (ms), CPU time per request (ms) of each server-side process type
(hub replicas, PostgreSQL's postmaster and backends, moto, haproxy; /proc, descendants
included) and of the clients. The goal (issue 14): p50 of (2) within 1.5× of (1).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench._harness import DATA_DIR, Result
from bench._serve import HubServer, demo_project
from bench.workers import concurrent, cpu_seconds, load

CASES = {"backends": "OGC and CKAN mixes on SQLite + folder, PostgreSQL + S3, 2 replicas "
                     "behind haproxy: req/s, p50/p99, CPU per request"}
LARGE: frozenset[str] = frozenset()
WORK = DATA_DIR / "backends"
VERSION = 1  # bump when the seeded project changes
CLIENTS = 8
SECONDS = 10.0
GOAL = 1.5  # p50 of one PostgreSQL + S3 replica against the local one (issue 14)
DISTRICT = (13.05, 51.37, 13.89, 51.88)
WORDS = ("Pflege", "Breitband", "Schule", "Ladesäule", "Haltestelle", "Gemeinde", "Wasser",
         "Radweg", "Kita", "Abfall")
# server settings of the deployment that the local server gets too (not where the state is)
STATE = ("HUB_DATABASE_URL", "HUB_STORAGE_URL", "HUB_ROOT", "HUB_BASE_URL")


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    from deploy.cluster import Cluster, environment_file

    root = project()
    server_env = {k: v for k, v in environment_file().items()
                  if k not in STATE and not k.startswith("AWS_")}
    with HubServer(root, ready="/ready", **server_env) as local, \
            Cluster.started(root, replicas=2, workers=0) as cluster:
        assert cluster.postgres is not None and cluster.s3 is not None
        assert cluster.haproxy is not None and cluster.s3.pid is not None
        first, second = cluster.replicas
        shared = {"postgres": [cluster.postgres.pid], "moto": [cluster.s3.pid]}
        setups: dict[str, Setup] = {
            "local": Setup(local.port, [local.port], {"hub": [local.pid]}),
            "pg+s3": Setup(first.port, [first.port], {"hub": [first.pid], **shared}),
            "2 replicas": Setup(cluster.port, [first.port, second.port],
                                {"hub": [first.pid, second.pid], **shared,
                                 "haproxy": [cluster.haproxy.pid]}),
        }
        mixes = {"ogc": ogc_mix(local.port), "ckan": ckan_mix(local.port)}
        for setup in setups.values():
            for paths_of in mixes.values():
                setup.warm(paths_of)
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            mix: {name: [] for name in setups} for mix in mixes}
        for round_ in range(args.repeat):
            for mix, paths_of in mixes.items():
                for name, setup in setups.items():
                    out = setup.measure(paths_of)
                    runs[mix][name].append(out)
                    print(f"  [backends] round {round_ + 1} {mix} {name}: "
                          f"{out['rps']:.0f} req/s, p50 {out['p50']:.1f} ms, "
                          f"p99 {out['p99']:.1f} ms, server CPU {out['cpu_ms']} ms/req, "
                          f"load {out['load']}", flush=True)
    results = report(runs)
    print(markdown(runs))
    return results


# -- data -----------------------------------------------------------------------------------

def project() -> Path:
    """The demo district plus the OGC case's two layers, ingested into its store (made once)."""
    return demo_project(WORK / f"project-v{VERSION}", extend=_layers)


def _layers(root: Path) -> None:
    from bench.ogc import write_layers

    write_layers(root, {"organization": "kataster-vermessung", "on_error": "reject",
                        "outside_extent": "keep", "access": "public"})


# -- the mixes ------------------------------------------------------------------------------

def get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}: {body[:200]!r}")
    return json.loads(body)


def box(rng: random.Random, size: float) -> str:
    x0, y0, x1, y1 = DISTRICT
    x, y = rng.uniform(x0, x1 - size), rng.uniform(y0, y1 - size * 0.62)
    return f"{x:.5f},{y:.5f},{x + size:.5f},{y + size * 0.62:.5f}"


def ogc_mix(port: int) -> Callable[[int], list[str]]:
    """Client i's OGC paths (seeded): items with a bbox 4, a feature 2, collections 1,
    tiles 4. Feature ids and tile limits are read from the (local) server once."""
    layers = {"punkte": 0.02, "flaechen": 0.05, "pflege": 0.3, "mobilitaet": 0.3}
    features = {name: [f["id"] for f in get_json(
        port, f"/ogc/collections/{name}/items?f=json&limit=50")["features"]]
        for name in layers}
    limits = {name: {int(limit["tileMatrix"]): limit for limit in get_json(
        port, f"/ogc/collections/{name}/tiles/WebMercatorQuad")["tileMatrixSetLimits"]}
        for name in ("punkte", "flaechen", "gemeinden")}

    def paths_of(i: int) -> list[str]:
        rng = random.Random(1400 + i)
        out = []
        for _ in range(60):
            name = rng.choice(list(layers))
            out += [f"/ogc/collections/{name}/items?f=json&limit=100&bbox="
                    f"{box(rng, layers[name])}"] * 4
            ident = quote(str(rng.choice(features[name])), safe="")
            out += [f"/ogc/collections/{name}/items/{ident}?f=json"] * 2
            out.append(rng.choice(("/ogc/collections?f=json",
                                   f"/ogc/collections/{name}?f=json")))
            layer = rng.choice(list(limits))
            for _ in range(4):
                z = rng.randint(9, 13)
                lim = limits[layer][z]
                out.append(f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/"
                           f"{rng.randint(lim['minTileRow'], lim['maxTileRow'])}/"
                           f"{rng.randint(lim['minTileCol'], lim['maxTileCol'])}")
        rng.shuffle(out)
        return out

    return paths_of


def ckan_mix(port: int) -> Callable[[int], list[str]]:
    """Client i's CKAN paths (seeded): package_search with q 3, with facets 2,
    package_show 3, organization_list 1."""
    names = get_json(port, "/api/3/action/package_list")["result"]
    api = "/api/3/action/"

    def paths_of(i: int) -> list[str]:
        rng = random.Random(2400 + i)
        out = []
        for _ in range(30):
            out += [f"{api}package_search?q={quote(rng.choice(WORDS))}&rows=10"
                    for _ in range(3)]
            out += [f"{api}package_search?q={quote(rng.choice(WORDS))}&rows=0"
                    "&facet.field=%5B%22organization%22,%22tags%22,%22res_format%22%5D"
                    for _ in range(2)]
            out += [f"{api}package_show?id={quote(rng.choice(names))}" for _ in range(3)]
            out.append(f"{api}organization_list")
        rng.shuffle(out)
        return out

    return paths_of


# -- measuring ------------------------------------------------------------------------------

class Setup:
    """Where the clients connect (`port`), the servers behind it (`backends`: warmed up one
    by one) and the processes whose CPU time counts, by type."""

    def __init__(self, port: int, backends: list[int], processes: dict[str, list[int]]):
        self.port, self.backends, self.processes = port, backends, processes

    def warm(self, paths_of: Callable[[int], list[str]]) -> None:
        """Every path of the mix once on every server (layers loaded, answers cached)."""
        paths = sorted({p for i in range(CLIENTS) for p in paths_of(i)})
        for port in dict.fromkeys([*self.backends, self.port]):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            for path in paths:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                if response.status not in (200, 204):
                    raise RuntimeError(f"warming up {port}: {path}: HTTP {response.status}: "
                                       f"{body[:200]!r}")
            conn.close()

    def measure(self, paths_of: Callable[[int], list[str]]) -> dict[str, Any]:
        with self.cpu() as cpu:
            clients_before = time.process_time()
            out = concurrent(self.port, CLIENTS, SECONDS, paths_of)
            clients = time.process_time() - clients_before
        per = 1000 / max(out["requests"], 1)
        return {**out, "cpu_ms": round(sum(cpu.values()) * per, 2),
                "cpu_ms_by": {k: round(v * per, 3) for k, v in cpu.items()},
                "client_cpu_ms": round(clients * per, 2), "load": load()}

    @contextmanager
    def cpu(self) -> Iterator[dict[str, float]]:
        """CPU seconds used by each process type while the block ran."""
        used: dict[str, float] = {}
        before = {kind: cpu_seconds(*pids) for kind, pids in self.processes.items()}
        yield used
        used.update({kind: cpu_seconds(*pids) - before[kind]
                     for kind, pids in self.processes.items()})


# -- the report -----------------------------------------------------------------------------

def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def report(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[Result]:
    results = []
    for mix, by_setup in runs.items():
        local_p50 = _median(by_setup["local"], "p50")
        for name, setup_runs in by_setup.items():
            p50, p99 = _median(setup_runs, "p50"), _median(setup_runs, "p99")
            rps, cpu = _median(setup_runs, "rps"), _median(setup_runs, "cpu_ms")
            note = f"load {', '.join(r['load'] for r in setup_runs)}"
            details = {"runs": setup_runs}
            if name == "local":
                results.append(Result("backends", f"{mix} {name}: p50, {CLIENTS} clients",
                                      "ms", p50, hub_runs=[r["p50"] for r in setup_runs],
                                      note=note, details=details))
            else:
                target, ok = ("", None)
                if name == "pg+s3":
                    target, ok = f"≤ {GOAL}× local", p50 <= GOAL * local_p50
                results.append(Result("backends", f"{mix} {name}: p50, {CLIENTS} clients",
                                      "ms", p50, local_p50, p50 / local_p50, f"{name}/local",
                                      target, ok, hub_runs=[r["p50"] for r in setup_runs],
                                      note=note, details=details))
            results += [
                Result("backends", f"{mix} {name}: p99", "ms", p99,
                       hub_runs=[r["p99"] for r in setup_runs]),
                Result("backends", f"{mix} {name}: throughput", "req/s", rps,
                       hub_runs=[r["rps"] for r in setup_runs]),
                Result("backends", f"{mix} {name}: server CPU per request", "ms", cpu,
                       hub_runs=[r["cpu_ms"] for r in setup_runs]),
            ]
    return results


def markdown(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    """A table per mix (medians over the rounds) for bench/RESULTS.md."""
    kinds = ("hub", "postgres", "moto", "haproxy")
    lines = []
    for mix, by_setup in runs.items():
        local_p50 = _median(by_setup["local"], "p50")
        lines += ["", f"{mix} mix, {CLIENTS} clients × {SECONDS:g} s, median of "
                      f"{len(by_setup['local'])} round(s):", "",
                  "| setup | req/s | p50 ms | p99 ms | p50 / local | CPU ms/req: "
                  + " | ".join(kinds) + " | all servers | clients |",
                  "|---|---:|---:|---:|---:|" + "---:|" * (len(kinds) + 2)]
        for name, setup_runs in by_setup.items():
            p50 = _median(setup_runs, "p50")
            by = [statistics.median(r["cpu_ms_by"].get(k, 0.0) for r in setup_runs)
                  for k in kinds]
            lines.append(
                f"| {name} | {_median(setup_runs, 'rps'):.0f} | {p50:.1f} | "
                f"{_median(setup_runs, 'p99'):.1f} | {p50 / local_p50:.2f}× | "
                + " | ".join(f"{v:.2f}" if k in setup_runs[0]["cpu_ms_by"] else "—"
                             for k, v in zip(kinds, by, strict=True))
                + f" | {_median(setup_runs, 'cpu_ms'):.2f} | "
                  f"{_median(setup_runs, 'client_cpu_ms'):.2f} |")
    return "\n".join(lines)

