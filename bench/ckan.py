"""CKAN Action API over HTTP: a hub serving a seeded catalog of 10,000 datasets.

`ckan-search`  package_search p50/p95 with 8 concurrent clients (keep-alive connections, one
               client process) over a mix of free text, fq, facets and sorts; and deep paging
               (`start=9000`) against the first page with one client.
`ckan-show`    package_show p50 with one client and with 8 concurrent clients;
               current_package_list_with_resources with limit=1000.
There is no peer to run beside it (a CKAN needs Solr and PostgreSQL); the figures are judged
against the issue's targets.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import statistics
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from bench._harness import Result, judge
from bench._serve import HubServer, add_catalog
from bench.catalog import WORDS, _catalog

CASES = {
    "ckan-search": "10k datasets over HTTP: package_search p50/p95 at 8 clients; deep paging",
    "ckan-show": "10k datasets over HTTP: package_show p50; current_package_list (1000)",
}
LARGE: frozenset[str] = frozenset()
CLIENTS = 8


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="bench-ckan-"))
    try:
        _catalog(work, 10_000, 1.0)
        add_catalog(work)
        with HubServer(work) as server:
            port = server.port
            results: list[Result] = []
            if "ckan-search" in cases:
                results += _search(port)
            if "ckan-show" in cases:
                results += _show(port)
            return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}: {body[:200]!r}")
    return body


def _timed(port: int, paths: list[str], clients: int, rounds: int) -> list[float]:
    """Milliseconds per request, `clients` threads each walking `paths` `rounds` times."""
    times: list[float] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        mine = []
        for i in range(rounds * len(paths)):
            path = paths[(i + offset) % len(paths)]
            start = time.perf_counter()
            _get(conn, path)
            mine.append((time.perf_counter() - start) * 1000)
        conn.close()
        with lock:
            times.extend(mine)

    for path in paths[:20]:  # warm up (first search after start builds the snapshot)
        _get(http.client.HTTPConnection("127.0.0.1", port), path)
    threads = [threading.Thread(target=client, args=(i * 7,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def _p(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _search_paths() -> list[str]:
    rng = random.Random(7)
    params = []
    for i in range(40):
        w = rng.sample(WORDS, 2)
        params += [{"q": w[0]}, {"q": f"{w[0]} {w[1]}", "rows": "20"},
                   {"fq": f"groups:{rng.choice(['tran', 'soci', 'envi'])}",
                    "sort": "metadata_modified desc"},
                   {"q": f"title:{w[1]}", "facet.field": '["organization","groups","tags"]'},
                   {"q": "*:*", "fq": "metadata_modified:[2020-01-01T00:00:00Z TO NOW]",
                    "start": str(i * 10)},
                   {"q": f"{w[0]} OR {w[1]}", "sort": "name asc"}]
    return [f"/api/3/action/package_search?{urllib.parse.urlencode(p)}" for p in params]


def _search(port: int) -> list[Result]:
    times = _timed(port, _search_paths(), CLIENTS, 4)
    p50, p95 = statistics.median(times), _p(times, 0.95)
    t50, ok50 = judge(("p50 ≤ 10 ms", p50 <= 10))
    t95, ok95 = judge(("p95 ≤ 30 ms", p95 <= 30))
    first = _timed(port, ["/api/3/action/package_search?q=*:*&rows=10&start=0"], 1, 200)
    deep = _timed(port, ["/api/3/action/package_search?q=*:*&rows=10&start=9000"], 1, 200)
    f50, d50 = statistics.median(first), statistics.median(deep)
    note = f"{len(times)} requests by {CLIENTS} concurrent clients, 10,000 datasets"
    td, okd = judge(("start=9000 ≤ 2× first page", d50 <= 2 * f50))
    return [Result("ckan-search", f"package_search p50, {CLIENTS} clients", "ms", p50,
                   target=t50, ok=ok50, note=note),
            Result("ckan-search", f"package_search p95, {CLIENTS} clients", "ms", p95,
                   target=t95, ok=ok95, note=note),
            Result("ckan-search", "deep page (start=9000) p50", "ms", d50, f50, d50 / f50,
                   "hub/baseline", td, okd, note="baseline: the first page (start=0)")]


def _show(port: int) -> list[Result]:
    names = [f"ds-{i}" for i in range(0, 10_000, 37)]
    paths = [f"/api/3/action/package_show?id={n}" for n in names]
    single = _timed(port, paths, 1, 2)
    many = _timed(port, paths, CLIENTS, 1)
    s50, m50 = statistics.median(single), statistics.median(many)
    t, ok = judge(("p50 ≤ 5 ms", s50 <= 5))
    conn = http.client.HTTPConnection("127.0.0.1", port)
    lists = []
    for page in range(1, 6):
        start = time.perf_counter()
        body = _get(conn, f"/api/3/action/current_package_list_with_resources?limit=1000"
                          f"&offset={page * 1000}")
        lists.append((time.perf_counter() - start) * 1000)
        assert len(json.loads(body)["result"]) == 1000
    l50 = statistics.median(lists)
    tl, okl = judge(("≤ 300 ms", l50 <= 300))
    return [Result("ckan-show", "package_show p50, 1 client", "ms", s50, target=t, ok=ok,
                   note=f"{len(single)} requests"),
            Result("ckan-show", f"package_show p50, {CLIENTS} clients", "ms", m50,
                   note=f"{len(many)} requests, for information"),
            Result("ckan-show", "current_package_list_with_resources, limit=1000", "ms", l50,
                   target=tl, ok=okl, note="median of 5 pages of 1,000 full package dicts")]
