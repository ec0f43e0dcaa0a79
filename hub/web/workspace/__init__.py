"""The data managers' workspace under /arbeitsbereich: pages for signed-in users of the
organisations, each module one task (`start`: the dashboard; `datasets`: register, manage
and publish a dataset; `users`: the admins' user management). Every page is a thin route
over the core functions the CLI and the CKAN API call (`hub.access` decides who may do
what); `desk` holds what the pages share."""

from __future__ import annotations

from fastapi import APIRouter

from hub.web.workspace import datasets, daten, jobs, protocol, report, start, usage, users
from hub.web.workspace.desk import Desk, SignInFirst, redirect_to_sign_in

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
    return router
