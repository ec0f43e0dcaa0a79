"""OGC API over HTTP: the hub beside pygeoapi 0.24 on the same GeoParquet files.

Data (seeded, made once under bench/data/ogc/): the ingest benchmark's 1,000,000-point CSV
(EPSG:25833) and 50,000 generated polygons, both ingested by the hub; its GeoParquet 1.1 files
(with bbox covering) are what pygeoapi's Parquet provider serves too.
Servers: `hub serve` (one process) and pygeoapi under gunicorn with 2 workers, in a Python 3.12
virtualenv under bench/data/pygeoapi/ that this module creates from PyPI. When no Python 3.12
or no pygeoapi can be had, the baseline is skipped with a note.

Measured, keep-alive HTTP/1.1 from this process:
  items?bbox=…&limit=100 (random boxes of ~1.5 km)  single client p50, both sides; the hub's
                                                     also with gzip accepted (bytes both ways)
  the same with 8 concurrent clients                 requests/s, both sides (ratio ≥ 20×)
  items?offset=900000&limit=100                      single client p50, both sides
  tiles z 6–14, first request (not cached)           p50, hub only (pygeoapi renders no tiles
                                                     from Parquet)
  the same tiles again (cached)                      p50, hub only
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import DATA_DIR, ROOT, Result, judge
from bench._serve import HubServer, add_catalog, free_port, wait

CASES = {"ogc": "OGC API over HTTP (1M points, 50k polygons): hub vs pygeoapi 0.24 (Parquet)"}
LARGE: frozenset[str] = frozenset()
WORK = DATA_DIR / "ogc"
VENV = DATA_DIR / "pygeoapi"
PYGEOAPI = ("pygeoapi==0.24.0", "gunicorn", "geopandas", "pyarrow", "s3fs")  # s3fs: Parquet
POLYGONS = 50_000
CLIENTS = 8
CONCURRENT_SECONDS = 10.0
VERSION = 1  # bump when the generated data changes
GZIP = {"Accept-Encoding": "gzip, deflate, br"}


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    store_root = _store()
    points = _data_file(store_root, "punkte")
    polygons = _data_file(store_root, "flaechen")
    baseline_note = ""
    python = _pygeoapi_python()
    if python is None:
        baseline_note = ("baseline skipped: no Python 3.12 with pygeoapi 0.24 could be set up "
                         f"(see {VENV.relative_to(ROOT)}/install.log)")
    results: list[Result] = []
    add_catalog(store_root)
    with HubServer(store_root, ready="/ogc/") as hub_server:
        hub_port = hub_server.port
        hub = _measure_items(hub_port, "/ogc", "punkte", "flaechen", rounds=1)
        hub_tiles = _measure_tiles(hub_port)
    base: dict[str, Any] = {}
    if python is not None:
        try:
            with _pygeoapi(python, points, polygons) as port:
                base = _measure_items(port, "", "punkte", "flaechen", rounds=0)
        except RuntimeError as exc:
            baseline_note = f"baseline failed: {exc}"
    if base:
        h, b = hub["features_returned"], base["features_returned"]
        if any(x != min(y, 100) for x, y in zip(h, b, strict=True)):
            baseline_note = f"ANSWERS DIFFER: features per page hub {h}, pygeoapi {b}"
        elif h != b:
            baseline_note = (f"pygeoapi returned more than limit=100 features on some pages "
                             f"({b}; hub {h}): its Parquet provider's paging, not the data")
    note = baseline_note or ("hub: one uvicorn process; pygeoapi 0.24: gunicorn -w 2, Parquet "
                             "provider on the same GeoParquet 1.1 files")

    def row(metric: str, unit: str, key: str, target: tuple[str, bool] | None,
            better: str = "baseline/hub") -> Result:
        h, b = hub[key], base.get(key)
        ratio = None if b is None else (b / h if better == "baseline/hub" else h / b)
        text, ok = target if target else ("", None)
        return Result("ogc", metric, unit, h, b, ratio, better if b is not None else "", text,
                      ok, note=note, details={"hub": hub, "baseline": base})

    results.append(row("items bbox limit=100 p50, 1 client (points)", "ms", "bbox_p50",
                       judge(("hub ≤ 10 ms", hub["bbox_p50"] <= 10))))
    for key, label in (("plain", "without gzip"), ("gzip", "gzip accepted")):
        results.append(Result(
            "ogc", f"items bbox limit=100 p50, 1 client, {label}, in turn (points)", "ms",
            hub[f"bbox_{key}_p50"], note=(
                "hub only: the bbox pages asked twice each, with and without "
                f"Accept-Encoding: gzip in turn; {hub[f'bbox_{key}_kb']:.1f} KB per page sent "
                "(median)")))
    results.append(row("items bbox limit=100 p50, 1 client (polygons)", "ms", "poly_p50", None))
    rps_ok = base.get("rps") is None or hub["rps"] >= 20 * base["rps"]
    results.append(row(f"items bbox limit=100, {CLIENTS} clients", "req/s", "rps",
                       ("hub/baseline ≥ 20", rps_ok) if base else None, "hub/baseline"))
    results.append(row("items offset=900000 limit=100 p50", "ms", "deep_p50",
                       judge(("hub ≤ 50 ms", hub["deep_p50"] <= 50))))
    results.append(Result("ogc", "tile z6–14 first request p50 (1M points)", "ms",
                          hub_tiles["uncached_p50"], target="≤ 30 ms",
                          ok=hub_tiles["uncached_p50"] <= 30, note="hub only",
                          details=hub_tiles))
    results.append(Result("ogc", "tile z6–14 cached p50", "ms", hub_tiles["cached_p50"],
                          target="≤ 3 ms", ok=hub_tiles["cached_p50"] <= 3, note="hub only"))
    results.append(Result("ogc", "polygon tile z10–14 first request p50 (50k polygons)", "ms",
                          hub_tiles["polygon_p50"], note="hub only; no target"))
    return results


# -- data -----------------------------------------------------------------------------------

def _store() -> Path:
    """A hub project with both layers ingested (made once)."""
    root = WORK / f"project-v{VERSION}"
    if (root / "READY").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    write_layers(root, {"organization": "Benchmark", "on_error": "reject",
                        "outside_extent": "keep", "access": "public"})
    district = ROOT / "catalog" / "district.yaml"
    if district.exists():
        (root / "catalog").mkdir()
        shutil.copy(district, root / "catalog" / "district.yaml")
    for name in ("punkte", "flaechen"):
        done = _ingest(root, name)
        if done:
            raise RuntimeError(f"ingest of {name} failed: {done}")
    (root / "READY").write_text("ok")
    return root


def write_layers(root: Path, common: dict[str, Any]) -> None:
    """Schemas and pipelines of the two layers under `root` (`schemas/`, `pipelines/`), their
    inputs made once: `punkte` (the ingest case's 1M-point CSV) and `flaechen` (POLYGONS
    polygons). `common`: the pipeline keys both share (organization, access, ...)."""
    from bench._csvgen import CATEGORIES, ensure_csv
    from bench.ingest import SCHEMA

    csv, _ = ensure_csv(1_000_000)
    (root / "schemas").mkdir(parents=True, exist_ok=True)
    (root / "pipelines").mkdir(exist_ok=True)
    schema = json.loads(json.dumps(SCHEMA))
    schema["fields"][3]["constraints"]["enum"] = list(CATEGORIES)
    (root / "schemas" / "punkte.json").write_text(json.dumps(schema), encoding="utf-8")
    (root / "schemas" / "flaechen.json").write_text(json.dumps({"fields": [
        {"name": "id", "type": "integer"}, {"name": "nutzung", "type": "string"},
        {"name": "flaeche_m2", "type": "number"},
        {"name": "geometry", "type": "geojson", "geometryTypes": ["Polygon"]}]}),
        encoding="utf-8")
    (root / "pipelines" / "punkte.yaml").write_text(json.dumps({
        "title": "Punkte", "schema": "punkte", **common,
        "source": {"path": str(csv.resolve()), "crs": "EPSG:25833",
                   "geometry": {"lon": "rechtswert", "lat": "hochwert"}}}), encoding="utf-8")
    poly_csv = WORK / f"flaechen-{POLYGONS}-v{VERSION}.csv"
    _write_polygons(poly_csv, POLYGONS)
    (root / "pipelines" / "flaechen.yaml").write_text(json.dumps({
        "title": "Flächen", "schema": "flaechen", **common,
        "source": {"path": str(poly_csv.resolve()), "crs": "EPSG:4326",
                   "geometry": {"wkt": "wkt"}}}), encoding="utf-8")


def _ingest(root: Path, name: str) -> str:
    from hub.config import load_settings
    from hub.ingest.pipeline import load_pipeline
    from hub.ingest.run import ingest
    from hub.store import Store

    settings = load_settings(root, root / "store")
    pipeline = load_pipeline(root / "pipelines" / f"{name}.yaml", settings.schemas_dir)
    report = ingest(pipeline, Store(settings.store), settings, who="bench", force=True)
    return "" if report.status == "committed" else str(report.error)


def _write_polygons(path: Path, n: int) -> None:
    """n seeded quadrilaterals (50–400 m across) over the Elbe-Elster area, as WKT."""
    import numpy as np

    rng = np.random.default_rng(20261124)
    cx, cy = rng.uniform(13.05, 13.89, n), rng.uniform(51.37, 51.88, n)
    size = rng.uniform(0.0007, 0.0055, n)
    angles = np.sort(rng.uniform(0, 2 * np.pi, (n, 4)), axis=1)
    xs = cx[:, None] + np.cos(angles) * size[:, None]
    ys = cy[:, None] + np.sin(angles) * size[:, None] * 0.62
    kinds = np.array(["Wald", "Acker", "Grünland", "Siedlung", "Wasser"])[rng.integers(0, 5, n)]
    lines = ["id;nutzung;flaeche_m2;wkt"]
    for i in range(n):
        ring = ", ".join(f"{x:.6f} {y:.6f}" for x, y in zip(xs[i], ys[i], strict=True))
        area = 0.5 * abs(np.dot(xs[i], np.roll(ys[i], 1)) - np.dot(ys[i], np.roll(xs[i], 1)))
        lines.append(f"{i + 1};{kinds[i]};{area * 111_320 * 69_300:.1f};"
                     f"POLYGON (({ring}, {xs[i][0]:.6f} {ys[i][0]:.6f}))")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _data_file(root: Path, name: str) -> Path:
    from hub.store import Store

    version = Store(root / "store").current(name)
    assert version is not None
    return Path(version.data_file)


# -- servers --------------------------------------------------------------------------------

def _pygeoapi_python() -> Path | None:
    """The venv's python with pygeoapi 0.24 installed (made on first use), or None."""
    python = VENV / "bin" / "python"
    wanted = " ".join(PYGEOAPI)
    ready = VENV / "READY"
    if python.exists() and ready.exists() and ready.read_text() == wanted:
        return python
    py312 = _find_python312()
    log = VENV / "install.log"
    VENV.mkdir(parents=True, exist_ok=True)
    if py312 is None:
        log.write_text("no Python 3.12 found (PATH, pyenv)\n")
        return None
    with open(log, "w") as out:
        steps = [[str(py312), "-m", "venv", "--clear", str(VENV)],
                 [str(python), "-m", "pip", "install", "--quiet", *PYGEOAPI]]
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, check=False,
                              timeout=1200).returncode:
                return None
    ready.write_text(wanted)
    return python


