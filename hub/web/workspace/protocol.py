"""/arbeitsbereich/protokoll: the audit trail (hub.audit) for admins — filtered by actor,
action, subject and date, newest first, paged, and as CSV (/arbeitsbereich/protokoll.csv)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from hub import audit
from hub.errors import HubError
from hub.web.workspace.desk import ROOT, Desk
from hub.web.workspace.problem import Problem, denied, problem_page

PER_PAGE = 50
MAX_SHOWN = 200  # characters of a value shown in the table (the CSV has all)
FIELDS = {"wer": "actor", "aktion": "action", "gegenstand": "subject", "von": "since",
          "bis": "until"}  # parameter -> audit.Filter field


@dataclass(frozen=True)
class Shown:
    """An entry as the page shows it: what changed, field by field."""

    entry: audit.Entry
    changes: list[tuple[str, str, str]]  # field, before, after


def filter_of(request: Request) -> tuple[audit.Filter, dict[str, str]]:
    """The filter the query asks for, and the parameters that make it (for links)."""
    given = {p: request.query_params.get(p, "").strip()[:200] for p in FIELDS}
    try:
        return audit.Filter(**{FIELDS[p]: v for p, v in given.items()}), {
            p: v for p, v in given.items() if v}
    except HubError:
        raise Problem(400, "date") from None


def page_of(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("seite", "1")), 100_000))
    except ValueError:
        raise Problem(400, "page") from None


def shown(entry: audit.Entry) -> Shown:
    before, after = entry.before_value, entry.after_value
    if not isinstance(before, dict) and not isinstance(after, dict):
        return Shown(entry, [])
    before, after = before or {}, after or {}
    keys = [*before, *(k for k in after if k not in before)]
    return Shown(entry, [(k, _value(before.get(k)), _value(after.get(k))) for k in keys])


def _value(value: Any) -> str:
    text = "–" if value is None else value if isinstance(value, str) else json.dumps(
        value, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(ROOT + "/protokoll", response_class=HTMLResponse)
    async def protocol(request: Request) -> Response:
        session = await desk.session(request)
        if not session.user.viewer.may_audit:
            return denied(desk, request, session, "protocol")
        try:
            where, params = filter_of(request)
            page = page_of(request)
        except Problem as problem:
            return problem_page(desk, request, session, problem)
        db = desk.hub.catalog.store.db

        def read() -> tuple[list[audit.Entry], int, list[str]]:
            return (audit.entries(db, where, PER_PAGE, (page - 1) * PER_PAGE),
                    audit.count(db, where), audit.actions(db))

        entries, total, actions = await run_in_threadpool(read)
        pages = max(1, -(-total // PER_PAGE))
        return desk.page(request, session, "workspace/protocol.html",
                         entries=[shown(e) for e in entries], total=total, page=page,
                         pages=pages, actions=actions, params=params,
                         query=urlencode(params))

    @router.get(ROOT + "/protokoll.csv")
    async def protocol_csv(request: Request) -> Response:
        session = await desk.session(request)
        if not session.user.viewer.may_audit:
            return denied(desk, request, session, "protocol")
        try:
            where, _ = filter_of(request)
        except Problem as problem:
            return problem_page(desk, request, session, problem)
        # a plain iterator: Starlette takes each chunk in a worker thread, off the loop
        return StreamingResponse(audit.csv_lines(desk.hub.catalog.store.db, where),
                                 media_type="text/csv; charset=utf-8", headers={
                                     "Content-Disposition": 'attachment; filename="protokoll.csv"',
                                     "Cache-Control": "no-store"})

    return router
