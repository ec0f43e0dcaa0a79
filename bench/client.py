"""The Python API (`hub.open`) on the 1,000,000-point layer (issue 13, "Speed").

`client-read`    `hub.open(project).read(name)` against `geopandas.read_parquet` on the same
                 version file, each in its own process, alternating. Target: no slower.
`client-remote`  `hub.open(url).read(name)` from `hub serve` on 127.0.0.1 (the GeoParquet
                 download, immutable per version, into a fresh process's cache) against the local
                 read, measured in turn with it. Target: within 2x.
`client-bbox`    `hub.open(url).read(name, bbox=...)` of a box holding about 100 features (the
                 OGC API), 200 queries one after another over boxes spread over the district.
                 Target: p50 within 20 ms.

The layer is the ingest case's seeded CSV (`bench/_csvgen.py`, 1M rows), ingested once per run
into a scratch project by the real `hub ingest`; only the reads are timed, not imports or
opening the hub.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._harness import Result, judge, measure, measure_calm, median
from bench._serve import HubServer, add_catalog
from bench.ingest import _project, _scratch

CASES = {"client-read": "hub.open(local).read vs geopandas.read_parquet, 1M points",
         "client-remote": "hub.open(url).read over 127.0.0.1 vs the local read, 1M points",
         "client-bbox": "hub.open(url).read(bbox=~100 features): p50 latency"}
LARGE: frozenset[str] = frozenset()
ROWS = 1_000_000
QUERIES = 200
HUB = [sys.executable, "-c", "import sys; from hub.cli import app; sys.exit(app())"]


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    from bench._csvgen import ensure_csv

    csv, made = ensure_csv(ROWS)
    if made:
        print(f"[client] generated {csv}", file=sys.stderr, flush=True)
    out: list[Result] = []
    with _scratch("client") as work:
        _project(work, csv)
        spec = work / "pipelines" / "bench.yaml"  # JSON, which is YAML
        spec.write_text(json.dumps({**json.loads(spec.read_text()), "access": "public"}))
        subprocess.run([*HUB, "ingest", "bench", "--root", str(work), "--store",
                        str(work / "store")], check=True, capture_output=True, timeout=600)
        add_catalog(work)
        data_file = next((work / "store" / "data" / "bench").glob("v1/data.parquet"))
        if "client-read" in cases:
            local, baseline = [], []
            for _ in range(args.repeat):
                local.append(measure_calm("bench.client:local_child", 900, root=str(work)))
                baseline.append(measure_calm("bench.client:geopandas_child", 900,
                                             path=str(data_file)))
            out.append(_read_result(local, baseline))
        if {"client-remote", "client-bbox"} & set(cases):
            with HubServer(work, ready="/api/datasets") as server:
                url = f"http://127.0.0.1:{server.port}"
                measure("bench.client:remote_child", 900, url=url)  # builds the export once
                if "client-remote" in cases:
                    # local and remote alternate here, so both meet the same machine load
                    paired, remote = [], []
                    for _ in range(args.repeat):
                        paired.append(measure_calm("bench.client:local_child", 900,
                                                   root=str(work)))
                        remote.append(measure_calm("bench.client:remote_child", 900, url=url))
                    out.append(_remote_result(remote, paired))
                if "client-bbox" in cases:
                    out.append(_bbox_result(measure("bench.client:bbox_child", 900, url=url,
                                                    root=str(work))))
    return out


def _read_result(local: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> Result:
    hub, base = median([r["seconds"] for r in local]), median([b["seconds"] for b in baseline])
    target, ok = judge(("hub ≤ baseline", hub <= base))
    return Result("client-read", "1M points as a GeoDataFrame, local", "s", hub, base,
                  hub / base, "hub/baseline", target, ok,
                  hub_runs=[r["seconds"] for r in local],
                  baseline_runs=[b["seconds"] for b in baseline],
                  note=f"{local[0]['rows']:,} rows; peak "
                       f"{median([r['peak_rss_mib'] for r in local]):.0f} MiB vs "
                       f"{median([b['peak_rss_mib'] for b in baseline]):.0f} MiB")


def _remote_result(remote: list[dict[str, Any]], local: list[dict[str, Any]]) -> Result:
    hub, base = median([r["seconds"] for r in remote]), median([r["seconds"] for r in local])
    target, ok = judge(("hub ≤ 2 × baseline", hub <= 2 * base))
    return Result("client-remote", "1M points as a GeoDataFrame over HTTP (127.0.0.1)", "s", hub,
                  base, hub / base, "hub/baseline", target, ok,
                  hub_runs=[r["seconds"] for r in remote],
                  baseline_runs=[r["seconds"] for r in local],
                  note=f"baseline: the local read; download {remote[0]['bytes'] / 1e6:,.0f} MB "
                       f"(GeoParquet), {remote[0]['download_s']:.2f} s of it")


def _bbox_result(out: dict[str, Any]) -> Result:
    times = sorted(out["times_ms"])
    p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
    target, ok = judge(("p50 ≤ 20 ms", p50 <= 20.0))
    return Result("client-bbox", f"bbox of ~100 features over HTTP, p50 of {len(times)}", "ms",
                  round(p50, 2), target=target, ok=ok, hub_runs=times,
                  note=f"p95 {p95:.1f} ms; features per box: median {out['features_median']}, "
                       f"range {out['features_min']}–{out['features_max']}")


# -- the measured sides (run by bench._child in their own processes) ------------------------


def local_child(root: str) -> dict[str, Any]:
    import hub

    opened = hub.open(root)
    clock = time.perf_counter()
    frame = opened.read("bench")
    return {"seconds": time.perf_counter() - clock, "rows": len(frame)}


def geopandas_child(path: str) -> dict[str, Any]:
    import geopandas

    clock = time.perf_counter()
    frame = geopandas.read_parquet(path)
    return {"seconds": time.perf_counter() - clock, "rows": len(frame)}


def remote_child(url: str) -> dict[str, Any]:
    import hub

    opened = hub.open(url)
    clock = time.perf_counter()
    path = opened._file("bench", None)  # the download alone, for the note
    download = time.perf_counter() - clock
    path.unlink()
    clock = time.perf_counter()
    frame = opened.read("bench")
    seconds = time.perf_counter() - clock
    return {"seconds": seconds, "rows": len(frame), "download_s": download,
            "bytes": Path(opened._file("bench", None)).stat().st_size}


def bbox_child(url: str, root: str) -> dict[str, Any]:
    """Boxes of about 100 features (sized from the layer's density) at spread-out places."""
    import numpy as np

    import hub

    local, remote = hub.open(root), hub.open(url)
    x0, y0, x1, y1 = local.datasets()[0].bbox
    side = ((x1 - x0) * (y1 - y0) * 100 / ROWS) ** 0.5
    rng = np.random.default_rng(13)
    centres = rng.uniform((x0 + side, y0 + side), (x1 - side, y1 - side), size=(QUERIES, 2))
    boxes = [(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2) for cx, cy in centres]
    remote.read("bench", bbox=boxes[0])  # the server loads the layer once
    times, counts = [], []
    for box in boxes:
        clock = time.perf_counter()
        frame = remote.read("bench", bbox=box)
        times.append((time.perf_counter() - clock) * 1000)
        counts.append(len(frame))
    return {"seconds": sum(times) / 1000, "times_ms": times,
            "features_median": int(np.median(counts)), "features_min": min(counts),
            "features_max": max(counts)}
