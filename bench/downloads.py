"""Downloads over HTTP: a 1,000,000-point layer from a running `hub serve`.

`downloads`  The full GeoJSON of the layer (`/downloads/bench/v1.geojson`, no compression)
             streamed to a client on the same machine: throughput (MB/s of body) and the server
             process's peak-memory growth (VmHWM after the first full download minus VmHWM
             before it, on a freshly started server). Against a naive implementation in its own
             process: geopandas reads the version's GeoParquet and `to_json()`s it in memory
             (what a quick endpoint would do). For information: gzip on request, and the first
             (build) and later (file) requests of GeoPackage, FlatGeobuf and GeoParquet.

The layer is the ingest case's seeded CSV (`bench/_csvgen.py`, 1M rows, six attributes),
ingested once per run into a scratch project by the real `hub ingest`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench._harness import Result, judge, measure, median, rss_mib
from bench._serve import HubServer, add_catalog
from bench.ingest import _project, _scratch

CASES = {"downloads": "1M-point layer: GeoJSON download throughput and server memory; "
                      "hub vs geopandas to_json"}
LARGE: frozenset[str] = frozenset()
ROWS = 1_000_000
MIN_MB_S = 50.0
MAX_GROWTH_MIB = 100.0
HUB = [sys.executable, "-c", "import sys; from hub.cli import app; sys.exit(app())"]


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    from bench._csvgen import ensure_csv

    csv, made = ensure_csv(ROWS)
    if made:
        print(f"[downloads] generated {csv}", file=sys.stderr, flush=True)
    with _scratch("downloads") as work:
        _project(work, csv)
        spec = work / "pipelines" / "bench.yaml"  # JSON, which is YAML
        spec.write_text(json.dumps({**json.loads(spec.read_text()), "access": "public"}))
        subprocess.run([*HUB, "ingest", "bench", "--root", str(work), "--store",
                        str(work / "store")], check=True, capture_output=True, timeout=600)
        data_file = next((work / "store" / "data" / "bench").glob("v1/data.parquet"))
        add_catalog(work)
        with _Server(work, ready="/downloads/bench") as server:
            hub = _hub_side(server, args.repeat)
        baseline = [measure("bench.downloads:baseline_child", 900, path=str(data_file))
                    for _ in range(args.repeat)]
    return _results(hub, baseline)


def _results(hub: dict[str, Any], baseline: list[dict[str, Any]]) -> list[Result]:
    rates = hub["rates"]
    rate = median(rates)
    base_rate = median([b["bytes"] / 1e6 / b["seconds"] for b in baseline])
    base_growth = median([b["peak_rss_mib"] - b["rss_before_mib"] for b in baseline])
    growth = hub["growth_mib"]
    t1, ok1 = judge((f"hub ≥ {MIN_MB_S:g} MB/s", rate >= MIN_MB_S))
    t2, ok2 = judge((f"hub ≤ {MAX_GROWTH_MIB:g} MiB", growth <= MAX_GROWTH_MIB))
    size = hub["bytes"] / 1e6
    out = [
        Result("downloads", "GeoJSON throughput (identity)", "MB/s", rate, base_rate,
               rate / base_rate, "hub/baseline", t1, ok1, hub_runs=rates,
               baseline_runs=[b["bytes"] / 1e6 / b["seconds"] for b in baseline],
               note=f"{size:,.0f} MB body, {ROWS:,} features; baseline builds the whole "
                    "document in memory first"),
        Result("downloads", "server peak-memory growth, first full download", "MiB", growth,
               base_growth, growth / base_growth, "hub/baseline", t2, ok2,
               note=f"VmHWM {hub['hwm_before_mib']:.0f} → {hub['hwm_after_mib']:.0f} MiB; "
                    f"after all runs {hub['hwm_end_mib']:.0f} MiB"),
        Result("downloads", "GeoJSON throughput (gzip, uncompressed MB/s)", "MB/s",
               hub["gzip_rate"], note=f"{hub['gzip_bytes'] / 1e6:,.0f} MB on the wire"),
    ]
    for ext, (first, again, size_mb) in hub["files"].items():
        out.append(Result("downloads", f"{ext}: first request (builds the file)", "s", first,
                          note=f"{size_mb:,.0f} MB"))
        out.append(Result("downloads", f"{ext}: later request (file)", "s", again))
    return out


class _Server(HubServer):
    """`hub serve` on the scratch project; `get` times a whole download."""

    def get(self, path: str, **headers: str) -> tuple[int, float, dict[str, str]]:
        """Bytes of the body as sent, seconds from request to last byte, headers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
        size = 0
        while chunk := response.read(1 << 20):
            size += len(chunk)
        seconds = time.perf_counter() - start
        conn.close()
        return size, seconds, dict(response.getheaders())


def _hub_side(server: _Server, repeat: int) -> dict[str, Any]:
    url = "/downloads/bench/v1.geojson"
    before = server.hwm_mib()
    size, seconds, _ = server.get(url, **{"Accept-Encoding": "identity"})
    after = server.hwm_mib()
    rates = [size / 1e6 / seconds]
    for _ in range(repeat - 1):
        again, seconds, _ = server.get(url, **{"Accept-Encoding": "identity"})
        assert again == size
        rates.append(again / 1e6 / seconds)
    packed, seconds, headers = server.get(url, **{"Accept-Encoding": "gzip"})
    assert headers.get("content-encoding") == "gzip"
    files = {}
    for ext in ("gpkg", "fgb", "parquet"):
        length, first, _ = server.get(f"/downloads/bench/v1.{ext}")
        _, again, _ = server.get(f"/downloads/bench/v1.{ext}")
        files[ext] = (first, again, length / 1e6)
    return {"bytes": size, "rates": rates, "growth_mib": after - before,
            "hwm_before_mib": before, "hwm_after_mib": after, "hwm_end_mib": server.hwm_mib(),
            "gzip_rate": size / 1e6 / seconds, "gzip_bytes": packed, "files": files,
            "spread": statistics.pstdev(rates) if len(rates) > 1 else 0.0}


# -- the measured baseline (run by bench._child in its own process) --------------------------


def baseline_child(path: str) -> dict[str, Any]:
    import geopandas

    before = rss_mib()
    clock = time.perf_counter()
    body = geopandas.read_parquet(path).to_json().encode()
    return {"seconds": time.perf_counter() - clock, "bytes": len(body),
            "rss_before_mib": before}
