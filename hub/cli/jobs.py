"""`hub worker`: the process that takes jobs from the queue (hub.jobs) and runs them."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, fail, settings_for
from hub.errors import HubError


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
    their update frequency, put the file-based ones on their organisation's to-do list, and
    send e-mail reminders when an SMTP server is configured (HUB_SMTP_HOST, …)."""
    from hub.catalog import open_catalog
    from hub.jobs import schedule as schedule_
    from hub.jobs.reminders import Smtp, send_reminders
    from hub.jobs.worker import Worker

    if not 0 < beat < lease:
        raise typer.BadParameter(f"--beat {beat} must be above 0 and below --lease {lease}")
    settings = settings_for(root, store)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        catalog, vocab, _ = open_catalog(settings)
        smtp = Smtp.from_env()
    except HubError as exc:
        fail(str(exc))

    def upkeep() -> None:
        schedule_.tick(settings, catalog.store)
        send_reminders(catalog, vocab, smtp)

    running = Worker(settings, catalog.store, lease=lease, beat_every=beat, poll=poll,
                     between=upkeep if schedule > 0 else None, between_every=schedule)

    def stop(signum: int, frame: FrameType | None) -> None:
        running.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(f"Worker {running.name} on {settings.store}")
    running.run()
