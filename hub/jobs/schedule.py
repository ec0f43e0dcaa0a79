"""Keeping data current: each pipeline is due again when its update frequency has passed.

A pipeline whose sources are all remote (URL, WFS, OGC API, CKAN) is run as an "ingest" job
when due: its downloads are conditional (ETag / Last-Modified of the last version, kept per
source in the version's `source_state`; see hub.ingest.remote), so a source that answers 304,
or whose content has the same checksum, costs one request and commits no version (the run is
logged "unchanged", which counts as the check). A pipeline that reads files is due when its
current version is older than its period: "new file due" goes on the owner organisation's
to-do list (table `todos`) and is resolved by the next version. Derived pipelines (`sql:`)
follow their inputs (hub.jobs.pipelines) and are not scheduled; neither are pipelines of the
frequencies irregular, never and unknown.

Several workers may schedule at once: on PostgreSQL a transaction-level advisory lock makes
"is a job pending? if not, queue one" atomic; on SQLite the write transaction is (BEGIN
IMMEDIATE).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import and_, select, text, update

from hub.config import Settings
from hub.db import Database
from hub.db.schema import jobs, todos
from hub.errors import HubError
from hub.ingest.pipeline import Pipeline, load_pipeline
from hub.jobs.queue import stamp
from hub.store.versions import Store

log = logging.getLogger("hub.worker")

DAY = dt.timedelta(days=1)
PERIODS = {"continuous": dt.timedelta(minutes=15), "hourly": dt.timedelta(hours=1),
           "daily": DAY, "weekly": 7 * DAY, "biweekly": 14 * DAY, "monthly": 30 * DAY,
           "bimonthly": 61 * DAY, "quarterly": 91 * DAY, "biannual": 182 * DAY,
           "annual": 365 * DAY, "biennial": 730 * DAY, "triennial": 1095 * DAY}
REMOTE = frozenset({"url", "wfs", "oapif", "ckan"})
CHECKS = ("commit", "unchanged", "failed")  # the events that count as a run of the pipeline
SCHEDULE_LOCK = 0x6875622D736368  # "hub-sch": PostgreSQL advisory lock of the scheduler
FILE_DUE = "file_due"
SCHEDULER = "zeitplan"  # who the scheduled jobs are submitted by


@dataclass
class Tick:
    """What one look at the schedule did."""

    submitted: list[str] = field(default_factory=list)   # datasets queued for a run
    due_files: list[str] = field(default_factory=list)   # datasets whose new file is due
    skipped: list[str] = field(default_factory=list)     # pipeline files that do not load


def parse(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))


def _pipelines(settings: Settings, store: Store, done: Tick) -> Iterator[Pipeline]:
    """The project's pipeline files, then the definitions saved in the workspace
    (hub.ingest.definitions; a file wins); one that does not load is skipped and logged."""
    from hub.ingest.definitions import Definitions

    named: set[str] = set()
    for path in sorted(Path(settings.pipelines_dir).glob("*.y*ml")):
        try:
            pipeline = load_pipeline(path, settings.schemas_dir)
        except HubError as exc:
            done.skipped.append(path.name)
            log.warning("schedule: %s", exc)
            continue
        named.add(pipeline.dataset)
        yield pipeline
    saved = Definitions(store, settings.pipelines_dir, settings.schemas_dir)
    for name in saved.names():
        if name in named:
            continue
        try:
            found = saved.load(name)
        except HubError as exc:
            done.skipped.append(name)
            log.warning("schedule: %s", exc)
            continue
        if found is not None:
            yield found


def tick(settings: Settings, store: Store, now: dt.datetime | None = None) -> Tick:
    """Queue the remote pipelines that are due, put the file-based ones that are due on their
    organisation's to-do list, and resolve the to-do items that are done."""
    now = now or dt.datetime.now(dt.UTC)
    done = Tick()
    for pipeline in _pipelines(settings, store, done):
        period = PERIODS.get(pipeline.update_frequency)
        kinds = {s.kind for s in pipeline.sources}
        if period is None or "sql" in kinds:
            _resolve(store.db, pipeline.dataset, now)
        elif kinds <= REMOTE:
            last = _last_run(store, pipeline.dataset)
            if (last is None or last + period <= now) and _queue(store.db, pipeline):
                done.submitted.append(pipeline.dataset)
        else:
            current = store.current(pipeline.dataset)
            due = parse(current.finished) + period if current else now
            if due <= now:
                _file_due(store.db, pipeline, due)
                done.due_files.append(pipeline.dataset)
            else:
                _resolve(store.db, pipeline.dataset, now)
    return done


def _last_run(store: Store, dataset: str) -> dt.datetime | None:
    for event in store.events(dataset):  # newest first
        if event["kind"] in CHECKS:
            return parse(event["at"])
    return None


def _lock(db: Database, conn: object) -> None:
    if not db.is_sqlite:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),  # type: ignore[attr-defined]
                     {"key": SCHEDULE_LOCK})


def _queue(db: Database, pipeline: Pipeline) -> bool:
    """Queue an ingest run unless one of the dataset is queued or running already."""
    from hub.jobs.queue import new_job

    with db.write() as conn:
        _lock(db, conn)
        pending = conn.execute(select(jobs.c.id).where(
            jobs.c.dataset == pipeline.dataset,
            jobs.c.state.in_(("queued", "running"))).limit(1)).first()
        if pending is not None:
            return False
        _, insert = new_job("ingest", {"dataset": pipeline.dataset}, by=SCHEDULER,
                            organization=pipeline.organization)
        conn.execute(insert)
    return True


def _file_due(db: Database, pipeline: Pipeline, due: dt.datetime) -> None:
    insert = db.insert(todos).values(
        organization=pipeline.organization, dataset=pipeline.dataset, kind=FILE_DUE,
        since=stamp(due), detail=f"{pipeline.title}: neue Datei fällig "
                                 f"({pipeline.update_frequency})")
    with db.write() as conn:
        conn.execute(insert.on_conflict_do_nothing(
            index_elements=[todos.c.dataset, todos.c.kind],
            index_where=todos.c.resolved.is_(None)))


def _resolve(db: Database, dataset: str, now: dt.datetime) -> None:
    with db.write() as conn:
        conn.execute(update(todos).where(and_(
            todos.c.dataset == dataset, todos.c.resolved.is_(None))).values(resolved=stamp(now)))
