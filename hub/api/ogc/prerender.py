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

With a layer cache folder (a server's), the tiles are rendered once per machine, not per
worker: the first worker writes them to one file there (`hub.api.ogc.tilefiles`), drops them
from its tile cache, and every worker serves them from that file, mapped (`tile`), so they
take no private memory in any worker.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from hub import memory
from hub.api.ogc import tilefiles, tiles
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

    `load(version)` gives the version's layer (read and verified as for a request); with a
    `folder`, the tiles go to a file there, shared by the workers (see the module's text)."""

    def __init__(self, cache: tiles.TileCache, load: Callable[[Version], Layer], top: int,
                 folder: Path | None = None):
        self.cache, self.load, self.top, self.folder = cache, load, top, folder
        self._files: dict[str, tuple[int, tilefiles.TileFile]] = {}  # dataset -> its file
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

    def tile(self, key: tuple[str, int, int, int, int]) -> bytes | None:
        """The tile (dataset, version, z, x, y) from the version's file (None: not there)."""
        found = self._files.get(key[0])
        if found is None or found[0] != key[1]:
            return None
        return found[1].get(key[2:])

    @property
    def nbytes(self) -> int:
        """Bytes of the files mapped (in the page cache, shared by the workers)."""
        return sum(file.nbytes for _, file in list(self._files.values()))

    @property
    def max_bytes(self) -> int:
        """At most one file per dataset in use, of at most MAX_TILES tiles."""
        return len(self._files) * MAX_TILES * tiles.MAX_TILE_BYTES

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
        if self.folder is None:
            self._into_cache(version)
            return
        path = tilefiles.path_of(self.folder, version, tiles.ENCODER, self.top)
        found = tilefiles.TileFile.open(path)
        if found is None:
            with tilefiles.exclusive(path):  # one worker renders, the others wait for its file
                found = tilefiles.TileFile.open(path)
                if found is None:
                    rendered = self._into_cache(version)
                    if rendered is None:
                        return
                    tilefiles.write(path, rendered)
                    found = tilefiles.TileFile.open(path)
        if found is None:
            return
        with self._lock:
            self._files[version.dataset] = (version.version, found)
        for z, x, y in low_tiles(version, self.top):  # served from the file from now on
            self.cache.discard((version.dataset, version.version, z, x, y))
        memory.trim()  # rendering freed much more than it kept

    def _into_cache(self, version: Version) -> dict[tuple[int, int, int], bytes] | None:
        """The low-zoom tiles rendered into the tile cache (None: superseded meanwhile)."""
        layer = self.load(version)
        name = version.dataset
        out = {}
        for z, x, y in low_tiles(version, self.top):
            if self._superseded(version):
                return None
            out[z, x, y] = self.cache.make(
                (name, version.version, z, x, y),
                lambda z=z, x=x, y=y: tiles.render(layer, name, z, x, y))
        return out