def _find_python312() -> Path | None:
    candidates = [shutil.which("python3.12")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob("3.12*/bin/python3.12"))]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "--version"], capture_output=True,
                                        check=False).returncode == 0:
            return Path(candidate)
    return None


class _pygeoapi:
    def __init__(self, python: Path, points: Path, polygons: Path):
        self.python, self.points, self.polygons = python, points, polygons

    def __enter__(self) -> int:
        self.port = free_port()
        cfg_dir = WORK / "pygeoapi"
        cfg_dir.mkdir(parents=True, exist_ok=True)
        self.points = _with_schema_geo(self.points, cfg_dir / "punkte.parquet")
        self.polygons = _with_schema_geo(self.polygons, cfg_dir / "flaechen.parquet")
        url = f"http://127.0.0.1:{self.port}"
        config = {
            "server": {"bind": {"host": "127.0.0.1", "port": self.port}, "url": url,
                       "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
                       "languages": ["de-DE"], "pretty_print": False,
                       "limits": {"default_items": 10, "max_items": 10000},
                       "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                               "attribution": "OSM"}},
            "logging": {"level": "ERROR"},
            "metadata": {"identification": {"title": "Benchmark", "description": "baseline",
                                            "keywords": ["bench"], "keywords_type": "theme",
                                            "terms_of_service": url, "url": url},
                         "license": {"name": "CC-BY 4.0", "url": url},
                         "provider": {"name": "Bench", "url": url},
                         "contact": {"name": "Bench", "email": "bench@example.org"}},
            "resources": {name: {
                "type": "collection", "title": name, "description": name, "keywords": [name],
                "extents": {"spatial": {"bbox": [13.0, 51.3, 13.95, 51.95],
                                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
                "providers": [{"type": "feature", "name": "Parquet",
                               "data": {"source": str(path)}, "id_field": "id"}]}
                for name, path in (("punkte", self.points), ("flaechen", self.polygons))},
        }
        cfg = cfg_dir / "config.yml"
        cfg.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        openapi = cfg_dir / "openapi.yml"
        env = {**os.environ, "PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(openapi)}
        bin_dir = self.python.parent
        done = subprocess.run([str(bin_dir / "pygeoapi"), "openapi", "generate", str(cfg),
                               "--output-file", str(openapi)], env=env, capture_output=True,
                              text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"pygeoapi openapi generate: {done.stderr[-500:]}")
        self.log = open(cfg_dir / "gunicorn.log", "w")  # closed in __exit__
        self.process = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{self.port}",
             "--timeout", "300", "pygeoapi.flask_app:APP"], env=env, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        wait(self.port, "/collections/punkte/items?limit=1", self.process, 120)
        return self.port

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.close()


def _with_schema_geo(source: Path, target: Path) -> Path:
    """A copy of a store file whose Arrow schema carries the `geo` metadata too.

    The hub writes `geo` into the Parquet footer's key-value metadata only; pyarrow then
    reports no schema metadata and pygeoapi's Parquet provider fails on it. Same rows, row
    groups, columns (bbox covering included) and compression otherwise."""
    import pyarrow.parquet as pq

    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    meta = pq.ParquetFile(source).metadata
    table = pq.read_table(source)
    table = table.replace_schema_metadata({b"geo": meta.metadata[b"geo"]})
    column = meta.row_group(0).column(0)
    tmp = target.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=meta.row_group(0).num_rows,
                   compression=column.compression.lower())
    tmp.replace(target)
    return target


# -- measuring ------------------------------------------------------------------------------

def _get(conn: http.client.HTTPConnection, path: str,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def _timed(port: int, paths: list[str], headers: dict[str, str] | None = None) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    out = []
    for path in paths:
        start = time.perf_counter()
        status, body = _get(conn, path, headers)
        out.append((time.perf_counter() - start) * 1000)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
    conn.close()
    return out


def _boxes(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x, y = rng.uniform(13.1, 13.85), rng.uniform(51.4, 51.86)
        out.append(f"{x:.5f},{y:.5f},{x + 0.02:.5f},{y + 0.013:.5f}")
    return out


def _measure_items(port: int, prefix: str, points: str, polygons: str, rounds: int
                   ) -> dict[str, Any]:
    """Single-client p50s and 8-client throughput; `rounds` extra warm-up passes."""
    base = f"{prefix}/collections"
    bbox = [f"{base}/{points}/items?f=json&limit=100&bbox={b}" for b in _boxes(60, 1)]
    poly = [f"{base}/{polygons}/items?f=json&limit=100&bbox={b}" for b in _boxes(30, 2)]
    deep = [f"{base}/{points}/items?f=json&limit=100&offset={900_000 + 100 * i}"
            for i in range(10)]
    _timed(port, bbox[:3] + poly[:2] + deep[:1])  # load layers / open files
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    returned = [len(json.loads(_get(conn, p)[1])["features"]) for p in bbox[:10] + deep[:1]]
    conn.close()
    out: dict[str, Any] = {"features_returned": returned}  # both sides must agree
    for key, paths in (("bbox", bbox), ("poly", poly), ("deep", deep)):
        times = _timed(port, paths)
        out[f"{key}_p50"] = statistics.median(times)
        out[f"{key}_n"] = len(times)
    # the same bbox pages asked as a browser asks (gzip accepted) and not, in turn (so both
    # meet the same load), with their sizes
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    sent: dict[str, list[tuple[float, int]]] = {"plain": [], "gzip": []}
    for path in bbox * 2:
        for key, headers in (("plain", None), ("gzip", GZIP)):
            start = time.perf_counter()
            status, body = _get(conn, path, headers)
            sent[key].append(((time.perf_counter() - start) * 1000, len(body)))
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
    conn.close()
    for key, pages in sent.items():
        out[f"bbox_{key}_p50"] = statistics.median(t for t, _ in pages)
        out[f"bbox_{key}_kb"] = statistics.median(n / 1024 for _, n in pages)
    counts = [0] * CLIENTS
    stop = time.monotonic() + CONCURRENT_SECONDS
    errors: list[str] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        paths = [f"{base}/{points}/items?f=json&limit=100&bbox={b}"
                 for b in _boxes(200, 100 + i)]
        k = 0
        while time.monotonic() < stop:
            status, _ = _get(conn, paths[k % len(paths)])
            if status != 200:
                errors.append(str(status))
                return
            counts[i] += 1
            k += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"concurrent requests failed: {errors[:3]}")
    out["rps"] = sum(counts) / (time.monotonic() - started)
    out["concurrent_requests"] = sum(counts)
    return out


def _measure_tiles(port: int) -> dict[str, Any]:
    """First and repeated requests of tiles at z 6–14 (points) and z 10–14 (polygons)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    _, body = _get(conn, "/ogc/collections/punkte/tiles/WebMercatorQuad")
    meta = json.loads(body)
    rng = random.Random(9)
    paths = []
    for z in range(6, 15):
        lim = meta["tileMatrixSetLimits"][z]
        for _ in range(12):
            y = rng.randint(lim["minTileRow"], lim["maxTileRow"])
            x = rng.randint(lim["minTileCol"], lim["maxTileCol"])
            paths.append(f"/ogc/collections/punkte/tiles/WebMercatorQuad/{z}/{y}/{x}")
    paths = list(dict.fromkeys(paths))
    _get(conn, "/ogc/collections/punkte/tiles/WebMercatorQuad/0/0/0")  # builds the index
    first = _timed_tiles(conn, paths)
    cached = _timed_tiles(conn, paths)
    poly_meta = json.loads(_get(conn, "/ogc/collections/flaechen/tiles/WebMercatorQuad")[1])
    poly_paths = []
    for z in range(10, 15):
        lim = poly_meta["tileMatrixSetLimits"][z]
        for _ in range(8):
            y = rng.randint(lim["minTileRow"], lim["maxTileRow"])
            x = rng.randint(lim["minTileCol"], lim["maxTileCol"])
            poly_paths.append(f"/ogc/collections/flaechen/tiles/WebMercatorQuad/{z}/{y}/{x}")
    _get(conn, poly_paths[0])
    poly = _timed_tiles(conn, list(dict.fromkeys(poly_paths[1:])))
    conn.close()
    per_zoom: dict[int, list[float]] = {}
    for path, ms in zip(paths, first, strict=True):
        per_zoom.setdefault(int(path.split("/")[-3]), []).append(ms)
    return {"uncached_p50": statistics.median(first), "cached_p50": statistics.median(cached),
            "polygon_p50": statistics.median(poly), "tiles": len(paths),
            "uncached_p50_per_zoom": {z: round(statistics.median(v), 2)
                                      for z, v in sorted(per_zoom.items())}}


def _timed_tiles(conn: http.client.HTTPConnection, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        start = time.perf_counter()
        status, body = _get(conn, path)
        out.append((time.perf_counter() - start) * 1000)
        if status not in (200, 204):
            raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
    return out
