"""The data managers' workspace under /arbeitsbereich: pages for signed-in users of the
organisations, each module one task (`start`: the dashboard; `datasets`: register, manage
and publish a dataset; `users`: the admins' user management; `aggregates`: the admins'
allowances of public aggregates). Every page is a thin route over the core functions the CLI
and the CKAN API call (`hub.access` decides who may do what); `desk` holds what the pages
share; any other path under the workspace is its 404 page (`problem`)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from hub.web.workspace import (
    aggregates,
    datasets,
    daten,
    jobs,
    protocol,
    report,
    start,
    usage,
    users,
)
from hub.web.workspace.desk import ROOT, Desk, SignInFirst, redirect_to_sign_in
from hub.web.workspace.problem import Problem

__all__ = ["Desk", "SignInFirst", "redirect_to_sign_in", "workspace_router"]


def workspace_router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    router.include_router(start.router(desk))
    router.include_router(datasets.router(desk))
    router.include_router(daten.router(desk))
    router.include_router(users.router(desk))
    router.include_router(jobs.router(desk))
    router.include_router(protocol.router(desk))
    router.include_router(usage.router(desk))
    router.include_router(report.router(desk))
    router.include_router(aggregates.router(desk))

    @router.api_route(ROOT + "/{rest:path}", methods=["GET", "HEAD", "POST"])
    async def unknown(request: Request, rest: str) -> None:
        """Any other path under the workspace: its 404 page (after signing in)."""
        await desk.session(request)
        raise Problem(404, "no_page", "no such page in the workspace")

    return router
