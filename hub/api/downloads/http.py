"""HTTP caching for downloads: validators, conditional requests, Cache-Control, gzip.

A version never changes, so its validators are known before any byte is produced: the ETag
comes from the version's checksum, the format (and dialect, and encoding), the licence terms
written into the file and the encoder revision; Last-Modified is the time the version was
committed. A conditional request is answered with 304 before any data is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import threading
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from starlette.requests import Request

from hub.api.downloads.formats import REVISION, Terms
from hub.store.versions import Version

IMMUTABLE = "public, max-age=31536000, immutable"  # a version's URL: the bytes never change
REVALIDATE = "no-cache"  # "latest": may be stored, but asked again every time
PRIVATE = "private, no-store"  # data only some may see: kept by no cache at all
GZIP_LEVEL = 1  # ~5:1 on GeoJSON at > 200 MB/s; level 6 gains ~10 % at a third of the speed


def etag(version: Version, fmt: str, terms: Terms, variant: str = "",
         gzip: bool = False) -> str:
    parts = [version.checksum[:20], f"v{version.version}", fmt, variant, terms.digest,
             f"r{REVISION}", "gz" if gzip else ""]
    return '"' + ".".join(p for p in parts if p) + '"'


def moment(version: Version) -> dt.datetime:
    """When the version was committed, to the second (HTTP dates have no fractions)."""
    stamp = dt.datetime.fromisoformat(version.finished.replace("Z", "+00:00"))
    return stamp.astimezone(dt.UTC).replace(microsecond=0)


def http_date(when: dt.datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


def _tags(header: str) -> list[str]:
    """Entity tags of an If-None-Match header, weak prefixes removed (weak comparison)."""
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def not_modified(request: Request, tag: str, modified: dt.datetime) -> bool:
    """Whether the client's copy is current (RFC 9110 §13.2.2: If-None-Match wins)."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = _tags(match)
        return "*" in tags or tag in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        client = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # an unreadable date is ignored, as the RFC says
    if client.tzinfo is None:
        client = client.replace(tzinfo=dt.UTC)
    return modified <= client


def accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding allows gzip (q > 0, by name or by `*`)."""
    header = request.headers.get("accept-encoding", "")
    weights: dict[str, float] = {}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        params = params.strip().replace(" ", "")
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if name:
            weights[name.strip().lower()] = q
    if "gzip" in weights:
        return weights["gzip"] > 0
    return weights.get("*", 0.0) > 0


def gzipped(chunks: Iterable[bytes], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    """Compress a stream of chunks into one gzip member (no file name, mtime 0)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = packer.compress(chunk)
        if out:
            yield out
    yield packer.flush()


_DONE = object()


async def produced(chunks: Iterator[bytes], depth: int = 2) -> AsyncIterator[bytes]:
    """The chunks of a blocking generator, made in one thread of their own, `depth` ahead.

    One thread per download instead of a thread-pool hop per chunk: Arrow's allocator keeps
    freed memory per thread, so a download hopping over the pool's threads would leave a
    batch's worth of memory in each of them. A client that goes away stops the thread at the
    next chunk.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    def hand_over(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        try:
            for chunk in chunks:
                while not room.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                hand_over(chunk)
            hand_over(_DONE)
        except BaseException as exc:  # re-raised in the response
            hand_over(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    threading.Thread(target=produce, name="download", daemon=True).start()
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item
    finally:
        stop.set()
