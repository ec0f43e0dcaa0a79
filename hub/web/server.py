"""`hub serve`'s HTTP server: uvicorn (httptools, uvloop), guarded against slow and idle clients.

uvicorn times a connection out only while it idles between two requests. A client that
connects and sends nothing, or sends its request head or body a byte at a time, keeps its
connection (and a file descriptor) for ever, and about a thousand of them stop the server.
`GuardedProtocol` adds the missing deadlines and a connection limit:

- the request head must be complete `header_timeout` seconds after the connection opened (or
  after the first byte of a later request on a kept-alive connection);
- a request body may pause at most `body_timeout` seconds between two pieces (a slow but
  steady upload is fine; a stalled one is cut off);
- an idle kept-alive connection is closed after `keepalive_timeout` seconds (uvicorn's own);
- beyond `max_connections` open connections, a new one is answered 503 and closed at once,
  so the file descriptors never run out and the server recovers when the crowd is gone.

SIGTERM (or Ctrl-C) stops the server gracefully (`DrainingServer`): /ready answers 503 at once
(hub.web.health), new connections are still taken for `shutdown_drain` seconds (the load
balancer's time to notice; 0 by default), then none; requests in flight, a streamed download
too, get `shutdown_grace` seconds to finish; then the process exits with status 0.

The listening socket is bound before the server says it runs (`listen`), so a busy port is
one clear error, not a "Serving on …" followed by a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import resource
import select
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import partial
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub import memory
from hub.errors import HubError
from hub.web import accesslog

RESERVED_FDS = 256  # files the server opens besides its connections (data, SQLite, exports)
_BUSY_TEXT = b"the server has too many open connections; try again in a few seconds\n"
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"x-content-type-options: nosniff\r\nretry-after: 5\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT))


ENVIRONMENT = {"header_timeout": "HUB_HEADER_TIMEOUT", "body_timeout": "HUB_BODY_TIMEOUT",
               "keepalive_timeout": "HUB_KEEPALIVE_TIMEOUT",
               "max_connections": "HUB_MAX_CONNECTIONS",
               "shutdown_grace": "HUB_SHUTDOWN_GRACE", "shutdown_drain": "HUB_SHUTDOWN_DRAIN"}


class ServeError(HubError):
    """The server cannot start (busy port, invalid limit)."""


@dataclass(frozen=True)
class Limits:
    """How long a client may take and how many connections are open at most."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    max_connections: int = 1000
    shutdown_grace: float = 30.0  # seconds requests in flight get after SIGTERM
    shutdown_drain: float = 0.0  # seconds new connections are still taken after SIGTERM

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> Limits:
        values: dict[str, Any] = {}
        for f in fields(cls):
            variable = ENVIRONMENT[f.name]
            if not env.get(variable):
                continue
            kind = int if f.name == "max_connections" else float
            try:
                value = kind(env[variable])
            except ValueError:
                value = 0
            if not value > 0:
                raise ServeError(f"{variable}={env[variable]!r}: expected a positive "
                                 f"{'whole ' if kind is int else ''}number")
            values[f.name] = value
        return cls(**values)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines and a connection limit."""

    def __init__(self, *args: Any, limits: Limits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused, self.transport = True, transport
            transport.write(BUSY)
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    # httptools parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a later request on a kept-alive connection
            self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm(self.limits.body_timeout)  # disarmed at once if there is no body

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.limits.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, seconds: float) -> None:
        self._deadline = None
        waiting_on_us = (self.flow is not None and self.flow.read_paused) or (
            self.cycle is not None and self.cycle.waiting_for_100_continue)
        if waiting_on_us:  # the app has not taken the body yet: not the client's fault
            self._arm(seconds)
        elif not self.transport.is_closing():
            self.transport.close()


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (not yet listening), or a `ServeError` naming the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                         + (f" (port {port} is used by another program)"
                            if exc.errno == errno.EADDRINUSE else "")) from None
    return sock


def ensure_descriptors(limits: Limits) -> None:
    """Raise the soft limit of open files so `max_connections` fit beside the server's own
    files, or refuse to start with the setting to change."""
    needed = limits.max_connections + RESERVED_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise ServeError(f"HUB_MAX_CONNECTIONS={limits.max_connections} needs {needed:,} "
                             f"open files, but the system allows {hard:,} (ulimit -n): "
                             "lower HUB_MAX_CONNECTIONS")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def prepare(host: str, port: int) -> tuple[socket.socket, Limits]:
    """Everything that can fail before the server runs: the limits, the access log and the
    memory settings from the environment (HUB_ACCESS_LOG, HUB_MEMORY_LOG, HUB_MALLOC_ARENAS),
    enough file descriptors, the bound socket."""
    limits = Limits.from_environment()
    memory.log_interval()
    memory.tune_allocator()
    ensure_descriptors(limits)
    accesslog.configure(os.environ.get("HUB_ACCESS_LOG", "-"))
    return listen(host, port), limits


def run(app: Any, sock: socket.socket, limits: Limits) -> None:
    """Serve `app` on the bound socket until stopped (SIGINT/SIGTERM); meanwhile freed heap
    pages are given back and, with HUB_MEMORY_LOG, memory is logged (`hub.memory`)."""
    config = uvicorn.Config(app, http=partial(GuardedProtocol, limits=limits),
                            timeout_keep_alive=limits.keepalive_timeout,  # type: ignore[arg-type]
                            server_header=False, access_log=False, log_level="warning",
                            timeout_graceful_shutdown=limits.shutdown_grace)  # type: ignore[arg-type]
    housekeeper = memory.Housekeeper(memory.log_interval()).start()
    try:
        DrainingServer(config, limits.shutdown_drain).run(sockets=[sock])
    finally:
        housekeeper.stop()


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain before the graceful stop, ending with status 0."""

    def __init__(self, config: uvicorn.Config, drain: float) -> None:
        super().__init__(config)
        self.drain = drain
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        from hub.web import health  # (loaded with the app; not needed to check the settings)

        health.begin_draining()
        if self.drain > 0 and self._timer is None and not self.should_exit:
            self._timer = threading.Timer(self.drain, self._stop, (sig, frame))
            self._timer.daemon = True
            self._timer.start()
            return
        if self._timer is not None:  # a second signal while draining: stop now
            self._timer.cancel()
        self._stop(sig, frame)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGTERM:
            return
        super().handle_exit(sig, frame)
        # uvicorn raises the signal again once it stopped, so the process would end killed
        # by it; a graceful stop is a normal end (status 0) for systemd and the launcher
        self._captured_signals.clear()


