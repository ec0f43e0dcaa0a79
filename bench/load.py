"""Load: 200 concurrent clients for 60 s (locust) on a mix of the hub's surfaces, with an ingest.

`load`  One `hub serve` on a seeded store: the demo district (pipelines ingested, catalog loaded,
        the data inventory imported) plus the OGC case's layers `punkte` (1,000,000 points) and
        `flaechen` (50,000 polygons) and a live layer `nutzung` (20,000+ polygons, retention 3).
        Three consecutive locust runs against the same server process (`locust --headless
        -u 200 -r 50 -t 60s`, the mix in `bench/_locustfile.py`: portal pages, CKAN
        package_search, OGC items with bbox and with bbox + CQL2 filter, vector tiles,
        downloads). Before the first run every layer is read and its tile index built once
        (as on a server that has been up for a while; reading a layer has the server pre-render
        its zooms 0–10 in the background, as it does for every new version). During each
        run a loop rewrites `nutzung`'s source and runs `hub ingest nutzung` in a process of
        its own every INGEST_EVERY seconds, so new versions are committed (and old ones
        removed by retention) while they are served. The server's resident memory (VmRSS from
        /proc/PID/status) is sampled every 0.5 s; after each run its RSS/PSS/USS and the bytes
        each cache holds beside its bound are taken from its `hub.memory` log line
        (HUB_MEMORY_LOG, every 5 s; see hub/memory.py), so a growing cache shows by name.
        Passes when no request failed (any answer other than 2xx, 503 Busy included), every
        ingest committed, and the server's RSS after the third run is at most RSS_GROWTH above
        its RSS after the first (the first run fills the caches: layers, tiles, the catalog
        snapshot). A miss of either fails `python -m bench load` (exit 1) without --strict.
        `--quick`: 20 clients for 5 s, one run (a smoke test of the set-up, no memory verdict);
        `--repeat N`: N runs instead of 3 (a longer look at memory).

There is no baseline: the figures are judged against the issue's targets. Locust runs in its own
process on the same machine, so it competes with the server for the two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._harness import BENCH_DIR, DATA_DIR, ROOT, Result, busy_cpu_s, judge, median
from bench._serve import HubServer, add_catalog, demo_project
from bench.downloads import HUB

CASES = {"load": "200 locust clients × 60 s on pages, CKAN search, OGC items/tiles, downloads, "
                 "with an ingest loop; 3 runs: failures, p50/p99, server RSS"}
LARGE: frozenset[str] = frozenset()
WORK = DATA_DIR / "load"
LOCUSTFILE = BENCH_DIR / "_locustfile.py"
FULL = {"users": 200, "spawn_rate": 50, "seconds": 60, "runs": 3}
QUICK = {"users": 20, "spawn_rate": 20, "seconds": 5, "runs": 1}
RSS_GROWTH = 0.10  # allowed growth of the server's RSS from the end of run 1 to the end of run 3
LIVE = "nutzung"  # the dataset the ingest loop re-commits
LIVE_ROWS = 20_000
INGEST_EVERY = 15.0  # seconds from the start of one ingest to the start of the next
ORGANIZATION = "kataster-vermessung"
VERSION = 1  # bump when the seeded project changes
MEMORY_LOG_SECONDS = 5


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    if importlib.util.find_spec("locust") is None:
        raise RuntimeError("locust is not installed: .venv/bin/pip install -e '.[bench]'")
    plan = QUICK if getattr(args, "quick", False) else \
        FULL | {"runs": max(3, getattr(args, "repeat", 3) or 3)}
    base = _base()
    work = WORK / f"run-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    try:
        add_catalog(work)
        with HubServer(work, ready="/", HUB_MEMORY_LOG=str(MEMORY_LOG_SECONDS)) as server:
            _warm(server.port)
            runs = []
            for i in range(plan["runs"]):
                runs.append(_one_run(server, work, i + 1, plan))
                _print_run(runs[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _results(runs, plan)


# -- the seeded project ---------------------------------------------------------------------

def _base() -> Path:
    """The demo district plus the OGC case's layers and the live layer, ingested (made once)."""
    return demo_project(WORK / f"base-v{VERSION}", extend=_layers)


