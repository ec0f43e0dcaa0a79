"""Ingest: a Windows-1252, `;`-separated, decimal-comma CSV of EPSG:25833 points.

`ingest`      1,000,000 rows; the hub's ingest (a new committed version in a fresh store, all
              schema rules checked) against plain geopandas (read_csv → points_from_xy →
              to_crs(4326) → to_parquet). Each side runs in its own process, alternately, `repeat`
              times; medians are reported.
`ingest-10m`  10,000,000 rows of the same shape, hub only, once (opt-in: --large).

The module imports nothing heavy at the top: the measured children import it, and only the
side being measured should load its libraries (hub or geopandas).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import DATA_DIR, ROOT, Result, judge, measure_calm, median, rss_mib, warm

CASES = {
    "ingest": "1M-row cp1252 CSV (EPSG:25833) → committed version; hub vs geopandas",
    "ingest-10m": "10M-row CSV of the same shape → committed version; hub only (--large)",
}
LARGE = frozenset({"ingest-10m"})

HUB_WALL_MAX_S = 2.0
SPEEDUP_MIN = 2.5  # baseline wall / hub wall
MEMORY_RATIO_MAX = 0.5  # hub peak RSS / baseline peak RSS
LARGE_RSS_MAX_MIB = 2048.0  # 2 GiB

SCHEMA = {
    "title": "Benchmark points",
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "name", "type": "string", "constraints": {"required": True, "maxLength": 120}},
        {"name": "ort", "type": "string", "constraints": {"required": True, "maxLength": 80}},
        {"name": "kategorie", "type": "string", "constraints": {"required": True}},  # + enum
        {"name": "anzahl", "type": "integer", "constraints": {"required": True, "minimum": 0}},
        {"name": "wert", "type": "number", "constraints": {"minimum": 0}},
        {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"],
         "constraints": {"required": True}},
    ],
}


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    for case in cases:
        if case == "ingest":
            results += _compare(case, 1_000_000, args.repeat)
        elif case == "ingest-10m":
            results += _hub_only(case, 10_000_000)
    return results


# -- the cases -------------------------------------------------------------------------------


def _compare(case: str, rows: int, repeat: int) -> list[Result]:
    csv = _input(case, rows)
    hub: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    for i in range(1, repeat + 1):  # alternate, so drifting machine load hits both sides
        hub.append(_run_hub(case, csv, rows, timeout=600))
        _log(case, f"hub      {i}/{repeat}: {_sample(hub[-1])}")
        base.append(_run_baseline(case, csv, rows, timeout=900))
        _log(case, f"baseline {i}/{repeat}: {_sample(base[-1])}")
    hub_s, base_s = [s["seconds"] for s in hub], [s["seconds"] for s in base]
    hub_m, base_m = [s["peak_rss_mib"] for s in hub], [s["peak_rss_mib"] for s in base]
    wall_h, wall_b = median(hub_s), median(base_s)
    mem_h, mem_b = median(hub_m), median(base_m)
    speedup, mem_ratio = wall_b / wall_h, mem_h / mem_b
    wall_target, wall_ok = judge((f"hub ≤ {HUB_WALL_MAX_S:g} s", wall_h <= HUB_WALL_MAX_S),
                                 (f"baseline/hub ≥ {SPEEDUP_MIN:g}", speedup >= SPEEDUP_MIN))
    details = {"rows": rows, "input": str(csv.relative_to(ROOT)),
               "input_mib": round(csv.stat().st_size / 2**20, 1), "hub": hub, "baseline": base}
    return [
        Result(case, "wall time", "s", wall_h, wall_b, speedup, "baseline/hub", wall_target,
               wall_ok, hub_s, base_s,
               note=f"{rows / wall_h:,.0f} rows/s (hub), {rows / wall_b:,.0f} rows/s (baseline)"
               + _noise_note(hub, base),
               details=details),
        Result(case, "peak RSS", "MiB", mem_h, mem_b, mem_ratio, "hub/baseline",
               f"hub/baseline ≤ {MEMORY_RATIO_MAX:g}", mem_ratio <= MEMORY_RATIO_MAX,
               hub_m, base_m),
    ]


def _hub_only(case: str, rows: int) -> list[Result]:
    csv = _input(case, rows)
    sample = _run_hub(case, csv, rows, timeout=3600)
    _log(case, f"hub      1/1: {_sample(sample)}")
    details = {"rows": rows, "input": str(csv.relative_to(ROOT)),
               "input_mib": round(csv.stat().st_size / 2**20, 1), "hub": [sample]}
    mem = sample["peak_rss_mib"]
    return [
        Result(case, "wall time", "s", sample["seconds"], hub_runs=[sample["seconds"]],
               note=f"{rows / sample['seconds']:,.0f} rows/s; one run, no baseline"
               + _noise_note([sample]),
               details=details),
        Result(case, "peak RSS", "MiB", mem, target=f"hub ≤ {LARGE_RSS_MAX_MIB:,.0f} MiB (2 GiB)",
               ok=mem <= LARGE_RSS_MAX_MIB, hub_runs=[mem]),
    ]


def _input(case: str, rows: int) -> Path:
    from bench._csvgen import csv_path, ensure_csv

    if not csv_path(rows).exists():
        _log(case, f"generating {rows:,} rows → {csv_path(rows).relative_to(ROOT)} …")
    clock = time.perf_counter()
    csv, made = ensure_csv(rows)
    if made:
        _log(case, f"generated {csv.stat().st_size / 2**20:,.0f} MiB in "
                   f"{time.perf_counter() - clock:.1f} s")
    warm(csv)
    return csv


def _run_hub(case: str, csv: Path, rows: int, timeout: float) -> dict[str, Any]:
    with _scratch(case) as work:
        _project(work, csv)
        out = measure_calm("bench.ingest:hub_child", timeout, root=str(work))
    if out.get("status") != "committed" or out.get("rows_valid") != rows:
        raise RuntimeError(f"{case}: the hub's ingest did not commit all {rows:,} rows: "
                           f"status={out.get('status')} rows_valid={out.get('rows_valid')} "
                           f"error={out.get('error')}")
    return out


def _run_baseline(case: str, csv: Path, rows: int, timeout: float) -> dict[str, Any]:
    with _scratch(case) as work:
        out = measure_calm("bench.ingest:baseline_child", timeout, csv=str(csv),
                      out=str(work / "out.parquet"))
    if out.get("rows") != rows:
        raise RuntimeError(f"{case}: the baseline wrote {out.get('rows')} rows, not {rows:,}")
    return out


def _project(work: Path, csv: Path) -> None:
    """A throw-away hub project: schema, pipeline and the district (so its extent applies)."""
    from bench._csvgen import CATEGORIES

    schema = json.loads(json.dumps(SCHEMA))
    schema["fields"][3]["constraints"]["enum"] = list(CATEGORIES)
    (work / "schemas").mkdir()
    (work / "schemas" / "bench.json").write_text(json.dumps(schema, ensure_ascii=False, indent=1),
                                                 encoding="utf-8")
    pipeline = {
        "dataset": "bench", "title": "Benchmark points", "organization": "Benchmark",
        "schema": "bench", "on_error": "reject", "outside_extent": "keep",
        "source": {"path": str(csv.resolve()), "geometry": {"lon": "rechtswert",
                                                             "lat": "hochwert"},
                   "crs": "EPSG:25833"},
    }
    (work / "pipelines").mkdir()
    # JSON is YAML: no YAML library needed here
    (work / "pipelines" / "bench.yaml").write_text(json.dumps(pipeline, indent=1),
                                                   encoding="utf-8")
    district = ROOT / "catalog" / "district.yaml"
    if district.exists():
        (work / "catalog").mkdir()
        shutil.copy(district, work / "catalog" / "district.yaml")


class _scratch:
    """A fresh folder under bench/data/work/ (same disk as the input), removed afterwards."""

    def __init__(self, case: str):
        self.case = case

    def __enter__(self) -> Path:
        base = DATA_DIR / "work"
        base.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"{self.case}-", dir=base))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _sample(s: dict[str, Any]) -> str:
    text = (f"{s['seconds']:.2f} s (CPU {s['cpu_s']:.2f} s), "
            f"peak RSS {s['peak_rss_mib']:,.0f} MiB")
    if s.get("discarded"):
        text += f"; {len(s['discarded'])} disturbed attempt(s) discarded"
    return text + ("; NOISY: other work ran meanwhile" if s.get("noisy") else "")


def _noise_note(*samples: list[dict[str, Any]]) -> str:
    noisy = sum(bool(s.get("noisy")) for side in samples for s in side)
    return f"; {noisy} run(s) disturbed by other work on the machine" if noisy else ""


def _log(case: str, message: str) -> None:
    print(f"[{case}] {message}", file=sys.stderr, flush=True)


# -- the measured children (run by bench._child in their own process) -----------------------


def hub_child(root: str) -> dict[str, Any]:
    from hub.config import load_settings
    from hub.ingest.pipeline import load_pipeline
    from hub.ingest.run import ingest
    from hub.store import Store

    base = Path(root)
    settings = load_settings(base, base / "store")
    pipeline = load_pipeline(base / "pipelines" / "bench.yaml")
    store = Store(settings.store)
    before = rss_mib()  # after imports and setup: the interpreter's share of the peak
    cpu, clock = time.process_time(), time.perf_counter()
    report = ingest(pipeline, store, settings, force=True)
    seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
    out = {k: getattr(report, k) for k in ("status", "version", "rows_read", "rows_valid",
                                          "violation_count", "reprojected", "error")}
    out.update(seconds=seconds, cpu_s=round(cpu, 2), rss_before_mib=before)
    if report.status == "committed":
        version = store.current("bench")
        out["output_mib"] = round(version.data_file.stat().st_size / 2**20, 1) if version else None
    return out


def baseline_child(csv: str, out: str) -> dict[str, Any]:
    import geopandas
    import pandas
    import pyarrow.parquet as pq

    before = rss_mib()
    cpu, clock = time.process_time(), time.perf_counter()
    df = pandas.read_csv(csv, sep=";", decimal=",", encoding="cp1252")
    points = geopandas.points_from_xy(df["rechtswert"], df["hochwert"])
    gdf = geopandas.GeoDataFrame(df, geometry=points, crs=25833).to_crs(4326)
    gdf.to_parquet(out)
    seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
    return {"seconds": seconds, "cpu_s": round(cpu, 2), "rss_before_mib": before,
            "rows": pq.read_metadata(out).num_rows,
            "output_mib": round(Path(out).stat().st_size / 2**20, 1)}
