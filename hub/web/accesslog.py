"""The access log: one line per request, with what operations needs and nothing personal.

Logged (logger `hub.access`, level INFO): time (UTC), method, path and query as sent (still
percent-encoded, so a line can never be split), status, bytes of the response body, duration.
Values of query parameters that may carry a secret (`token`, `api_key`, `key`, `password`, …)
are replaced by `***`. Never logged: headers (so no `Authorization`, API keys or cookies),
request bodies, client addresses, user agents.

`hub serve` writes it to standard error (HUB_ACCESS_LOG unset or `-`), to a file (a path), or
not at all (`off`). Lines go through a bounded queue to a writer thread, so a slow or blocked
log destination never stalls the server; lines that do not fit are counted and the count is
logged when the destination takes lines again.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.errors import HubError

log = logging.getLogger("hub.access")
SECRET_PARAMETERS = {"token", "api_token", "apitoken", "api_key", "apikey", "key",
                     "access_token", "password", "secret", "signature", "session"}
MAX_TARGET = 1000  # characters of path and query in a line


def target(scope: Scope) -> str:
    """Path and query of a request as sent, secrets masked, length capped."""
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        pairs = []
        for pair in query.split("&"):
            name, equals, _ = pair.partition("=")
            masked = equals and unquote(name).strip().lower() in SECRET_PARAMETERS
            pairs.append(f"{name}=***" if masked else pair)
        path += "?" + "&".join(pairs)
    return path if len(path) <= MAX_TARGET else path[:MAX_TARGET] + "…"


class AccessLog:
    """A pure ASGI middleware (streamed responses stay streamed) that logs each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, size = time.perf_counter(), 0, 0

        async def counted(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except BaseException:
            status = status or 500
            raise
        finally:
            if log.isEnabledFor(logging.INFO):  # HUB_ACCESS_LOG=off: not even the target
                log.info("%s %s %d %dB %.1fms", scope["method"], target(scope), status, size,
                         (time.perf_counter() - started) * 1000)


class _QueuedWriter(logging.Handler):
    """Formats on the caller's thread, writes on its own; never blocks the caller."""

    def __init__(self, fd: int, capacity: int = 10_000) -> None:
        super().__init__()
        self.fd, self.lines, self.dropped = fd, queue.Queue[str](capacity), 0
        threading.Thread(target=self._write, name="hub-access-log", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.put_nowait(self.format(record) + "\n")
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        while True:
            line = self.lines.get()
            if self.dropped:
                dropped, self.dropped = self.dropped, 0
                line = f"({dropped} access log lines dropped: the log was not taken)\n" + line
            data = line.encode("utf-8", "replace")
            while data:
                data = data[os.write(self.fd, data):]


def configure(destination: str) -> None:
    """Send the access log to stderr (`-`), a file (a path, appended to) or nowhere (`off`)."""
    log.propagate = False
    log.handlers.clear()
    if destination.lower() == "off":
        log.disabled = True
        return
    if destination in ("", "-"):
        fd = os.dup(2)
    else:
        try:
            fd = os.open(destination, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise HubError(f"HUB_ACCESS_LOG={destination!r}: cannot open the access log: "
                           f"{exc.strerror}") from None
    handler = _QueuedWriter(fd)
    formatter = logging.Formatter("%(asctime)sZ %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.disabled = False
