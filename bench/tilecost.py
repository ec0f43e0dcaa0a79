"""Tile cost: CPU time of rendering one vector tile, per zoom, on the load case's polygon layers.

`tile-cost`  On the store `python -m bench load` seeds (made once): `flaechen` (50,000 polygons)
             and `nutzung` (20,000 polygons) read into memory, then up to `PER_ZOOM` tiles per
             zoom 5–13 (spread over the layer's tileMatrixSetLimits) rendered with
             `hub.api.ogc.tiles.render`, each three times with the garbage collector paused;
             the figure per tile is the least CPU time (`time.process_time`) of the three, per
             zoom the largest of those. Also the CPU time of pre-rendering a version's zooms
             0–10 (`hub.api.ogc.prerender.low_tiles`), as the server does after a commit.
             No baseline: compare with the figures in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

from bench._harness import Result

CASES = {"tile-cost": "CPU ms per uncached polygon tile at zooms 5-13 (flaechen, nutzung) and "
                      "per pre-rendered version (zooms 0-10)"}
LARGE: frozenset[str] = frozenset()
LAYERS = ("flaechen", "nutzung")
ZOOMS = range(5, 14)
PER_ZOOM = 6


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    from bench.load import _base
    from hub.api.ogc import tiles
    from hub.api.ogc.layer import LayerCache
    from hub.api.ogc.prerender import low_tiles
    from hub.store.versions import Store

    store = Store(_base() / "store")
    results = []
    for name in LAYERS:
        version = store.current(name)
        assert version is not None
        layer = LayerCache().layer(version)
        tiles.source(layer)  # built once per version: not part of a tile's cost
        per_zoom: dict[str, Any] = {}
        gc.disable()
        try:
            for z, span in zip(ZOOMS, tiles.limits(version.bbox, ZOOMS), strict=True):
                cells = [(x, y) for x in range(span["minTileCol"], span["maxTileCol"] + 1)
                         for y in range(span["minTileRow"], span["maxTileRow"] + 1)]
                picked = cells[::max(1, len(cells) // PER_ZOOM)][:PER_ZOOM]
                costs, sizes = [], []
                for x, y in picked:
                    best = float("inf")
                    for _ in range(3):
                        start = time.process_time()
                        data = tiles.render(layer, name, z, x, y)
                        best = min(best, time.process_time() - start)
                    costs.append(best * 1000)
                    sizes.append(len(data))
                per_zoom[str(z)] = {"max_ms": round(max(costs), 1), "tiles": len(picked),
                                    "largest_kb": round(max(sizes) / 1000)}
            start, count = time.process_time(), 0
            for z, x, y in low_tiles(version, 10):
                tiles.render(layer, name, z, x, y)
                count += 1
            prerender_s = time.process_time() - start
        finally:
            gc.enable()
        worst = max(v["max_ms"] for v in per_zoom.values())
        results.append(Result("tile-cost", f"{name}: slowest tile z5-13", "ms CPU", worst,
                              note="largest per zoom in details", details=per_zoom))
        results.append(Result("tile-cost", f"{name}: pre-render zooms 0-10 ({count} tiles)",
                              "s CPU", round(prerender_s, 2)))
    return results
