"""The low-zoom tiles of a version, rendered once in the background, off the request path.

A low-zoom tile covers much of a layer, so it is the most expensive one to render (up to a few
hundred ms of CPU for a dense polygon layer) and among the first a map asks for; every new
version makes them uncached again. So when a version is first read into memory for a request,
and when a collection whose earlier version was read gets a new current version (a commit, a
rollback), one background thread renders its tiles from zoom 0 up to `HUB_OGC_TILES_PRERENDER`
(default 10; -1: none) into the tile cache — at most `MAX_TILES` per version, lowest zooms
first. A request for a tile that is being rendered waits for it on the event loop
(`TileCache.make` renders each tile once); one that comes before the thread renders it itself.
A version that is superseded while its tiles are rendered is given up.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Callable, Iterator

from hub.api.ogc import tiles
from hub.api.ogc.layer import Layer
from hub.store.versions import Version

log = logging.getLogger(__name__)

MAX_TILES = 256  # per version: a layer spanning a country stops below zoom 10


def highest_zoom(top: int) -> int:
    """HUB_OGC_TILES_PRERENDER (-1 to `top`, default 10 or `top` if lower)."""
    raw = os.environ.get("HUB_OGC_TILES_PRERENDER")
    if raw is None:
        return min(10, top)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"HUB_OGC_TILES_PRERENDER: {raw!r} is not a whole number") from None
    if not -1 <= value <= top:
        raise ValueError(f"HUB_OGC_TILES_PRERENDER must be between -1 (none) and {top}")
    return value


def low_tiles(version: Version, top: int, max_tiles: int = MAX_TILES
              ) -> Iterator[tuple[int, int, int]]:
    """(z, x, y) of the version's tiles from zoom 0 to `top`, within its tileMatrixSetLimits,
    zoom by zoom while the total stays within `max_tiles`."""
    total = 0
    for span in tiles.limits(version.bbox, range(top + 1)):
        cols = range(span["minTileCol"], span["maxTileCol"] + 1)
        rows = range(span["minTileRow"], span["maxTileRow"] + 1)
        total += len(cols) * len(rows)
        if total > max_tiles:
            return
        z = int(span["tileMatrix"])
        for x in cols:
            for y in rows:
                yield z, x, y


class Prerender:
    """Queues versions whose low-zoom tiles are to be rendered; one thread renders them.

    `load(version)` gives the version's layer (read and verified as for a request)."""

    def __init__(self, cache: tiles.TileCache, load: Callable[[Version], Layer], top: int):
        self.cache, self.load, self.top = cache, load, top
        self._current: dict[str, int] = {}  # dataset -> the version last queued
        self._queue: collections.deque[Version] = collections.deque()
        self._lock = threading.Lock()
        self._running = False
        self._idle = threading.Event()
        self._idle.set()

    def seen(self, version: Version, loaded: bool = False) -> None:
        """A request met `version` as its collection's current one; `loaded`: its layer is in
        memory. Queued when loaded, or when an earlier version of the dataset was queued."""
        if self.top < 0:
            return
        with self._lock:
            last = self._current.get(version.dataset)
            if last == version.version or (last is None and not loaded):
                return
            self._current[version.dataset] = version.version
            self._queue.append(version)
            if not self._running:
                self._running = True
                self._idle.clear()
                threading.Thread(target=self._drain, name="tile-prerender", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether every queued version was rendered within `timeout` seconds."""
        return self._idle.wait(timeout)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._running = False
                    self._idle.set()
                    return
                version = self._queue.popleft()
            try:
                self._render(version)
            except Exception as exc:  # a damaged or removed version: requests will say so
                log.warning("pre-rendering the tiles of %s v%s failed: %s", version.dataset,
                            version.version, exc)

    def _superseded(self, version: Version) -> bool:
        with self._lock:
            return self._current.get(version.dataset) != version.version

    def _render(self, version: Version) -> None:
        if self._superseded(version):
            return
        layer = self.load(version)
        name = version.dataset
        for z, x, y in low_tiles(version, self.top):
            if self._superseded(version):
                return
            self.cache.make((name, version.version, z, x, y),
                            lambda z=z, x=x, y=y: tiles.render(layer, name, z, x, y))
