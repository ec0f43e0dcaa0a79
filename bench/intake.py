"""Bringing data in through the workspace (hub.intake, /arbeitsbereich/datensaetze/{name}/daten).

`intake-preview`  preview and proposed mapping of the 1,000,000-row benchmark CSV (cp1252, `;`,
                  decimal comma, EPSG:25833): first rows, types over the whole file, geometry
                  and CRS, the mapping to the benchmark schema. In a process of its own;
                  wall time and peak memory (targets: ≤ 3 s, ≤ 500 MiB).
`intake-upload`   a 100 MB CSV uploaded through the page to a real `hub serve` of the demo
                  district (signed in, multipart, CSRF): the server's resident memory is
                  sampled while the file streams in; its growth over the memory before must stay
                  flat (≤ 64 MiB: the file is spooled and copied in 1 MiB chunks, never read whole).
"""

from __future__ import annotations

import argparse
import re
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import DATA_DIR, Result, judge, measure, median

CASES = {
    "intake-preview": "preview + proposed mapping of a 1M-row CSV (time, peak memory)",
    "intake-upload": "100 MB upload through the workspace page: server memory stays flat",
}
LARGE: frozenset[str] = frozenset()

PREVIEW_MAX_S = 3.0
PREVIEW_MAX_MIB = 500.0
UPLOAD_BYTES = 100 << 20
UPLOAD_GROWTH_MAX_MIB = 64.0
PASSWORD = "Bench Pferd Batterie"


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    if "intake-preview" in cases:
        results += _preview_case(args.repeat)
    if "intake-upload" in cases:
        results += _upload_case()
    return results


def _preview_case(repeat: int) -> list[Result]:
    from bench._csvgen import ensure_csv

    csv, _ = ensure_csv(1_000_000)
    runs = [measure("bench.intake:preview_child", timeout=600, path=str(csv))
            for _ in range(repeat)]
    seconds, memory = median([r["seconds"] for r in runs]), median(
        [r["peak_rss_mib"] for r in runs])
    wall_target, wall_ok = judge((f"≤ {PREVIEW_MAX_S:g} s", seconds <= PREVIEW_MAX_S))
    mem_target, mem_ok = judge((f"≤ {PREVIEW_MAX_MIB:g} MiB", memory <= PREVIEW_MAX_MIB))
    note = (f"{runs[0]['rows']:,} rows; geometry {runs[0]['geometry']}; CPU time (all threads) "
            f"{[r['cpu_s'] for r in runs]} s; others' CPU during the runs: "
            f"{[r.get('others_cpu_s') for r in runs]} s")
    return [Result("intake-preview", "wall", "s", seconds, target=wall_target, ok=wall_ok,
                   hub_runs=[r["seconds"] for r in runs], note=note, details={"runs": runs}),
            Result("intake-preview", "peak memory", "MiB", memory, target=mem_target,
                   ok=mem_ok, hub_runs=[r["peak_rss_mib"] for r in runs])]


def preview_child(path: str) -> dict[str, Any]:
    """In the measured child: the preview and the proposal, as the page computes them."""
    from bench.ingest import SCHEMA
    from hub.intake.preview import preview
    from hub.schema import parse_schema

    schema = parse_schema(SCHEMA, "bench", "points")
    clock, cpu = time.perf_counter(), time.process_time()
    found = preview(Path(path), "csv", Path(path).name)
    mapping = found.proposal(schema)
    found.misfits(schema, mapping)
    seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
    g = found.geometry
    return {"seconds": round(seconds, 3), "cpu_s": round(cpu, 3), "rows": found.row_count,
            "geometry": f"{g.kind} {g.lon}/{g.lat} {g.crs}", "mapped": len(mapping)}


def _upload_case() -> list[Result]:
    import httpx

    from bench._serve import HubServer, demo_project, hub_run

    root = demo_project(DATA_DIR / "demo")
    where = ("--root", str(root), "--store", str(root / "store"))
    _bench_user(root, where, hub_run)
    data = DATA_DIR / "upload-100mb.csv"
    if not data.exists() or data.stat().st_size != UPLOAD_BYTES:
        line = b"12345;Hauptstra\xdfe 1;Finsterwalde;Arztpraxis;3;12,5;398765,12;5712345,67\r\n"
        with open(data, "wb") as out:
            out.write(b"id;name;ort;kategorie;anzahl;wert;rechtswert;hochwert\r\n")
            while out.tell() + len(line) <= UPLOAD_BYTES:
                out.write(line)
            out.write(b"x" * (UPLOAD_BYTES - out.tell()))
    page = "/arbeitsbereich/datensaetze/pflege/daten"
    with HubServer(root, HUB_MAX_UPLOAD_BYTES=str(UPLOAD_BYTES + (1 << 20))) as server, \
            httpx.Client(base_url=server.url, timeout=600) as browser:
        token = _csrf(browser.get("/anmelden").text)
        browser.post("/anmelden", data={"name": "bench", "password": PASSWORD, "csrf": token})
        token = _csrf(browser.get(page).text)
        before = _rss(server.pid)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss(server.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        clock = time.perf_counter()
        with open(data, "rb") as fh:
            answer = browser.post(page + "/dateien",
                                  data={"csrf": token}, files={"dateien": ("gross.csv", fh)})
        seconds = time.perf_counter() - clock
        done.set()
        sampler.join()
    if answer.status_code != 303:
        raise RuntimeError(f"upload refused: {answer.status_code} {answer.text[:300]}")
    growth = peak[0] - before
    target, ok = judge((f"≤ {UPLOAD_GROWTH_MAX_MIB:g} MiB", growth <= UPLOAD_GROWTH_MAX_MIB))
    return [Result("intake-upload", "server memory growth", "MiB", round(growth, 1),
                   target=target, ok=ok, hard=True,
                   note=f"100 MiB in {seconds:.1f} s; server RSS {before:.0f} → peak "
                        f"{peak[0]:.0f} MiB")]


def _bench_user(root: Path, where: tuple[str, ...], hub_run: Any) -> None:
    from hub.accounts import Accounts
    from hub.catalog import open_catalog
    from hub.config import load_settings

    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    if "bench" not in {u.name for u in accounts.users()}:
        hub_run("user", "add", "bench", "--org", "sozialamt", "--role", "editor", *where)
    accounts.set_password("bench", PASSWORD)


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