# -- several worker processes on one socket (`hub serve --workers N`) -------------------------

class _Stop(Exception):
    """SIGTERM or SIGINT reached the supervising process."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stop(signum)


def run_workers(make_app: Callable[[], Any], sock: socket.socket, limits: Limits,
                workers: int, started: Callable[[], None] = lambda: None,
                preload: Callable[[], None] = lambda: None) -> int:
    """Serve with `workers` forked processes sharing the bound socket, each a full replica
    that builds its own app (`make_app`) and serves it with `run` (its own limits, timeouts
    and shutdown); returns the exit status.

    `started` is called once every worker has built its app. A worker that cannot build it
    (a broken catalog) stops the start, with exit status 1; a worker that dies later is
    replaced. SIGTERM or SIGINT is passed on to the workers, which finish their requests.

    What the supervisor imported (the hub's modules, pyarrow, pandas, …: about 100 MiB of
    Python objects) and what `preload` loads (what every worker would load the same) is
    shared with the workers copy-on-write. The objects are frozen first (`gc.freeze`): a
    worker's garbage collector then never walks them, so it does not write to (and copy)
    every page of them at its first full collection."""
    sock.listen(limits.max_connections)  # connections queue while a worker is replaced
    preload()
    gc.collect()
    gc.freeze()
    ready_read, ready_write = os.pipe()
    children: dict[int, int] = {}  # pid -> worker number
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for number in range(workers):
            children[_fork_worker(make_app, sock, limits, ready_write, previous)] = number
        waiting = workers
        while waiting:  # each worker writes one byte when its app is built
            readable, _, _ = select.select([ready_read], [], [], 0.5)
            if readable:
                waiting -= len(os.read(ready_read, waiting))
            elif _reap(children, block=False) is not None:
                return 1  # a worker exited before it served: it printed why
        started()
        while True:
            pid = _reap(children, block=True)
            if pid is not None:  # replaced; it does not report ready
                children[_fork_worker(make_app, sock, limits, None, previous)] = \
                    children.pop(pid)
    except _Stop:
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os.close(ready_read)
        os.close(ready_write)


def _reap(children: dict[int, int], block: bool) -> int | None:
    """The pid of a worker that exited (None: none has, when not blocking)."""
    while True:
        pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        if pid == 0:
            return None
        if pid in children:
            return pid


def _fork_worker(make_app: Callable[[], Any], sock: socket.socket, limits: Limits,
                 ready: int | None, handlers: Mapping[int, Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:  # the worker: its own signal handling (uvicorn's), access log thread and app
        for s, handler in handlers.items():
            signal.signal(s, handler)
        accesslog.configure(os.environ.get("HUB_ACCESS_LOG", "-"))
        app = make_app()
        if ready is not None:
            os.write(ready, b"+")
        run(app, sock, limits)
        status = 0
    except HubError as exc:
        sys.stderr.write(f"Error: {exc}\n")
    except BaseException:  # shown; a worker must never return into the supervisor
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)
