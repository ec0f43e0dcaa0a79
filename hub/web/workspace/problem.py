"""A request a workspace page cannot answer as asked: the problem page (status and German
text by its code, in templates/workspace/problem.html, so the texts are translated with the
templates)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from hub.errors import HubError
from hub.web.session import Session
from hub.web.workspace.desk import Desk


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
