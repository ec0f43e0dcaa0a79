"""Work that grows with the data, kept off the event loop: a bounded pool, costs and deadlines.

Answers that cost little — documents, 304s, cached selections, cached tiles, small pages of a
layer in memory — are computed on the event loop, where a thread hop would cost more than the
answer. Everything whose cost grows with the data runs in a small pool of worker threads:
reading a version into memory, a new selection (bbox, equality, `datetime`, CQL2) over many
rows, a new tile of many points (or of clusters, lines, polygons), a large page.

- A handler runs on the loop first. Before each step that may be expensive it calls
  `needs(request, cost)`, which on the loop raises `Offload` when the cost is over `LOOP_COST`;
  the caller then runs the whole handler again in the pool (the cheap steps before repeat).
  A handler whose expensive step is its last hands that step over instead (`then`): only it
  runs in the pool (a new tile: the checks before it are not made twice).
- At most `Budget.workers` handlers run in the pool. A request that finds every worker busy waits
  up to `Budget.queue_seconds` for one and then gets 503 with `Retry-After` (`Busy`).
- Work that many requests may ask for at once (reading a version, rendering a tile) is done
  once (`SingleFlight`). A request that finds it under way waits for it on the event loop
  (`wait_for` raises `Wait`), within the same `queue_seconds`, and then runs again: waiters
  never hold a worker, so the pool stays free for other work.
- A CQL2 filter whose estimated cost is over `Budget.max_cost` is refused before it starts (400
  naming `filter`, see `hub.api.ogc.layer.Layer.cost`); an evaluation that runs longer than
  `Budget.seconds` stops between two conditions (`Deadline`) with 503 and `Retry-After`.

Costs are in *row-conditions*: one simple condition tested on one row (a few nanoseconds).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")

LOOP_COST = 50_000  # at most this much work is done on the event loop (well under 1 ms)
UNBOUNDED = math.inf  # the cost of a step that reads or builds from the whole version


class Offload(Exception):
    """Raised on the event loop: this answer needs work that grows with the data; `rest`
    (when given) is what is left of the handler, to run in the pool instead of all of it."""

    def __init__(self, rest: Callable[[], object] | None = None):
        super().__init__("work that grows with the data")
        self.rest = rest


class Wait(Exception):
    """Raised on the event loop: the work this answer needs is under way; wait for `done`."""

    def __init__(self, done: Future[None]):
        super().__init__("work under way")
        self.done = done


class Busy(Exception):
    """503 Service Unavailable with Retry-After: no worker was free, or time ran out."""

    def __init__(self, message: str, retry_after: int, param: str | None = None):
        super().__init__(message)
        self.message, self.retry_after, self.param = message, retry_after, param


@dataclass(frozen=True)
class Budget:
    """How much expensive work the OGC API takes on (environment settings, see from_env)."""

    workers: int = 2  # expensive requests computed at once
    queue_seconds: float = 10.0  # how long a request waits for a free worker
    max_cost: int = 500_000_000  # row-conditions a CQL2 filter may cost (about 2-3 s)
    seconds: float = 10.0  # how long one evaluation may run

    @classmethod
    def from_env(cls) -> Budget:
        """HUB_OGC_WORKERS, HUB_OGC_QUEUE_SECONDS, HUB_OGC_FILTER_BUDGET, HUB_OGC_WORK_SECONDS."""
        names = {"workers": ("HUB_OGC_WORKERS", int),
                 "queue_seconds": ("HUB_OGC_QUEUE_SECONDS", float),
                 "max_cost": ("HUB_OGC_FILTER_BUDGET", int),
                 "seconds": ("HUB_OGC_WORK_SECONDS", float)}
        values = {}
        for key, (env, kind) in names.items():
            raw = os.environ.get(env)
            if raw is None:
                continue
            try:
                values[key] = kind(raw)
            except ValueError:
                raise ValueError(f"{env}: {raw!r} is not a number") from None
            if not values[key] > 0:
                raise ValueError(f"{env} must be greater than 0")
        return cls(**values)


class Deadline:
    """The time an evaluation may take, checked between two conditions."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise Busy(f"filter: evaluating this request took longer than {self.seconds:g} s "
                       "(HUB_OGC_WORK_SECONDS); try again later or narrow it (bbox, fewer "
                       "conditions)", retry_after=max(1, math.ceil(self.seconds)),
                       param="filter")


