"""An organisation's to-do list: what the worker found due ("new file due", table `todos`)
and runs that failed (the newest ended job of a dataset failed). Stale datasets come from
the catalog's quality assessment (hub.catalog.quality), which the workspace page adds."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select

from hub.access import Viewer
from hub.db import Database
from hub.db.schema import jobs, todos

RECENT_JOBS = 2000  # how many ended jobs are looked at for failed runs


@dataclass(frozen=True)
class Item:
    kind: str            # file_due, run_failed
    dataset: str
    organization: str
    since: str
    detail: str
    job: str | None = None  # the failed job


def open_items(db: Database, organizations: Collection[str] | None) -> list[Item]:
    """The open items of these organisations (None: of all), oldest first."""
    found = select(todos).where(todos.c.resolved.is_(None))
    ended = (select(jobs.c.id, jobs.c.dataset, jobs.c.organization, jobs.c.state,
                    jobs.c.finished, jobs.c.error)
             .where(jobs.c.state.in_(("done", "failed")), jobs.c.dataset.is_not(None))
             .order_by(jobs.c.finished.desc()).limit(RECENT_JOBS))
    if organizations is not None:
        found = found.where(todos.c.organization.in_(list(organizations)))
        ended = ended.where(jobs.c.organization.in_(list(organizations)))
    with db.connection() as conn:
        items = [Item(r.kind, r.dataset, r.organization, r.since, r.detail)
                 for r in conn.execute(found)]
        newest: dict[str, object] = {}
        for r in conn.execute(ended):
            newest.setdefault(r.dataset, r)
    items += [Item("run_failed", r.dataset, r.organization, r.finished, r.error or "", r.id)
              for r in newest.values() if r.state == "failed"]  # type: ignore[attr-defined]
    return sorted(items, key=lambda item: (item.since, item.dataset))


def for_viewer(db: Database, viewer: Viewer) -> list[Item]:
    """The open items the viewer may follow (`Viewer.may_follow`): of the own organisation,
    of all for an admin."""
    if viewer.admin:
        return open_items(db, None)
    if not viewer.organization or not viewer.may_follow(viewer.organization):
        return []
    return open_items(db, [viewer.organization])
