"""/arbeitsbereich: the dashboard of the workspace — per organisation (the user's; every one
for an admin) its datasets with publication state, last version and its date, staleness and
since when, quality score and the open validation problems of the last run, so what needs
care is seen first.

The rows (a catalog read of every record, `assess` and the current version of each) and the
rendered tables are kept while the database holds the same data (`hub.web.workspace.kept`),
per viewer and day (staleness counts days) and, for the tables, per language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import groupby

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from hub.access import Viewer
from hub.catalog.index import Query
from hub.catalog.model import Record
from hub.catalog.publication import stage
from hub.catalog.quality import Assessment, assess
from hub.errors import StoreError
from hub.store.versions import Store
from hub.web.workspace.desk import ROOT, Desk

STATES = ("active", "draft")
MAX_LISTED = 1000
ROW_BYTES = 2000  # a kept row (its record shares the catalog's parsed text), estimated


@dataclass
class Row:
    record: Record
    quality: Assessment
    stage: str
    stale_since: str | None  # the day the dataset became stale (None: fresh or never changed)
    problems: int  # rows set aside and violations of the current version's run
    quarantined: int


def own_datasets(desk: Desk, viewer: Viewer) -> list[Row]:
    """The records the viewer may edit, stale and weakest first (`hub.catalog.quality`);
    kept until the data or the day changes (call it off the event loop)."""
    today = dt.date.today()
    kept = desk.kept("dashboard rows", lambda rows: ROW_BYTES * len(rows))
    return list(kept.get(desk.hub.catalog.db, (viewer, today),
                         lambda: _own_datasets(desk, viewer, today)))


def _own_datasets(desk: Desk, viewer: Viewer, today: dt.date) -> list[Row]:
    hub = desk.hub
    filters = {} if viewer.admin else {"organization": [viewer.organization or ""]}
    found = hub.catalog.search(Query(filters=filters, sort="title", rows=MAX_LISTED,
                                     facets=(), states=STATES), viewer)
    orgs = hub.vocab.organizations  # read once, not per record
    rows = [_row(r, assess(r, hub.vocab, today, orgs), hub.catalog.store)
            for r in found.records if viewer.may_edit(r.publisher)]
    return sorted(rows, key=lambda row: (not row.quality.stale, row.quality.score,
                                         row.record.title))


def by_organization(desk: Desk, viewer: Viewer) -> list[tuple[str, list[Row]]]:
    """The rows grouped by organisation (its name), organisations by name."""
    orgs = desk.hub.vocab.organizations
    rows = own_datasets(desk, viewer)

    def org_name(row: Row) -> str:
        org = orgs.get(row.record.publisher)
        return org.name if org else row.record.publisher

    return [(name, list(group)) for name, group in
            groupby(sorted(rows, key=org_name), key=org_name)]


def tables(desk: Desk, request: Request, viewer: Viewer) -> Markup:
    """The dashboard's tables as HTML in the request's language, kept like the rows (call it
    off the event loop)."""
    return desk.kept_fragment(request, "workspace/start_tables.html",
                              (viewer, dt.date.today()),
                              lambda: {"groups": by_organization(desk, viewer)})


def _row(record: Record, quality: Assessment, store: Store) -> Row:
    since = None
    if quality.stale and record.last_modified and quality.allowed_days is not None:
        since = (dt.date.fromisoformat(record.last_modified[:10])
                 + dt.timedelta(days=quality.allowed_days)).isoformat()
    problems = quarantined = 0
    if record.version is not None:  # the record shows its data's facts: the viewer sees it
        try:
            current = store.current(record.name)
        except StoreError:
            current = None
        if current is not None:
            quarantined = current.quarantined
            problems = int((current.report or {}).get("violation_count") or 0)
    return Row(record, quality, stage(record), since, problems, quarantined)


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(ROOT, response_class=HTMLResponse)
    async def start(request: Request) -> Response:
        session = await desk.session(request)
        html = await run_in_threadpool(tables, desk, request, session.user.viewer)
        return desk.page(request, session, "workspace/start.html", tables=html)

    return router
