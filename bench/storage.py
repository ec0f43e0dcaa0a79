"""The store folder beside S3-compatible object storage: the same layer served from each.

`storage`  The ingest case's seeded 1,000,000-point CSV, ingested once by `hub ingest` into a
           scratch project, served by `hub serve` from the store folder (the default) and from
           S3 (`HUB_STORAGE_URL`, moto's standalone server on 127.0.0.1 as the endpoint, the
           version's files uploaded under the same keys). On each, over keep-alive HTTP from
           this process: the first OGC items request (the layer is loaded from its file),
           items with a random ~1.5 km bbox and limit=100 (p50 of 200, the layer in memory),
           the whole GeoJSON download (MB/s, identity), the GeoParquet export's first request
           (built from the version, and on S3 put beside it) and 64 KiB range requests of it
           (p50 of 50).

`BENCH_STORAGE_SIDES=local` measures the store folder alone (for a run on a hub without
hub.storage, the "before" figure of bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._harness import Result, median
from bench._serve import HubServer, add_catalog, free_port, wait
from bench.ingest import _project, _scratch

CASES = {"storage": "1M points from the store folder and from S3 (moto's server): OGC items, "
                    "GeoJSON download, GeoParquet ranges"}
LARGE: frozenset[str] = frozenset()
ROWS = 1_000_000
HUB = [sys.executable, "-c", "import sys; from hub.cli import app; sys.exit(app())"]
KEY_ID, SECRET, REGION, BUCKET = "bench", "bench-secret", "eu-central-1", "hub-bench"


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    from bench._csvgen import ensure_csv

    csv, _ = ensure_csv(ROWS)
    sides = os.environ.get("BENCH_STORAGE_SIDES", "local,s3").split(",")
    with _scratch("storage") as work:
        _project(work, csv)
        spec = work / "pipelines" / "bench.yaml"  # JSON, which is YAML
        spec.write_text(json.dumps({**json.loads(spec.read_text()), "access": "public"}))
        subprocess.run([*HUB, "ingest", "bench", "--root", str(work), "--store",
                        str(work / "store")], check=True, capture_output=True, timeout=900)
        add_catalog(work)
        figures: dict[str, dict[str, Any]] = {}
        if "local" in sides:
            with HubServer(work, ready="/downloads/bench") as server:
                figures["local"] = _measure(server.port, args.repeat)
        if "s3" in sides:
            with _moto() as endpoint:
                env = _upload(work, endpoint)
                with HubServer(work, work / "store-s3", ready="/downloads/bench",
                               **env) as server:
                    figures["S3"] = _measure(server.port, args.repeat)
    return _results(figures)


def _results(figures: dict[str, dict[str, Any]]) -> list[Result]:
    out = []
    for side, f in figures.items():
        note = f"files in {'the store folder' if side == 'local' else 'S3 (moto, 127.0.0.1)'}"
        out += [
            Result("storage", f"{side}: first OGC items request (loads the layer)", "s",
                   f["cold_s"], note=note),
            Result("storage", f"{side}: OGC items bbox limit=100, p50 (1 client)", "ms",
                   f["items_p50"], hub_runs=f["items"]),
            Result("storage", f"{side}: GeoJSON download (identity)", "MB/s",
                   median(f["rates"]), hub_runs=f["rates"],
                   note=f"{f['bytes'] / 1e6:,.0f} MB body"),
            Result("storage", f"{side}: GeoParquet export, first request", "s",
                   f["export_s"], note=f"{f['export_mb']:,.0f} MB"),
            Result("storage", f"{side}: GeoParquet 64 KiB range, p50", "ms", f["range_p50"]),
        ]
    return out


def _get(conn: http.client.HTTPConnection, path: str,
         headers: dict[str, str]) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _timed(conn: http.client.HTTPConnection, path: str, expect: int = 200,
           headers: dict[str, str] | None = None) -> tuple[float, bytes]:
    try:
        start = time.perf_counter()
        status, body = _get(conn, path, headers or {})
    except (http.client.RemoteDisconnected, ConnectionResetError):  # a kept-alive connection
        conn.close()  # the server closed: once more on a new one, as HTTP clients do
        start = time.perf_counter()
        status, body = _get(conn, path, headers or {})
    seconds = time.perf_counter() - start
    if status != expect:
        raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
    return seconds, body


def _measure(port: int, repeat: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    items = "/ogc/collections/bench/items?f=json&limit=100&bbox="
    cold, _ = _timed(conn, items + "13.4,51.6,13.42,51.613")
    rng = random.Random(7)
    boxes = []
    for _ in range(200):
        x, y = rng.uniform(13.1, 13.85), rng.uniform(51.4, 51.86)
        boxes.append(f"{x:.5f},{y:.5f},{x + 0.02:.5f},{y + 0.013:.5f}")
    for box in boxes[:20]:  # warm-up
        _timed(conn, items + box)
    times = [_timed(conn, items + box)[0] * 1000 for box in boxes]
    rates, size = [], 0
    for _ in range(repeat):
        seconds, body = _timed(conn, "/downloads/bench/v1.geojson",
                               headers={"Accept-Encoding": "identity"})
        size = len(body)
        rates.append(size / 1e6 / seconds)
    export, body = _timed(conn, "/downloads/bench/v1.parquet")
    ranges = []
    for _ in range(50):
        start = rng.randrange(0, len(body) - 65536)
        seconds, part = _timed(conn, "/downloads/bench/v1.parquet", 206,
                               {"Range": f"bytes={start}-{start + 65535}"})
        assert part == body[start:start + 65536]
        ranges.append(seconds * 1000)
    conn.close()
    return {"cold_s": cold, "items": times, "items_p50": statistics.median(times),
            "rates": rates, "bytes": size, "export_s": export, "export_mb": len(body) / 1e6,
            "range_p50": statistics.median(ranges)}


class _moto:
    """moto's standalone server on a free port of 127.0.0.1 (as deploy/s3.py starts it)."""

    def __enter__(self) -> str:
        port = free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H",
                                         "127.0.0.1", "-p", str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(port, "/moto-api/", self.process, 60)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def _upload(work: Path, endpoint: str) -> dict[str, str]:
    """A bucket holding the store's version files under `hub/`, and a store folder of its
    own with the same database; returns the environment that serves it from S3."""
    from pyarrow import fs

    from hub.storage.s3 import S3Storage

    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": KEY_ID,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION,
           "HUB_STORAGE_URL": f"s3://{BUCKET}/hub"}
    fs.S3FileSystem(access_key=KEY_ID, secret_key=SECRET, region=REGION, scheme="http",
                    endpoint_override=endpoint.removeprefix("http://"),
                    allow_bucket_creation=True).create_dir(BUCKET)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        files = S3Storage(env["HUB_STORAGE_URL"])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    store = work / "store"
    for path in sorted((store / "data").rglob("*.parquet")):
        files.put(path, path.relative_to(store).as_posix())
    (work / "store-s3").mkdir()
    for name in ("hub.sqlite", "hub.sqlite-wal", "hub.sqlite-shm"):
        if (store / name).exists():
            shutil.copy(store / name, work / "store-s3" / name)
    return env
