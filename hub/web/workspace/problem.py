"""A request a workspace page cannot answer as asked: the problem page (status and German
text by its code, in templates/workspace/problem.html, so the texts are translated with the
templates).

`workspace_error` answers the core's errors that carry an HTTP status (`Forbidden`, `Conflict`,
`Unavailable`) on the workspace's HTML pages with that page, in the portal layout: a general
text per status, never the error's own (English, and naming users or organisations). A
dataset the user may not see is not found (404, `PageError`) like one that does not exist;
403 is only for what the user sees but may not do. The JSON twins (paths ending in `.json`)
keep their JSON answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hub.errors import HubError
from hub.web.session import Session
from hub.web.workspace.desk import ROOT, Desk, redirect_to_sign_in

CODES = {403: "forbidden", 409: "conflict", 503: "unavailable"}


class Problem(HubError):
    """`code`: which text problem.html shows; `params`: its placeholders."""

    def __init__(self, status: int, code: str, **params: Any):
        super().__init__(code)
        self.status, self.code, self.params = status, code, params


def problem_page(desk: Desk, request: Request, session: Session, problem: Problem) -> Response:
    return desk.page(request, session, "workspace/problem.html", problem.status,
                     problem=problem)


def denied(desk: Desk, request: Request, session: Session, page: str) -> Response:
    """A page the user's role may not see (`page`: protocol, usage, report): 403."""
    return problem_page(desk, request, session, Problem(403, "denied", page=page))


async def workspace_error(desk: Desk, request: Request, exc: Exception) -> Response | None:
    """The problem page for `exc` on a workspace page; None elsewhere and for JSON twins."""
    path = request.url.path
    status = getattr(exc, "http_status", 500)
    if not (path == ROOT or path.startswith(ROOT + "/")) or path.endswith(".json") \
            or status not in CODES:
        return None
    session = await run_in_threadpool(desk.hub.session, request)
    if session is None or not session.signed_in:
        return await redirect_to_sign_in(request, exc)
    response = problem_page(desk, request, session, Problem(status, CODES[status]))
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response
