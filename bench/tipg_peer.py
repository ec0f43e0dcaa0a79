"""The hub beside tipg (the strongest Python OGC API peer) on PostGIS, both on all cores.

Data: the workers case's layer `punkte01` (the ingest case's 1,000,000 points, see
bench/workers.py), served by the hub from its store, and the same rows copied into a PostGIS
table with a GiST index on the geometry (COPY of the version's GeoParquet file).
Servers: `hub serve --workers 2`; tipg (PyPI, the bench extra) under
`uvicorn tipg.main:app --workers 2` on PostgreSQL 15 + PostGIS 3 (Debian, from
requirements/debian-bench.txt), started as an unprivileged user in a temporary folder by the
deployment's starter (deploy/postgres.py).

Measured with both running, keep-alive HTTP/1.1 from this process:
  z14 tiles over the district, each requested once (uncached on both)  p50, 1 client; the
    of each server in turn, tile by tile (the order alternating), so   servers' CPU per tile
    that the machine's drift (other machines on the same host) falls
    on both alike
  items?bbox=…&limit=100 (random ~1.4 km boxes), 8 clients for 10 s,   req/s, p50, p99
    hub first, then tipg
  memory after both: the hub's processes vs tipg's plus PostgreSQL's (RSS, PSS); the hub's PSS
  also without its mapped layer cache files (the layer and its tile index in the page cache,
  the counterpart of PostgreSQL's table files, which it reads into the page cache without
  mapping them, so they are not in its PSS)
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench._harness import ROOT, Result
from bench._serve import HubServer, free_port, wait
from bench.workers import (
    CLIENTS,
    SECONDS,
    boxes,
    concurrent,
    cpu_seconds,
    get,
    load,
    memory_of,
    project,
)

CASES = {"tipg": "hub --workers 2 vs tipg on PostGIS (2 workers): items at 8 clients, "
                 "uncached z14 tiles, memory"}
LARGE: frozenset[str] = frozenset()
LAYER = "punkte01"
TILES = 80


@dataclass
class Side:
    """One server as the measurements see it."""

    port: int
    collection: str  # the layer's path
    tile_path: Callable[[int, int, int], str]  # z, x, y → the tile's path under its tileset
    servers: tuple[int, ...]  # the processes whose CPU time counts (with their children)


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    import tipg  # the bench extra: `make bench` installs it

    root = project()
    with HubServer(root, ready="/ogc/", HUB_WORKERS="2", HUB_ACCESS_LOG="off") as server, \
            postgis(root) as (pg, url), tipg_server(url) as (port, process):
        sides = [Side(server.port, f"/ogc/collections/{LAYER}", lambda z, x, y: f"{z}/{y}/{x}",
                      (server.pid,)),
                 Side(port, "/collections/public.punkte", lambda z, x, y: f"{z}/{x}/{y}",
                      (process.pid, postmaster(pg)))]
        features = [features_per_page(side) for side in sides]
        tiles = paired_tiles(sides, z14_tiles(server.port, TILES))
        hub, peer = ({"features": found, **paired, **items_mix(side)}
                     for side, found, paired in zip(sides, features, tiles, strict=True))
        hub |= memory_of(server.pid)
        hub["mapped_cache_pss_mib"] = mapped_pss(server.pid, root / "store" / "cache")
        peer |= memory_of(process.pid, postmaster(pg))
    note = (f"load (uptime) {load()}; hub: hub serve --workers 2; tipg {tipg.__version__}: "
            "uvicorn --workers 2 "
            "+ PostgreSQL 15/PostGIS 3 (GiST index); 2 cores shared with the clients")
    if hub["features"] != peer["features"]:
        note = f"ANSWERS DIFFER: features per page hub {hub['features']}, tipg " \
               f"{peer['features']}; " + note
    details = {"hub": hub, "tipg": peer}
    rps_ratio = hub["rps"] / peer["rps"]
    tile_ratio = peer["tile_p50"] / hub["tile_p50"]
    return [
        Result("tipg", f"items bbox limit=100, {CLIENTS} clients", "req/s", hub["rps"],
               peer["rps"], rps_ratio, "hub/baseline", "≥ 5×", rps_ratio >= 5, note=note,
               details=details),
        Result("tipg", "server CPU per items request (all processes)", "ms",
               hub["cpu_ms_per_request"], peer["cpu_ms_per_request"],
               peer["cpu_ms_per_request"] / hub["cpu_ms_per_request"], "baseline/hub",
               note=note),
        Result("tipg", f"items bbox limit=100 p50, {CLIENTS} clients", "ms", hub["p50"],
               peer["p50"], peer["p50"] / hub["p50"], "baseline/hub", note=note),
        Result("tipg", f"items bbox limit=100 p99, {CLIENTS} clients", "ms", hub["p99"],
               peer["p99"], peer["p99"] / hub["p99"], "baseline/hub", note=note),
        Result("tipg", "z14 tile, uncached, p50 (1 client)", "ms", hub["tile_p50"],
               peer["tile_p50"], tile_ratio, "baseline/hub", "≥ 3×", tile_ratio >= 3,
               note=note),
        Result("tipg", "server CPU per uncached z14 tile (all processes)", "ms",
               hub["tile_cpu_ms"], peer["tile_cpu_ms"],
               peer["tile_cpu_ms"] / max(hub["tile_cpu_ms"], 0.01), "baseline/hub", note=note),
        Result("tipg", "server memory RSS (hub vs tipg + PostgreSQL)", "MiB", hub["rss_mib"],
               peer["rss_mib"], hub["rss_mib"] / peer["rss_mib"], "hub/baseline", "≤ 1",
               hub["rss_mib"] <= peer["rss_mib"], note=note),
        Result("tipg", "server memory PSS (hub vs tipg + PostgreSQL)", "MiB", hub["pss_mib"],
               peer["pss_mib"], hub["pss_mib"] / peer["pss_mib"], "hub/baseline", note=note),
        Result("tipg", "server memory PSS without mapped data files (hub vs tipg + PG)", "MiB",
               hub["pss_mib"] - hub["mapped_cache_pss_mib"], peer["pss_mib"],
               (hub["pss_mib"] - hub["mapped_cache_pss_mib"]) / peer["pss_mib"], "hub/baseline",
               note=f"the hub's mapped layer cache files: {hub['mapped_cache_pss_mib']} MiB of "
                    f"its PSS; {note}"),
    ]


def mapped_pss(pid: int, folder: Path) -> float:
    """PSS in MiB of the mappings of files under `folder` in `pid` and its descendants."""
    from bench.workers import processes

    total, inside = 0, False
    for p in processes(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps").read_text().splitlines():
                fields = line.split()
                if "-" in fields[0] and ":" not in fields[0]:  # a mapping's first line
                    inside = len(fields) >= 6 and fields[5].startswith(str(folder))
                elif inside and fields[0] == "Pss:":
                    total += int(fields[1])
    return round(total / 1024, 1)


def features_per_page(side: Side) -> list[int]:
    """Features on the first page of 10 bbox requests (both servers must answer alike)."""
    conn = http.client.HTTPConnection("127.0.0.1", side.port, timeout=300)
    found = []
    for box in boxes(10, 1):
        conn.request("GET", f"{side.collection}/items?limit=100&bbox={box}")
        found.append(len(json.loads(conn.getresponse().read())["features"]))
    conn.close()
    return found


def paired_tiles(sides: list[Side], tiles: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Each tile of each server in turn, the order alternating tile by tile: per server the
    p50 and its CPU per tile (each server is idle while the other answers)."""
    for side in sides:
        settle(side.servers)  # the hub pre-renders a new layer's low zooms after its first read
    conns = [http.client.HTTPConnection("127.0.0.1", side.port, timeout=300) for side in sides]
    times: list[list[float]] = [[] for _ in sides]
    before = [cpu_seconds(*side.servers) for side in sides]
    for i, tile in enumerate(tiles):
        for k in (range(len(sides)) if i % 2 == 0 else reversed(range(len(sides)))):
            path = f"{sides[k].collection}/tiles/WebMercatorQuad/{sides[k].tile_path(*tile)}"
            start = time.perf_counter()
            status, body = get(conns[k], path)
            times[k].append((time.perf_counter() - start) * 1000)
            if status not in (200, 204):  # 204: an empty tile
                raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
    for conn in conns:
        conn.close()
    return [{"tile_p50": statistics.median(taken),
             "tile_cpu_ms": round((cpu_seconds(*side.servers) - cpu) / len(tiles) * 1000, 2)}
            for side, taken, cpu in zip(sides, times, before, strict=True)]


