"""The portal's curated map pages on the demo district (pipelines ingested, catalog loaded,
the inventory imported).

`portal-maps`  Per map page (/karten/breitband, /karten/pflege, /karten/mobilitaet): the bytes
               of a first load without the map data (the gzip-compressed HTML and every
               stylesheet and script the page links, as the server sends them), and the
               time until the first features are drawn in Debian's chromium with the network
               throttled to 10 Mbit/s and 100 ms latency (Chrome DevTools network emulation;
               median of 3 cold loads).
Targets of issue 11: ≤ 200 KB on first load excluding map data; first features within 2 s.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import time
from pathlib import Path

from bench._harness import Result, judge
from bench._serve import HubServer
from bench.portal import _demo, _sent

CASES = {"portal-maps": "demo district: curated map pages — first-load bytes without map data, "
                        "first features under 10 Mbit/s + 100 ms"}
LARGE: frozenset[str] = frozenset()
MAPS = ("/karten/breitband", "/karten/pflege", "/karten/mobilitaet")
ASSET = re.compile(r'(?:href|src)="(/static/[^"?]+\.(?:css|js)(?:\?v=[0-9a-f]+)?)"')
BUDGET_KB = 200
FIRST_FEATURES_S = 2.0
CHROMIUM = Path("/usr/bin/chromium")
THROTTLE = {"offline": False, "latency": 100, "downloadThroughput": 10_000_000 / 8,
            "uploadThroughput": 10_000_000 / 8}
LOADS = 3


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with HubServer(_demo()) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        for path in MAPS:
            conn.request("GET", path)
            html = conn.getresponse().read().decode()
            assets = sorted(set(ASSET.findall(html)))
            sent = (_sent(conn, path) + sum(_sent(conn, a) for a in assets)) / 1024
            t, ok = judge((f"≤ {BUDGET_KB} KB", sent <= BUDGET_KB))
            results.append(Result("portal-maps", f"{path}: first load", "KB", sent, target=t,
                                  ok=ok, note="HTML gzip + " + ", ".join(
                                      a.split("?")[0].rsplit("/", 1)[1] for a in assets) + " gzip"))
        conn.close()
        if CHROMIUM.exists():
            for path, seconds in _first_features(server.port).items():
                t, ok = judge((f"≤ {FIRST_FEATURES_S:g} s", seconds <= FIRST_FEATURES_S))
                results.append(Result("portal-maps", f"{path}: first features, throttled", "s",
                                      seconds, target=t, ok=ok,
                                      note=f"median of {LOADS} cold loads, 10 Mbit/s, 100 ms"))
    return results


def _first_features(port: int) -> dict[str, float]:
    """Seconds from navigation until the map holds its features (`#map.loaded`), per page."""
    from playwright.sync_api import sync_playwright

    found: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        for path in MAPS:
            times = []
            for _ in range(LOADS):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                cdp.send("Network.emulateNetworkConditions", THROTTLE)
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}{path}")
                page.wait_for_selector("#map.loaded", timeout=60_000)
                times.append(time.perf_counter() - start)
                context.close()
            found[path] = statistics.median(times)
        browser.close()
    return found
