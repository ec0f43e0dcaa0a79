"""The worker (`hub worker`): takes jobs from the queue and runs them, one at a time.

While a job runs, a heartbeat thread renews its lease and writes its progress every
`beat_every` seconds; if the lease was taken over (this worker was stalled past its expiry),
the job's progress callback raises LeaseLost and the worker drops the job without finishing
it. `stop` (SIGTERM, Ctrl-C) lets the running job finish, then the loop ends.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from hub.config import Settings
from hub.errors import HubError
from hub.jobs import queue
from hub.jobs.kinds import Context, handler
from hub.jobs.queue import Job, LeaseLost
from hub.store.versions import Store

log = logging.getLogger("hub.worker")


def worker_name() -> str:
    """Unique per process, readable in the jobs table: host, process id, a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _Heart:
    """Renews a running job's lease and writes its latest progress, in a thread of its own."""

    def __init__(self, worker: Worker, job: Job):
        self.worker, self.job = worker, job
        self.progress, self.message = 0.0, ""
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job.id[:8]}",
                                        daemon=True)
        self._thread.start()

    def report(self, fraction: float, message: str) -> None:
        """The handler's progress callback: remembered here, written by the next beat."""
        if self.lost:
            raise LeaseLost(f"job {self.job.id} was taken over by another worker")
        self.progress, self.message = fraction, message

    def _run(self) -> None:
        w = self.worker
        while not self._stop.wait(w.beat_every):
            try:
                queue.beat(w.store.db, self.job, w.name, self.progress, self.message, w.lease)
            except LeaseLost:
                self.lost = True
                return
            except Exception:  # a database hiccup: the next beat tries again
                log.exception("heartbeat of job %s", self.job.id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Worker:
    def __init__(self, settings: Settings, store: Store | None = None, *,
                 name: str | None = None, lease: float = queue.LEASE_S,
                 beat_every: float = 1.0, poll: float = 1.0,
                 between: Callable[[], Any] | None = None, between_every: float = 60.0):
        """`between`: called when the queue is empty (the scheduler), at most every
        `between_every` seconds."""
        self.settings = settings
        self.store = store or Store(settings.store, settings.database())
        self.name = name or worker_name()
        self.lease, self.beat_every, self.poll = lease, beat_every, poll
        self.between, self.between_every = between, between_every
        self._between_last: float | None = None
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Take and run jobs until `stop()`."""
        log.info("worker %s started", self.name)
        while not self.stopping.is_set():
            if self.run_next() is None and not self._call_between():
                self.stopping.wait(self.poll)
        log.info("worker %s stopped", self.name)

    def _call_between(self) -> bool:
        """Call `between` if it is time; whether it was called."""
        clock = time.monotonic()
        if self.between is None or (self._between_last is not None
                                    and clock - self._between_last < self.between_every):
            return False
        self._between_last = clock
        try:
            self.between()
        except Exception:  # a broken pipeline folder must not stop the jobs
            log.exception("between jobs")
        return True

    def run_next(self) -> Job | None:
        """Claim one job and run it; the job as it ended (None: the queue had none)."""
        job = queue.claim(self.store.db, self.name, self.lease)
        if job is None:
            return None
        if self.stopping.is_set():  # asked to stop while claiming: give it back untouched
            queue.release(self.store.db, job, self.name)
            return None
        return self.execute(job)

    def execute(self, job: Job) -> Job | None:
        log.info("job %s (%s %s) attempt %d", job.id, job.kind, job.params, job.attempts)
        heart = _Heart(self, job)
        try:
            try:
                result = handler(job.kind)(job.params, heart.report,
                                           Context(self.settings, self.store, job))
            finally:
                heart.stop()
            ended = queue.finish(self.store.db, job, self.name, result)
        except LeaseLost:
            log.warning("job %s was taken over by another worker; dropped here", job.id)
            return None
        except HubError as exc:
            ended = self._fail(job, str(exc), getattr(exc, "result", None))
        except Exception as exc:  # a bug in a handler must not stop the worker
            log.error("job %s: %s", job.id, traceback.format_exc())
            ended = self._fail(job, f"internal error ({type(exc).__name__}); see the "
                               "worker's log", None)
        if ended is not None:
            log.info("job %s %s", job.id, ended.state)
        return ended

    def _fail(self, job: Job, error: str, result: dict[str, Any] | None) -> Job | None:
        try:
            return queue.fail(self.store.db, job, self.name, error, result)
        except LeaseLost:
            return None