def _layers(root: Path) -> None:
    """The OGC case's layers and the live layer an ingest keeps changing during a run."""
    from bench.ogc import _write_polygons, write_layers

    common = {"organization": ORGANIZATION, "on_error": "reject", "outside_extent": "keep",
              "access": "public"}
    write_layers(root, common)
    (root / "pipelines" / f"{LIVE}.yaml").write_text(json.dumps({
        "title": "Flächennutzung (laufend aktualisiert)", "schema": "flaechen", **common,
        "retention": 3, "source": {"path": f"data/live/{LIVE}.csv", "crs": "EPSG:4326",
                                   "geometry": {"wkt": "wkt"}}}, ensure_ascii=False),
        encoding="utf-8")
    _write_polygons(_live_csv(root), LIVE_ROWS)


def _live_csv(root: Path) -> Path:
    return root / "pipelines" / "data" / "live" / f"{LIVE}.csv"


def _warm(port: int) -> None:
    """Read every layer and build its tile index once, as a server that has been up for a while
    has (a cold server takes 1–2 s of its worker pool per layer on the first requests)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    for layer in ("punkte", "flaechen", LIVE, "pflege", "mobilitaet", "gemeinden"):
        for path in (f"/ogc/collections/{layer}/items?f=json&limit=1&bbox=13.4,51.6,13.41,51.61",
                     f"/ogc/collections/{layer}/tiles/WebMercatorQuad"):
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"warming up: {path}: HTTP {response.status}: {body[:200]!r}")
    conn.close()


# -- one run --------------------------------------------------------------------------------

@dataclass
class Run:
    number: int
    command: list[str]
    stats: list[dict[str, str]]  # locust's _stats.csv rows, "Aggregated" last
    failures: list[dict[str, str]]  # locust's _failures.csv rows
    rss_before: float
    rss_after: float
    rss_peak: float
    cpu_s: dict[str, float]  # CPU seconds used during the run: server, locust + ingests, rest
    ingest: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)  # the server's last `hub.memory` line


def _one_run(server: HubServer, work: Path, number: int, plan: dict[str, int]) -> Run:
    prefix = work / f"locust-{number}"
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE.relative_to(ROOT)),
               "--headless", "-u", str(plan["users"]), "-r", str(plan["spawn_rate"]),
               "-t", f"{plan['seconds']}s", "--stop-timeout", "10",
               "--host", f"http://127.0.0.1:{server.port}", "--csv", str(prefix),
               "--only-summary", "--loglevel", "WARNING"]
    before = _rss_mib(server.pid)
    cpu0, children0, busy0 = _cpu_s(server.pid), _children_cpu_s(), busy_cpu_s()
    clock = time.perf_counter()
    with _Sampler(server.pid) as sampler, _IngestLoop(work) as ingest:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=plan["seconds"] + 120, check=False)
    server_s, clients_s = _cpu_s(server.pid) - cpu0, _children_cpu_s() - children0
    busy = (busy_cpu_s() or 0.0) - (busy0 or 0.0)
    cpu = {"wall": time.perf_counter() - clock, "server": server_s,
           "locust_and_ingest": clients_s, "rest_of_machine": max(0.0, busy - server_s - clients_s)}
    stats_file = Path(f"{prefix}_stats.csv")
    if not stats_file.exists():
        raise RuntimeError(f"locust wrote no statistics (exit {done.returncode}):\n"
                           + "\n".join(done.stderr.strip().splitlines()[-15:]))
    time.sleep(MEMORY_LOG_SECONDS + 1)  # a `hub.memory` line written after the run
    return Run(number, command, _read_csv(stats_file), _read_csv(Path(f"{prefix}_failures.csv")),
               before, _rss_mib(server.pid), sampler.peak, {k: round(v, 1) for k, v in cpu.items()},
               ingest.summary(), _memory_line(server.output()))


def _memory_line(output: str) -> dict[str, Any]:
    """The server's last `hub.memory {json}` line (see hub/memory.py), or {}."""
    for line in reversed(output.splitlines()):
        if line.startswith("hub.memory "):
            return json.loads(line.removeprefix("hub.memory "))
    return {}


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds so far of the server and the workers it forked."""
    from bench.workers import cpu_seconds

    return cpu_seconds(pid)


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (locust, the ingests)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _rss_mib(pid: int) -> float:
    """RSS of the server: `pid` and the workers it forked (`hub serve --workers N`; pages
    they share are counted once per process, as RSS does)."""
    from bench.workers import processes

    total = 0.0
    for p in processes(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    if not total:
        raise RuntimeError(f"no VmRSS for process {pid}")
    return total


class _Sampler:
    """The highest VmRSS of a process, read every 0.5 s in a thread."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> _Sampler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, _rss_mib(self.pid))
            if self._stop.wait(0.5):
                return


