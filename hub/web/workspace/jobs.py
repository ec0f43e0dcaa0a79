"""/arbeitsbereich/auftraege/{id}: a job's live progress (hub.jobs), with its JSON twin
(…/{id}.json) that hub/web/static/jobs.js polls; without JavaScript the page reloads itself
(a meta refresh inside <noscript>) while the job runs. /arbeitsbereich/aufgaben: the
organisation's to-do list (new file due, failed runs, stale datasets) and its recent jobs.
Only members of the job's organisation and admins see a job (`Viewer.may_follow`); any other
job answers 404 like one that does not exist."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from hub.access import Viewer
from hub.intake.runs import Run
from hub.jobs import Job, UnknownJob, get_as, list_jobs
from hub.jobs.todo import for_viewer
from hub.web.workspace import problems
from hub.web.workspace.desk import ROOT, Desk
from hub.web.workspace.problem import Problem
from hub.web.workspace.start import own_datasets

JOBS = f"{ROOT}/auftraege"
TASKS = f"{ROOT}/aufgaben"
RECENT = 20


def _job(desk: Desk, job_id: str, viewer: Viewer) -> Job:
    return get_as(desk.hub.catalog.store.db, job_id, viewer)


def to_do(desk: Desk, viewer: Viewer) -> dict[str, Any]:
    """What the to-do page shows: the open items, the stale datasets the viewer may edit and
    the newest jobs of the organisations the viewer follows."""
    db = desk.hub.catalog.store.db
    jobs = list_jobs(db, organization=None if viewer.admin else viewer.organization or "",
                     limit=RECENT)
    return {"items": for_viewer(db, viewer),
            "stale": [row for row in own_datasets(desk, viewer) if row.quality.stale],
            "jobs": [job for job in jobs if viewer.may_follow(job.organization)]}


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(JOBS + "/{job_id}.json")
    async def job_json(request: Request, job_id: str) -> Response:
        session = await desk.session(request)
        try:
            job = await run_in_threadpool(_job, desk, job_id, session.user.viewer)
        except UnknownJob as exc:
            return JSONResponse({"detail": str(exc)}, 404, headers={"Cache-Control": "no-store"})
        return JSONResponse(job.as_dict(), headers={"Cache-Control": "no-store"})

    @router.get(JOBS + "/{job_id}", response_class=HTMLResponse)
    async def job_page(request: Request, job_id: str) -> Response:
        session = await desk.session(request)
        try:
            job = await run_in_threadpool(_job, desk, job_id, session.user.viewer)
        except UnknownJob:
            raise Problem(404, "no_job", f"no job {job_id[:40]!r}", id=job_id[:40]) from None
        error = problems.failure(desk.render.language(request), Run(job)) \
            if job.state == "failed" else ""
        return desk.page(request, session, "workspace/job.html", job=job, error=error)

    @router.get(TASKS, response_class=HTMLResponse)
    async def tasks(request: Request) -> Response:
        session = await desk.session(request)
        found = await run_in_threadpool(to_do, desk, session.user.viewer)
        return desk.page(request, session, "workspace/tasks.html", **found)

    return router
