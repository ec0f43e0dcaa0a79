"""The citizen portal over HTTP on the demo district (pipelines ingested, catalog loaded, the
inventory imported).

`portal-pages`  Bytes transferred on a first load of the start page, a place page and a dataset
                page (the gzip-compressed HTML as the server sends it, plus the CSS and JS as
                served) and the server's p50 per page at 8 concurrent clients.
Targets of issue 11: ≤ 60 KB on first load, p50 ≤ 20 ms at 8 clients.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
from pathlib import Path

from bench._harness import DATA_DIR, Result, judge
from bench._serve import HubServer, demo_project
from bench.ckan import _timed

CASES = {"portal-pages": "demo district: start, place and dataset page — bytes on first load "
                         "(gzip), server p50 at 8 clients"}
LARGE: frozenset[str] = frozenset()
WORK = DATA_DIR / "portal"
VERSION = 1  # bump when the seeded project changes
CLIENTS = 8
PAGES = {"start page": "/", "place page": "/orte/herzberg-elster",
         "dataset page": "/datasets/pflege"}
ASSETS = ("/static/portal.css", "/static/portal.js")
BUDGET_KB = 60
P50_MS = 20


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    root = _demo()
    results: list[Result] = []
    with HubServer(root) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        assets = sum(_sent(conn, path) for path in ASSETS)
        for label, path in PAGES.items():
            sent = (_sent(conn, path) + assets) / 1024
            t, ok = judge((f"≤ {BUDGET_KB} KB", sent <= BUDGET_KB))
            results.append(Result("portal-pages", f"{label}: first load", "KB", sent,
                                  target=t, ok=ok,
                                  note=f"{path} gzip + CSS and JS as served"))
            single = statistics.median(_timed(server.port, [path], 1, 100))
            results.append(Result("portal-pages", f"{label}: p50, 1 client", "ms", single,
                                  note="for information"))
            times = _timed(server.port, [path], CLIENTS, 50)
            p50 = statistics.median(times)
            t, ok = judge((f"p50 ≤ {P50_MS} ms", p50 <= P50_MS))
            results.append(Result("portal-pages", f"{label}: p50, {CLIENTS} clients", "ms", p50,
                                  target=t, ok=ok, note=f"{len(times)} requests of {path}"))
        conn.close()
    return results


def _sent(conn: http.client.HTTPConnection, path: str) -> int:
    """Bytes of the body as sent to a browser that accepts gzip."""
    conn.request("GET", path, headers={"Accept-Encoding": "gzip, deflate, br"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}: {body[:200]!r}")
    return len(body)


def _demo() -> Path:
    """The demo district as `make demo` leaves it (made once)."""
    return demo_project(WORK / f"base-v{VERSION}")