class _IngestLoop:
    """`hub ingest LIVE` in its own process every INGEST_EVERY seconds (or back to back when an
    ingest takes longer), each time on a changed source (one polygon more than the time
    before), until the run ends; the last one started is waited for."""

    def __init__(self, work: Path):
        self.work = work
        self.errors: list[str] = []
        self.seconds: list[float] = []
        self._stop = threading.Event()

    def __enter__(self) -> _IngestLoop:
        self._first = self._current()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _current(self) -> int:
        from hub.store import Store

        version = Store(self.work / "store").current(LIVE)
        return 0 if version is None else version.version

    def _loop(self) -> None:
        from bench.ogc import _write_polygons

        rows = LIVE_ROWS + self._first
        while True:
            rows += 1
            source = _live_csv(self.work)
            _write_polygons(source.with_suffix(".tmp"), rows)
            source.with_suffix(".tmp").replace(source)
            start = time.perf_counter()
            done = subprocess.run([*HUB, "ingest", LIVE, "--root", str(self.work), "--store",
                                   str(self.work / "store")], cwd=ROOT, capture_output=True,
                                  text=True, timeout=600, check=False)
            self.seconds.append(time.perf_counter() - start)
            if done.returncode:
                self.errors.append((done.stderr or done.stdout).strip()[-300:])
            if self._stop.wait(max(0.0, INGEST_EVERY - self.seconds[-1])):
                return

    def summary(self) -> dict[str, Any]:
        last = self._current()
        return {"runs": len(self.seconds), "versions_committed": last - self._first,
                "first_version": self._first + 1, "last_version": last, "errors": self.errors,
                "median_s": round(median(self.seconds), 2) if self.seconds else None}


# -- the report -----------------------------------------------------------------------------

def _f(row: dict[str, str], key: str) -> float:
    value = row.get(key, "")
    return float(value) if value not in ("", "N/A") else float("nan")


def _print_run(run: Run) -> None:
    print(f"\n[load] run {run.number}: {' '.join(run.command[1:])}", flush=True)
    print(f"  {'request type':<24} {'requests':>9} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'req/s':>7}")
    for row in run.stats:
        print(f"  {row['Name']:<24} {int(_f(row, 'Request Count')):>9,} "
              f"{int(_f(row, 'Failure Count')):>7,} {_f(row, '50%'):>8.0f} "
              f"{_f(row, '99%'):>8.0f} {_f(row, 'Requests/s'):>7.1f}")
    for row in run.failures:
        print(f"  FAILED {row['Occurrences']}× {row['Method']} {row['Name']}: {row['Error']}")
    ing = run.ingest
    print(f"  server RSS {run.rss_before:.0f} → {run.rss_after:.0f} MiB (peak {run.rss_peak:.0f}); "
          f"ingest: {ing['runs']} runs, {ing['versions_committed']} versions committed "
          f"(v{ing['first_version']}–v{ing['last_version']}), median {ing['median_s']} s, "
          f"{len(ing['errors'])} failed", flush=True)
    for error in ing["errors"]:
        print(f"  INGEST FAILED: {error}")
    mem = run.memory
    if mem:
        print(f"  server memory after the run: RSS {mem['rss_mib']:.0f}, PSS {mem['pss_mib']:.0f}, "
              f"USS {mem['uss_mib']:.0f} MiB; caches (MiB held / bound): " + ", ".join(
                  f"{name} {c['bytes'] / 2**20:.1f}/{c['max_bytes'] / 2**20:.0f}"
                  for name, c in sorted(mem["caches"].items())), flush=True)
    cpu = run.cpu_s
    print(f"  CPU seconds in {cpu['wall']:.0f} s: server {cpu['server']:.0f}, locust and ingests "
          f"{cpu['locust_and_ingest']:.0f}, rest of the machine {cpu['rest_of_machine']:.0f} "
          f"({os.cpu_count()} cores: {(os.cpu_count() or 1) * cpu['wall']:.0f} available)",
          flush=True)


