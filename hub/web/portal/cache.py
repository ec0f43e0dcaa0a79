"""Rendered portal pages kept while what they show is unchanged (the start page, the place
pages: the same for every visitor of a kind, and asked for most).

A page is kept under its path, its language, the viewer (`hub.access.Viewer`: anonymous
visitors share one; a signed-in user or a token's holder has pages of their own, so a page is
never shown to anyone who may see less than its viewer) and the name in its header; and for the
state of the database it was made from (`state`: the store's and the catalog's marks, see
`hub.db.Database.mark`). Any commit — a new version, a rollback, a catalog edit — changes the
state and empties the cache. Only pages without query parameters but `lang` are kept, and at
most `size` of them (the least recently used go first), so no request can fill memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from starlette.requests import Request

from hub.access import Viewer
from hub.memory import megabytes

CACHE_MB = 32  # default of HUB_PAGE_CACHE_MB (a start or place page: about 40 KB of HTML and
# 8 KB gzip-compressed, so some 650 pages)
OVERHEAD = 400  # bytes of a kept page besides its HTML and gzip (key, entry, objects)


@dataclass(frozen=True)
class Page:
    html: bytes
    gzipped: bytes

    @property
    def nbytes(self) -> int:
        return len(self.html) + len(self.gzipped) + OVERHEAD


@dataclass(frozen=True)
class Lookup:
    """What a request found: its key (None: a page not kept), the state it was looked up in,
    and the kept page (None: render it, then `PageCache.keep` it)."""

    key: Hashable | None
    state: Hashable = None
    page: Page | None = None


def max_bytes_from_environment() -> int:
    """HUB_PAGE_CACHE_MB (MiB, default 32; 0: keep no pages)."""
    return megabytes("HUB_PAGE_CACHE_MB", CACHE_MB)


class PageCache:
    def __init__(self, state: Callable[[], Hashable], max_bytes: int = CACHE_MB << 20):
        self.state, self.max_bytes = state, max_bytes
        self._pages: OrderedDict[Hashable, Page] = OrderedDict()
        self._bytes = 0
        self._seen: Hashable = None
        self._lock = threading.Lock()

    def lookup(self, request: Request, lang: str, viewer: Viewer,
               signed_in: str | None) -> Lookup:
        """The page kept for this request, if any (reads the database's state: call it off
        the event loop)."""
        if any(name != "lang" for name in request.query_params):
            return Lookup(None)
        key = (request.url.path, lang, viewer, signed_in)
        state = self.state()
        with self._lock:
            if state != self._seen:
                self._pages.clear()
                self._bytes = 0
                self._seen = state
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
        return Lookup(key, state, page)

    def keep(self, found: Lookup, page: Page) -> None:
        """Keep a page rendered after `found` missed — unless the state changed meanwhile
        (then it was made from data that may be newer or older than any key says)."""
        if found.key is None or page.nbytes > self.max_bytes:
            return
        with self._lock:
            if found.state != self._seen:
                return
            old = self._pages.pop(found.key, None)
            self._bytes += page.nbytes - (old.nbytes if old is not None else 0)
            self._pages[found.key] = page
            while self._bytes > self.max_bytes:
                _, dropped = self._pages.popitem(last=False)
                self._bytes -= dropped.nbytes

    @property
    def nbytes(self) -> int:
        """Bytes of the kept pages (HTML, gzip and `OVERHEAD` each)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._pages)