def items_mix(side: Side) -> dict[str, Any]:
    """The bbox items mix at CLIENTS clients for SECONDS."""
    return concurrent(side.port, CLIENTS, SECONDS, lambda i: [
        f"{side.collection}/items?limit=100&bbox={box}" for box in boxes(200, 100 + i)],
        side.servers)


def settle(servers: tuple[int, ...], quiet_s: float = 1.0, limit_s: float = 120.0) -> None:
    """Wait until the servers' processes use (almost) no CPU for `quiet_s`: work they started
    in the background after the warm-up (the hub's pre-rendering of low zooms) is not timed
    as part of the tiles asked for next."""
    end = time.monotonic() + limit_s
    before = cpu_seconds(*servers)
    while time.monotonic() < end:
        time.sleep(quiet_s)
        now = cpu_seconds(*servers)
        if now - before < 0.05 * quiet_s:
            return
        before = now


def z14_tiles(port: int, n: int) -> list[tuple[int, int, int]]:
    """n distinct z14 tiles (z, x, y) within the hub's limits for the layer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("GET", f"/ogc/collections/{LAYER}/tiles/WebMercatorQuad")
    limits = json.loads(conn.getresponse().read())["tileMatrixSetLimits"][14]
    conn.close()
    rng, out = random.Random(14), set()
    while len(out) < n:
        out.add((14, rng.randint(limits["minTileCol"], limits["maxTileCol"]),
                 rng.randint(limits["minTileRow"], limits["maxTileRow"])))
    return sorted(out)


# -- the peer -----------------------------------------------------------------------------------

@contextlib.contextmanager
def postgis(root: Path) -> Iterator[tuple[Any, str]]:
    """PostgreSQL with PostGIS and the layer in table `punkte` (GiST index); yields the
    server and tipg's DATABASE_URL."""
    # the deployment's starter (deploy/postgres.py, also the tests'): initdb in a temporary
    # folder, the server as the unprivileged user hubtest when run as root
    from deploy.postgres import Postgres

    with Postgres.started(free_port()) as pg:
        with pg.connect() as conn:
            conn.execute("CREATE DATABASE bench")
        with pg.connect("bench") as conn:
            conn.execute("CREATE EXTENSION postgis")
            copy_layer(conn, root)
        socket_folder = quote(str(pg.folder), safe="")  # a host starting with / is a socket
        yield pg, f"postgresql://{pg.user}@{socket_folder}:{pg.port}/bench"


