"""/arbeitsbereich: the start of the workspace — the datasets of the user's organisation
(all of them for an admin) with their state, access level, quality score and staleness, so
what needs care is seen first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from hub.access import Viewer
from hub.catalog.index import Query
from hub.catalog.quality import assess
from hub.web.workspace.desk import ROOT, Desk

STATES = ("active", "draft")
MAX_LISTED = 1000


def own_datasets(desk: Desk, viewer: Viewer) -> list[dict[str, Any]]:
    """The records the viewer may edit, stale and weakest first (`hub.catalog.quality`)."""
    hub = desk.hub
    filters = {} if viewer.admin else {"organization": [viewer.organization or ""]}
    found = hub.catalog.search(Query(filters=filters, sort="title", rows=MAX_LISTED,
                                     facets=(), states=STATES), viewer)
    rows = [{"record": r, "quality": assess(r, hub.vocab)} for r in found.records
            if viewer.may_edit(r.publisher)]
    return sorted(rows, key=lambda row: (not row["quality"].stale, row["quality"].score,
                                         row["record"].title))


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(ROOT, response_class=HTMLResponse)
    async def start(request: Request) -> Response:
        session = await desk.session(request)
        rows = await run_in_threadpool(own_datasets, desk, session.user.viewer)
        return desk.page(request, session, "workspace/start.html", datasets=rows)

    return router
