"""/arbeitsbereich/aggregate: the admins' page of public aggregates — every derived dataset
with its inputs, whether each may be read into a public aggregate and who said so (the input
owner's `public_derivatives` or an admin), and buttons to allow or revoke an admin's
allowance. The same core as `hub derived allow|revoke|list` (`hub.ingest.allowances`,
audited `derived.allow`/`derived.revoke`; who may: `hub.access.check_allow_aggregate`). An
allowance takes effect at the derived dataset's next run, so allowing queues that run.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from hub import jobs
from hub.access import Viewer, check_allow_aggregate
from hub.errors import Forbidden
from hub.ingest import allowances
from hub.ingest.consents import Consents, consents
from hub.web.workspace.desk import ROOT, Desk, see_other
from hub.web.workspace.problem import Problem, denied

PAGE = f"{ROOT}/aggregate"
DONE = ("allowed", "revoked", "allowed_already")
MAX_REASON = 500


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(PAGE, response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        session = await desk.session(request)
        try:
            check_allow_aggregate(session.user.viewer)
        except Forbidden:
            return denied(desk, request, session, "aggregates")
        found = await run_in_threadpool(_consents, desk)
        done = request.query_params.get("erledigt", "")
        job = request.query_params.get("auftrag", "")[:40]
        orgs = desk.hub.vocab.organizations.values()
        return desk.page(request, session, "workspace/aggregates.html",
                         derived=found.derived, broken=found.broken,
                         org_names={o.id: o.name for o in orgs},
                         done=done if done in DONE else "", job=job)

    @router.post(PAGE, response_class=HTMLResponse)
    async def change(request: Request) -> Response:
        session = await desk.session(request)
        try:
            check_allow_aggregate(session.user.viewer)
        except Forbidden:
            return denied(desk, request, session, "aggregates")
        fields = await desk.form(request, session)
        done, job = await run_in_threadpool(_change, desk, session.user.viewer, fields)
        query = {"erledigt": done, **({"auftrag": job} if job else {})}
        return see_other(f"{PAGE}?{urlencode(query)}")

    return router


_kept: list[tuple[Hashable, Consents]] = []  # the last answer and what it was made from


def _consents(desk: Desk) -> Consents:
    """`consents` of the project, kept while no pipeline or schema file and nothing in the
    database (allowances, saved definitions) changed: loading every pipeline costs ~0.1 s."""
    settings = desk.hub.settings
    store = desk.hub.catalog.store
    made_from = (settings.pipelines_dir, store.root, store.db.mark(),  # this project's, as now
                 _files(settings.pipelines_dir), _files(settings.schemas_dir))
    if _kept and _kept[0][0] == made_from:
        return _kept[0][1]
    found = consents(settings.pipelines_dir, settings.schemas_dir, store)
    _kept[:] = [(made_from, found)]
    return found


def _files(folder: Path | None) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every file in `folder`."""
    if folder is None or not folder.is_dir():
        return ()
    return tuple(sorted((p.name, st.st_size, st.st_mtime_ns) for p in folder.iterdir()
                        if p.is_file() and (st := p.stat())))


def _change(desk: Desk, viewer: Viewer, fields: dict[str, str]) -> tuple[str, str]:
    """Allow (and queue the derived dataset's run) or revoke; (what was done, the job)."""
    action, source, name = (fields.get(k, "") for k in ("action", "input", "derived"))
    reason = fields.get("grund", "").strip()
    if action not in ("allow", "revoke"):
        raise Problem(400, "aggregate_action", f"unknown action {action[:40]!r}")
    if len(reason) > MAX_REASON:
        raise Problem(400, "reason_too_long", f"the reason is longer than {MAX_REASON} "
                      "characters", max=MAX_REASON)
    derived = next((d for d in _consents(desk).derived if d.name == name), None)
    if derived is None or source not in {i.name for i in derived.inputs}:
        raise Problem(404, "no_derivation", f"{name[:100]!r} is no derived dataset that "
                      f"reads {source[:100]!r}")
    db = desk.hub.catalog.store.db
    if action == "revoke":
        try:
            allowances.revoke(db, viewer, source, name)
        except allowances.NotAllowed:
            raise Problem(404, "no_allowance", f"no admin allowed {name!r} as a public "
                          f"aggregate of {source!r}") from None
        return "revoked", ""
    if not allowances.allow(db, viewer, source, name, reason):
        return "allowed_already", ""
    job = jobs.submit(db, "ingest", {"dataset": name}, by=viewer.user or "",
                      organization=derived.organization)
    return "allowed", job
