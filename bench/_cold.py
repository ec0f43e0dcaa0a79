"""`bench workers cold`: a cold layer answered from its GeoParquet file (`hub.api.ogc.cold`).

On the workers project (20 versions of 1M points, rows in the CSV's order, which is not
spatial) plus `sortiert`, the same CSV sorted into 64 northing bands, by easting within a
band (as a source ordered by place and street is), ingested once:

  server, first bbox request (limit=100) of each of the 20 versions in a fresh `hub serve`
  (nothing verified, nothing mapped), `HUB_LAYER_CACHE_MB=1`, its layer cache folder removed:
    before — the layer path (the request also carries a CQL2 filter, which waits for the layer:
             checksum, GeoParquet read, files written, as every first request did before)
    after  — answered from the file while the layer is read in the background; then the time
             until the layer's files are in place, and a warm request
    again  — the same after removing the cache folder under the running server (the layers
             evicted, their files gone)
  in process, the cold path alone (`Source` opened, footer read, page read): 20 boxes on
  `punkte01` and on `sortiert`, wall and CPU time (all threads), row groups read
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._harness import DATA_DIR, Result
from bench._serve import HubServer
from bench.workers import DATASETS, boxes, cpu_seconds, ingest, items, load, timed

SORTED = "sortiert"
BANDS = 64
FILTER = "&filter=anzahl%20%3E%3D%200"  # true for every row: only makes the request wait


def sorted_dataset(root: Path) -> None:
    """`sortiert`: the workers CSV in spatial order, ingested once."""
    marker = root / f"READY-{SORTED}"
    if marker.exists():
        return
    source = Path(__import__("json").loads(
        (root / "pipelines" / f"{DATASETS[0]}.yaml").read_text())["source"]["path"])
    lines = source.read_bytes().split(b"\r\n" if b"\r\n" in source.read_bytes()[:4096]
                                      else b"\n")
    header, rows = lines[0], [line for line in lines[1:] if line]
    east = np.array([float(r.rsplit(b";", 2)[1].replace(b",", b".") or b"nan") for r in rows])
    north = np.array([float(r.rsplit(b";", 2)[2].replace(b",", b".") or b"nan") for r in rows])
    lo, hi = np.nanmin(north), np.nanmax(north)
    band = np.nan_to_num(np.floor((north - lo) / (hi - lo) * BANDS), nan=BANDS)
    order = np.lexsort((np.nan_to_num(east), band))
    target = DATA_DIR / "workers" / "points-1000000-sorted.csv"
    target.write_bytes(b"\r\n".join([header, *(rows[i] for i in order)]) + b"\r\n")
    text = (root / "pipelines" / f"{DATASETS[0]}.yaml").read_text()
    (root / "pipelines" / f"{SORTED}.yaml").write_text(
        text.replace(str(source), str(target)).replace(DATASETS[0], SORTED))
    failed = ingest(root, SORTED)
    if failed:
        raise RuntimeError(f"ingest of {SORTED} failed: {failed}")
    marker.write_text("ok")


def in_process(root: Path, name: str, n: int = 20) -> dict[str, float]:
    """The cold path alone: p50 wall and CPU ms and row groups read over `n` boxes."""
    from hub.api.ogc import cold, crs
    from hub.api.ogc.layer import describe
    from hub.api.ogc.params import make_area
    from hub.store import Store

    version = Store(root / "store").current(name)
    assert version is not None
    meta = describe(version)
    walls, cpus, groups, total = [], [], [], 0
    for box in boxes(n, 7):
        area = make_area([float(v) for v in box.split(",")], crs.DEFAULT, "bbox")
        wall, cpu = time.perf_counter(), time.process_time()
        source = cold.Source(version, meta)
        page = source.page((area, None, (), None), 0, 100)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        groups.append(page.groups)
        total = source.groups
    return {"p50_ms": statistics.median(walls), "cpu_p50_ms": statistics.median(cpus),
            "groups_p50": statistics.median(groups), "groups": total}


def server(root: Path, folder: Path, cold: bool) -> dict[str, Any]:
    """First requests of the 20 versions in a fresh server (see the module's docstring)."""
    shutil.rmtree(folder, ignore_errors=True)
    out: dict[str, Any] = {"first": [], "first_cpu": [], "built": [], "warm": [], "again": []}
    with HubServer(root, ready="/ogc/", HUB_LAYER_CACHE_MB="1", HUB_ACCESS_LOG="off",
                   HUB_LAYER_CACHE_DIR=str(folder), HUB_OGC_WORK_SECONDS="300",
                   HUB_OGC_QUEUE_SECONDS="300") as hub:  # a loaded machine: no 503s
        for round_ in ("first", "again"):
            if round_ == "again":
                if not cold:
                    break
                shutil.rmtree(folder, ignore_errors=True)
            for i, name in enumerate(DATASETS):
                box = boxes(20, 3)[i]
                cpu = cpu_seconds(hub.pid)
                start = time.perf_counter()
                out[round_] += timed(hub.port, [items(name, box) + ("" if cold else FILTER)])
                if round_ == "first":
                    out["first_cpu"].append((cpu_seconds(hub.pid) - cpu) * 1000)
                if cold:  # until the background read has written the layer's files
                    for _ in range(12_000):  # a bound against a hang only (10 min)
                        if list((folder / name).glob("v*/manifest.json")):
                            break
                        time.sleep(0.05)
                    if round_ == "first":
                        out["built"].append((time.perf_counter() - start) * 1000)
                        out["warm"] += timed(hub.port, [items(name, boxes(20, 4)[i])])
    return {k: statistics.median(v) for k, v in out.items() if v}


def cold_layers(root: Path) -> list[Result]:
    sorted_dataset(root)
    folder = DATA_DIR / "workers" / "cold-layers"
    before = server(root, folder, cold=False)
    after = server(root, folder, cold=True)
    shutil.rmtree(folder, ignore_errors=True)
    ordered, spatial = in_process(root, DATASETS[0]), in_process(root, SORTED)
    note = f"load (uptime) {load()}; HUB_LAYER_CACHE_MB=1, layer cache folder removed"
    details = {"before": before, "after": after, "ingest order": ordered, "sorted": spatial}
    return [
        Result("cold", "first bbox request of a new 1M-point version p50 (layer path → file)",
               "ms", after["first"], before["first"], before["first"] / after["first"],
               "before/after", "well under 1 s", after["first"] < 500, note=note,
               details=details),
        Result("cold", "server CPU during the first request, layer path", "ms",
               before["first_cpu"], note=note),
        Result("cold", "until the layer's files are written (background read) p50", "ms",
               after["built"], note=note),
        Result("cold", "warm request after the background read p50", "ms", after["warm"],
               note=note),
        Result("cold", "bbox request, layer evicted and files removed p50", "ms",
               after["again"], note=note),
        Result("cold", "cold path in process p50 (rows in ingest order → spatially sorted)",
               "ms", spatial["p50_ms"], ordered["p50_ms"],
               ordered["p50_ms"] / spatial["p50_ms"], "ingest order/sorted", note=note),
        Result("cold", "cold path CPU p50 (ingest order → sorted)", "ms",
               spatial["cpu_p50_ms"], ordered["cpu_p50_ms"],
               ordered["cpu_p50_ms"] / spatial["cpu_p50_ms"], "ingest order/sorted",
               note=f"row groups read p50 {ordered['groups_p50']:g} → "
                    f"{spatial['groups_p50']:g} of {ordered['groups']}/{spatial['groups']}"),
    ]
