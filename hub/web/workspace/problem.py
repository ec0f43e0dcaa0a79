"""A request a workspace page cannot answer as asked: the problem page (status and German
text by its code, in templates/workspace/problem.html, so the texts are translated with the
templates).

`workspace_error` answers a `Problem` and the core's errors that carry an HTTP status
(`Forbidden`, `Conflict`, `Unavailable`) on the workspace's pages with that page, in the portal
layout and the page's language: a general text per status, never the error's own (English,
and naming users or organisations). A dataset the user may not see is not found (404) like
one that does not exist, with the same page; 403 is only for what the user sees but may not
do. Clients that ask for JSON (`Accept: application/json`, and the JSON twins: paths ending
in `.json`) get `{"detail": …}` with the same status instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from hub.errors import HubError
from hub.web.session import Session
from hub.web.workspace.desk import ROOT, Desk, redirect_to_sign_in, wants_json

CODES = {403: "forbidden", 409: "conflict", 503: "unavailable"}


class Problem(HubError):
    """`code`: which text problem.html shows; `params`: its placeholders; `detail`: the
    English text of the JSON answer (the code if none)."""

    def __init__(self, status: int, code: str, detail: str = "", **params: Any):
        super().__init__(detail or code)
        self.status, self.code, self.params = status, code, params

    @property
    def http_status(self) -> int:
        return self.status


def not_editable() -> Problem:
    """A dataset that does not exist or that the user may not edit (or see): one answer for
    both, so a hidden dataset looks exactly like an unknown one."""
    return Problem(404, "not_editable", "no dataset by this name that you may edit")


def problem_json(problem: Problem) -> Response:
    return JSONResponse({"detail": str(problem)}, problem.status,
                        headers={"Cache-Control": "no-store"})


def problem_page(desk: Desk, request: Request, session: Session, problem: Problem) -> Response:
    if wants_json(request):
        return problem_json(problem)
    return desk.page(request, session, "workspace/problem.html", problem.status,
                     problem=problem)


def denied(desk: Desk, request: Request, session: Session, page: str) -> Response:
    """A page the user's role may not see (`page`: protocol, usage, report, aggregates):
    403."""
    return problem_page(desk, request, session, Problem(
        403, "denied", f"your role may not see this page ({page})", page=page))


async def workspace_error(desk: Desk, request: Request, exc: Exception) -> Response | None:
    """The problem page for `exc` on a workspace page; None elsewhere and for clients that
    ask for JSON (the caller answers them with the error's JSON)."""
    path = request.url.path
    status = getattr(exc, "http_status", 500)
    if not (path == ROOT or path.startswith(ROOT + "/")) or \
            not (isinstance(exc, Problem) or status in CODES):
        return None
    if wants_json(request):
        return problem_json(exc) if isinstance(exc, Problem) else None
    session = await run_in_threadpool(desk.hub.session, request)
    if session is None or not session.signed_in:
        return await redirect_to_sign_in(request, exc)
    problem = exc if isinstance(exc, Problem) else Problem(status, CODES[status])
    response = problem_page(desk, request, session, problem)
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response
