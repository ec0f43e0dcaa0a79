"""Counting usage (hub.usage) as requests pass: a pure ASGI middleware that tells from a
request's path which dataset it used and how, and counts it once the answer succeeded (2xx or
304: what a caller may not see answers 404 and is not counted). It reads nothing else of the
request — no address, no header — and adds a dictionary increment to each request.

    view       /datasets/{name} (the portal's dataset page), /karten/daten/{name} (map viewer)
    download   /downloads/{name}/…, /dataset/{id}/resource/{res}/download/{file}
    api        /ogc/collections/{name}/items[/{id}], /api/datasets/{name},
               CKAN package_show (/api/3/action/package_show?id=…)
    tile       /ogc/collections/{name}/tiles/{tms}/{z}/{y}/{x}

The counts are saved every `FLUSH_SECONDS` and when the server stops (lifespan shutdown),
in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import usage
from hub.db import Database

log = logging.getLogger("hub.usage")
FLUSH_SECONDS = 60.0
CKAN_SHOW = ("/api/3/action/package_show", "/api/action/package_show")


def classify(method: str, path: str, query: bytes) -> tuple[str, str] | None:
    """(dataset, kind) of a request that uses one dataset, else None."""
    if method not in ("GET", "POST"):
        return None
    if path.startswith("/ogc/collections/"):
        parts = path.split("/")  # "", ogc, collections, name, items|tiles, …
        if len(parts) in (5, 6) and parts[4] == "items":
            return _named(parts[3], "api")
        if len(parts) == 9 and parts[4] == "tiles":
            return _named(parts[3], "tile")
        return None
    if path in CKAN_SHOW:
        ident = dict(parse_qsl(query.decode("latin-1"))).get("id", "")
        return _named(ident, "api")
    if method != "GET":
        return None
    if path.startswith("/downloads/"):
        parts = path.split("/")
        return _named(parts[2], "download") if len(parts) == 4 else None
    if path.startswith("/datasets/"):
        parts = path.split("/")
        return _named(parts[2], "view") if len(parts) == 3 else None
    if path.startswith("/karten/daten/"):
        parts = path.split("/")
        return _named(parts[3], "view") if len(parts) == 4 else None
    if path.startswith("/api/datasets/"):
        parts = path.split("/")
        return _named(parts[3], "api") if len(parts) == 4 else None
    if path.startswith("/dataset/") and "/download/" in path:
        parts = path.split("/")  # "", dataset, id, resource, res, download, file
        if len(parts) == 7 and parts[3] == "resource" and parts[5] == "download":
            return _named(parts[2], "download")
    return None


def _named(name: str, kind: str) -> tuple[str, str] | None:
    name = unquote(name)
    return (name, kind) if name and len(name) <= 200 else None


class UsageCounter:
    """Counts each successful request of a dataset in `tally`; saves the counts to `db`."""

    def __init__(self, app: ASGIApp, db: Database, tally: usage.Tally | None = None,
                 flush_seconds: float = FLUSH_SECONDS) -> None:
        self.app, self.db = app, db
        self.tally = tally or usage.Tally()
        self.flush_seconds = flush_seconds
        self._flusher: asyncio.Task | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        used = classify(scope["method"], scope["path"], scope.get("query_string", b""))
        if used is None:
            await self.app(scope, receive, send)
            return
        tally = self.tally

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and (
                    200 <= message["status"] < 300 or message["status"] == 304):
                tally.count(*used)
            await send(message)

        await self.app(scope, receive, counted)

    def _lifespan(self, receive: Receive) -> Receive:
        async def received() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._flusher = asyncio.create_task(self._flush_now_and_then())
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._flusher
                await self.flush()
            return message
        return received

    async def _flush_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        """Save the counts so far (in a worker thread); kept for the next try on failure."""
        counts = self.tally.take()
        if not counts:
            return
        try:
            await asyncio.to_thread(usage.save, self.db, counts)
        except Exception as exc:  # the database is busy or gone: keep counting, retry later
            log.warning("usage counts not saved yet (%s): kept for the next try", exc)
            self.tally.give_back(counts)