def copy_layer(conn: Any, root: Path) -> None:
    import pyarrow.parquet as pq
    import shapely

    from hub.store import Store

    version = Store(root / "store").current(LAYER)
    assert version is not None
    table = pq.read_table(version.data_file, columns=["id", "name", "ort", "kategorie",
                                                      "anzahl", "wert", "geometry"])
    conn.execute("CREATE TABLE punkte (id bigint PRIMARY KEY, name text, ort text, "
                 "kategorie text, anzahl bigint, wert double precision, "
                 "geom geometry(Point, 4326))")
    geoms = shapely.set_srid(shapely.from_wkb(table.column("geometry").to_numpy()), 4326)
    hexes = shapely.to_wkb(geoms, hex=True, include_srid=True)
    columns = [table.column(c).to_pylist() for c in table.column_names[:-1]]
    with conn.cursor().copy("COPY punkte (id, name, ort, kategorie, anzahl, wert, geom) "
                            "FROM STDIN") as copy:
        for row in zip(*columns, hexes.tolist(), strict=True):
            copy.write_row(row)
    conn.execute("CREATE INDEX punkte_geom ON punkte USING gist (geom)")
    conn.execute("ANALYZE punkte")


@contextlib.contextmanager
def tipg_server(url: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "TIPG_DB_SCHEMAS": '["public"]',
           "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    log = open(ROOT / "bench" / "data" / "tipg.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "tipg.main:app", "--host",
                                "127.0.0.1", "--port", str(port), "--workers", "2",
                                "--no-access-log", "--log-level", "warning"],
                               env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        wait(port, "/collections/public.punkte/items?limit=1", process, 120)
        yield port, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def postmaster(pg: Any) -> int:
    """The PostgreSQL server's main process (its backends are its children)."""
    return int((Path(pg.folder) / "data" / "postmaster.pid").read_text().split()[0])
