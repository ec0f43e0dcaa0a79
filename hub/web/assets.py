"""The portal's static files (`/static/…`): gzip-compressed once and kept in memory, with an
ETag, and cacheable for a year when asked for by their versioned URL.

    <script src="{{ static('maps.js') }}">   ->   /static/maps.js?v=3f9c2a71d0b4

`url(name)` appends the first 12 hex digits of the file's SHA-256: a request whose `v` is the
file's current version gets `Cache-Control: public, max-age=31536000, immutable`; any other
request (no `v`, an old one) gets `no-cache`, so a browser revalidates it by its ETag (304).
Text files (CSS, JS, SVG, JSON, …) are sent gzip-compressed to a client that accepts gzip;
images that are compressed already are sent as they are.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from hub.api.downloads.http import accepts_gzip
from hub.web.portal import STATIC_DIR

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
COMPRESSIBLE = {".css", ".js", ".svg", ".json", ".txt", ".html", ".map", ".md"}
GZIP_LEVEL = 9  # compressed once per file, so the smallest result is worth its time
VERSION_DIGITS = 12


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes, their gzip form (None if not worth it) and version."""

    body: bytes
    gzipped: bytes | None
    version: str
    media_type: str
    stamp: tuple[int, int]  # (mtime_ns, size) of the file read

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @classmethod
    def read(cls, path: Path, stamp: tuple[int, int]) -> Asset:
        body = path.read_bytes()
        squeezed = (gzip.compress(body, GZIP_LEVEL, mtime=0)
                    if path.suffix.lower() in COMPRESSIBLE else None)
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media in ("application/javascript", "text/javascript"):
            media += "; charset=utf-8"
        return cls(body, squeezed if squeezed and len(squeezed) < len(body) else None,
                   hashlib.sha256(body).hexdigest()[:VERSION_DIGITS], media, stamp)


class Assets(StaticFiles):
    """`StaticFiles` (its path checks and 404s) answering from the in-memory `Asset`s."""

    def __init__(self, directory: Path = STATIC_DIR):
        super().__init__(directory=directory)
        self._kept: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def asset(self, name: str) -> Asset | None:
        """The file `name` (relative to the folder) as served, or None when there is none."""
        full, stat = self.lookup_path(name)
        if stat is None or not os.path.isfile(full):
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            kept = self._kept.get(name)
        if kept is not None and kept.stamp == stamp:
            return kept
        fresh = Asset.read(Path(full), stamp)
        with self._lock:
            self._kept[name] = fresh
        return fresh

    def url(self, name: str) -> str:
        """The versioned URL of a static file (a missing file is a programming error)."""
        found = self.asset(name)
        if found is None:
            raise FileNotFoundError(f"no static file {name!r} in {self.directory}")
        return f"/static/{name}?v={found.version}"

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return await super().get_response(path, scope)  # 405, as StaticFiles answers
        found = self.asset(path)
        if found is None:
            return await super().get_response(path, scope)  # 404 (or a directory's answer)
        request = Request(scope)
        cache = IMMUTABLE if request.query_params.get("v") == found.version else REVALIDATE
        headers = {"ETag": found.etag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
        if found.etag in _tags(Headers(scope=scope).get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        body = found.body
        if found.gzipped is not None and accepts_gzip(request):
            body, headers["Content-Encoding"] = found.gzipped, "gzip"
        return Response(body, media_type=found.media_type, headers=headers)


def _tags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compared by their value)."""
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


ASSETS = Assets()
url = ASSETS.url
