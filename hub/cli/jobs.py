"""`hub worker`: the process that takes jobs from the queue (hub.jobs) and runs them."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, settings_for


def worker(
    lease: Annotated[float, typer.Option(
        help="Seconds a job stays this worker's without a heartbeat; after that another "
             "worker takes it over")] = 30.0,
    beat: Annotated[float, typer.Option(help="Seconds between heartbeats (progress)")] = 1.0,
    poll: Annotated[float, typer.Option(
        help="Seconds between looks at an empty queue")] = 1.0,
    schedule: Annotated[float, typer.Option(
        help="Seconds between looks at which pipelines are due (0: never)")] = 60.0,
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """Take jobs from the queue and run them, one at a time, until SIGTERM or Ctrl-C (the
    running job is finished first). Between jobs, queue the remote pipelines that are due by
    their update frequency and put the file-based ones on their organisation's to-do list."""
    from hub.jobs import schedule as schedule_
    from hub.jobs.worker import Worker
    from hub.store.versions import Store

    if not 0 < beat < lease:
        raise typer.BadParameter(f"--beat {beat} must be above 0 and below --lease {lease}")
    settings = settings_for(root, store)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    hub_store = Store(settings.store)
    running = Worker(settings, hub_store, lease=lease, beat_every=beat, poll=poll,
                     between=(lambda: schedule_.tick(settings, hub_store)) if schedule > 0
                     else None, between_every=schedule)

    def stop(signum: int, frame: FrameType | None) -> None:
        running.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(f"Worker {running.name} on {settings.store}")
    running.run()