def on_loop(request: Request) -> bool:
    """Is this request's handler running on the event loop (not in the pool)?"""
    return getattr(request.state, "deadline", None) is None


def deadline(request: Request) -> Deadline | None:
    """The deadline of a handler running in the pool; None on the loop."""
    return getattr(request.state, "deadline", None)


def needs(request: Request, cost: float) -> None:
    """Announce a step of `cost` row-conditions: on the loop, anything over LOOP_COST goes to
    the pool."""
    if cost > LOOP_COST and on_loop(request):
        raise Offload


def then(request: Request, cost: float, rest: Callable[[], T]) -> T:
    """The handler's last step, `rest()`, of `cost` row-conditions: now, unless that is on the
    loop and over LOOP_COST; then in the pool (`Offload` carrying it)."""
    if cost > LOOP_COST and on_loop(request):
        raise Offload(rest)
    return rest()


def wait_for(request: Request, done: Future[None] | None) -> None:
    """On the loop, when `done` (a `SingleFlight.pending`) is not None: wait for it there."""
    if done is not None and on_loop(request):
        raise Wait(done)


class SingleFlight:
    """Work done once per key however many ask for it at the same time: the first caller
    computes, later ones wait for its end (`pending` tells the event loop what to wait for)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Future[None]] = {}

    def pending(self, key: Hashable) -> Future[None] | None:
        with self._lock:
            return self._flights.get(key)

    def run(self, key: Hashable, done: Callable[[], T | None], compute: Callable[[], T]) -> T:
        """`done()` if it gives a result, else `compute()` — by one caller per key at a time;
        the others wait for it and ask `done()` again."""
        while True:
            found = done()
            if found is not None:
                return found
            with self._lock:
                flight = self._flights.get(key)
                mine = flight is None
                if mine:
                    flight = self._flights[key] = Future()
            if not mine:
                flight.result()
                continue
            try:
                return compute()
            finally:
                with self._lock:
                    del self._flights[key]
                flight.set_result(None)


class Pool:
    """The worker threads for expensive answers, with a bounded wait for a free one."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self._executor = ThreadPoolExecutor(budget.workers, thread_name_prefix="ogc-work")
        self._free = asyncio.Semaphore(budget.workers)

    def _busy(self) -> Busy:
        return Busy(f"all {self.budget.workers} workers for expensive requests "
                    "(HUB_OGC_WORKERS) are busy; try again shortly",
                    retry_after=max(1, math.ceil(self.budget.queue_seconds)))

    async def answer(self, request: Request, handler: Callable[[], T]) -> T:
        """`handler()` on the event loop; again after the work it waits for (`Wait`) is done;
        in a worker thread when it needs one (`Offload`). All waiting is on the loop and
        within `Budget.queue_seconds`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.budget.queue_seconds
        while True:
            try:
                return handler()
            except Wait as waiting:
                done, _ = await asyncio.wait({asyncio.wrap_future(waiting.done)},
                                             timeout=max(0.0, end - loop.time()))
                if not done:
                    raise self._busy() from None
            except Offload as offload:
                return await self.run(request, offload.rest or handler,  # type: ignore[arg-type]
                                       end - loop.time())

    async def run(self, request: Request, handler: Callable[[], T],
                  wait_s: float | None = None) -> T:
        """Run `handler` in a worker thread with a deadline set on `request`, after waiting
        up to `wait_s` (default `Budget.queue_seconds`) for a free worker."""
        try:
            async with asyncio.timeout(max(0.0, self.budget.queue_seconds if wait_s is None
                                           else wait_s)):
                await self._free.acquire()
        except TimeoutError:
            raise self._busy() from None

        def timed() -> T:
            request.state.deadline = Deadline(self.budget.seconds)
            return handler()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, timed)
        finally:
            self._free.release()