def _results(runs: list[Run], plan: dict[str, int]) -> list[Result]:
    total = [r.stats[-1] for r in runs]  # the "Aggregated" rows
    requests = sum(int(_f(t, "Request Count")) for t in total)
    failed = sum(int(_f(t, "Failure Count")) for t in total)
    ingest_errors = sum(len(r.ingest["errors"]) for r in runs)
    committed = [r.ingest["versions_committed"] for r in runs]
    per_type = {row["Name"]: {"p50_ms": [_f(row, "50%") for row in _rows(runs, row["Name"])],
                              "p99_ms": [_f(row, "99%") for row in _rows(runs, row["Name"])]}
                for row in runs[0].stats[:-1]}
    details = {"plan": plan, "command": runs[0].command, "per_type": per_type,
               "runs": [{"stats": r.stats, "failures": r.failures, "ingest": r.ingest,
                         "cpu_s": r.cpu_s, "memory": r.memory,
                         "rss_before_mib": round(r.rss_before, 1),
                         "rss_after_mib": round(r.rss_after, 1),
                         "rss_peak_mib": round(r.rss_peak, 1)} for r in runs]}
    who = f"{plan['users']} clients × {plan['seconds']} s × {len(runs)} run(s)"
    note = "machine shared with other work: latencies are noisy"
    target, ok = judge(("0 failed requests", failed == 0),
                       ("every ingest committed", ingest_errors == 0 and min(committed) > 0))
    results = [
        Result("load", f"failed requests ({requests:,} sent, {who})", "", failed,
               target=target, ok=ok, hard=True, note=f"ingest loop: versions committed per run "
               f"{committed}, {ingest_errors} failed", details=details),
        Result("load", "p50, all request types", "ms", median([_f(t, "50%") for t in total]),
               hub_runs=[_f(t, "50%") for t in total], note=note),
        Result("load", "p99, all request types", "ms", median([_f(t, "99%") for t in total]),
               hub_runs=[_f(t, "99%") for t in total]),
        Result("load", "throughput", "req/s", median([_f(t, "Requests/s") for t in total]),
               hub_runs=[_f(t, "Requests/s") for t in total]),
    ]
    for name, figures in per_type.items():
        results.append(Result("load", f"p99 {name} (p50 {median(figures['p50_ms']):.0f} ms)",
                              "ms", median(figures["p99_ms"]), hub_runs=figures["p99_ms"]))
    after = [r.rss_after for r in runs]
    if len(runs) >= 3:
        growth = after[2] - after[0]  # the verdict: run 1 to run 3 (more runs are shown)
        results.append(Result(
            "load", "server RSS growth, end of run 1 → end of run 3", "MiB", growth,
            target=f"≤ {RSS_GROWTH:.0%} of {after[0]:.0f} MiB", ok=growth <= RSS_GROWTH * after[0],
            hard=True, hub_runs=[round(a, 1) for a in after],
            note="RSS after each run (MiB): " + ", ".join(f"{a:.0f}" for a in after)
                 + "; peak " + ", ".join(f"{r.rss_peak:.0f}" for r in runs)))
    return results


def _rows(runs: list[Run], name: str) -> list[dict[str, str]]:
    return [row for r in runs for row in r.stats if row["Name"] == name]
