"""/arbeitsbereich/neu (register a dataset) and /arbeitsbereich/datensaetze/{name} (manage
one: its metadata, versions, publication checklist and workflow).

Thin routes over the core: a new record goes through `Editing.create` (as `package_create`
of the CKAN API), a change through `Editing.update` with the revision the form was based on,
publication through `hub.catalog.publication`; `hub.access` decides who may. Invalid input
answers 400 with the form as typed and a German message next to each field concerned, nothing
stored; a change that came in between answers 409.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from hub.access import DataAccess, Viewer
from hub.catalog.editing import Editing
from hub.catalog.index import NameTaken
from hub.catalog.model import ALL_STATES, Record, RecordInvalid
from hub.catalog.publication import STAGES, TARGETS, NotReady, Publication, editors_publish, stage
from hub.errors import Conflict, Forbidden, HubError, StoreError
from hub.store.versions import Version
from hub.web.services import Services
from hub.web.session import Session
from hub.web.workspace import record_form as form
from hub.web.workspace.desk import ROOT, Desk, see_other
from hub.web.workspace.problem import Problem, not_editable, problem_page

NEW = f"{ROOT}/neu"
ONE = f"{ROOT}/datensaetze"
MAX_FIELDS = 60  # the form's fields and a checkbox per EU theme
DONE = ("registered", "saved", "request", "publish", "withdraw")  # keys of messages.html


class NotEditable(HubError):
    """The record is unknown, hidden, or the viewer may not edit it: one 404 for all."""

    http_status = 404


class Refusal:
    """What `refusing` caught: 403 (may not) or 404 (no dataset the viewer may edit)."""

    status = 403


@contextlib.contextmanager
def refusing() -> Iterator[Refusal]:
    """Turns `Forbidden` and `NotEditable` into a refusal the route answers with `refused`
    (the block's return is skipped)."""
    refusal = Refusal()
    try:
        yield refusal
    except NotEditable:
        refusal.status = 404
    except Forbidden:
        refusal.status = 403


def refused(desk: Desk, request: Request, session: Session, status: int = 403) -> Response:
    """The workspace's page for a request the viewer may not make (403) or for a dataset they
    may not edit or that does not exist (404: the same for both)."""
    problem = not_editable() if status == 404 else Problem(403, "refused",
                                                           "your role may not do this")
    return problem_page(desk, request, session, problem)


def publication_of(hub: Services, viewer: Viewer) -> Publication:
    return Publication(Editing(hub.catalog, hub.vocab, viewer),
                       editors_publish(hub.district.raw))


def editable_record(hub: Services, viewer: Viewer, name: str) -> Record:
    """The record `name` if the viewer may edit it (drafts and withdrawn ones too), else a 404
    that does not tell hidden from unknown."""
    record = hub.catalog.get(name, viewer, ALL_STATES)
    if record is None or not viewer.may_edit(record.publisher):
        raise NotEditable(f"no dataset {name!r} you may edit")
    return record


def versions_seen(hub: Services, viewer: Viewer, record: Record) -> list[Version]:
    """The versions of the data held under the record's name, if the viewer may see it."""
    if not record.data_held:
        return []
    try:
        dataset = hub.catalog.store.dataset(record.name)
    except StoreError:
        return []
    if not DataAccess(lambda: (hub.catalog, hub.vocab)).may_see(viewer, dataset):
        return []
    return hub.catalog.store.versions(record.name)


@dataclass
class Saved:
    record: Record | None
    state: form.FormState
    status: int = 200


def register(hub: Services, viewer: Viewer, fields: dict[str, str]) -> Saved:
    """Register a draft from the posted form (`Editing.create`)."""
    values = form.values_posted(fields, hub.vocab)
    state = form.FormState(values, form.too_long(values))
    if state.errors:
        return Saved(None, state, 400)
    editing = Editing(hub.catalog, hub.vocab, viewer)
    try:
        return Saved(editing.create(form.record_data(values, viewer, None),
                                      "web"), state)
    except RecordInvalid as exc:
        state.errors, state.message = form.errors_of(exc.errors)
    except NameTaken:
        state.errors = {"name": ("name.taken", {})}
    return Saved(None, state, 400)


def update(hub: Services, viewer: Viewer, old: Record, fields: dict[str, str]) -> Saved:
    """Change the record from the posted form (`Editing.update`, revision-checked); making
    a published record public goes through the workflow, not this form."""
    values = form.values_posted(fields, hub.vocab)
    state = form.FormState(values, form.too_long(values))
    try:
        expected = int(fields.get("revision", ""))
    except ValueError:
        state.message = ("conflict", {})
        return Saved(None, state, 409)
    if stage(old) == "internal" and values["access"] == "public":
        state.errors["access"] = ("access.workflow", {})
    if state.errors:
        return Saved(None, state, 400)
    editing = Editing(hub.catalog, hub.vocab, viewer)
    try:
        return Saved(editing.update(old, form.record_data(values, viewer, old),
                                    expected, "web"), state)
    except RecordInvalid as exc:
        state.errors, state.message = form.errors_of(exc.errors)
    except NameTaken:
        state.errors = {"name": ("name.taken", {})}
    except Conflict:
        state.message = ("conflict", {})
        return Saved(None, state, 409)
    except NotReady:  # a public record may not lose an item of its checklist
        state.message = ("not_ready", {})
        return Saved(None, state, 409)
    return Saved(None, state, 400)


def act(hub: Services, viewer: Viewer, old: Record, fields: dict[str, str]) -> str:
    """Request, publish or withdraw (`hub.catalog.publication`); returns what was done."""
    action, target = fields.get("action", ""), fields.get("target", "")
    try:
        expected = int(fields.get("revision", ""))
    except ValueError:
        raise Conflict("the form carries no revision: reload the page") from None
    publication = publication_of(hub, viewer)
    if action == "request":
        publication.request(old, target)
    elif action == "publish":
        publication.publish(old, target, expected)
    elif action == "withdraw":
        publication.withdraw(old, expected)
    else:
        raise HubError(f"unknown action {action!r}")
    return action


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def new_page(request: Request, session: Session, state: form.FormState,
                 status: int = 200) -> Response:
        return desk.page(request, session, "workspace/new.html", status,
                         **_choices(desk.hub, session.user.viewer), form=state)

    @router.get(NEW, response_class=HTMLResponse)
    async def new(request: Request) -> Response:
        session = await desk.session(request)
        with refusing() as refusal:
            Editing(desk.hub.catalog, desk.hub.vocab, session.user.viewer).require(None)
            return new_page(request, session, form.FormState(
                form.blank(session.user.viewer, desk.hub.vocab)))
        return refused(desk, request, session, refusal.status)

    @router.post(NEW, response_class=HTMLResponse)
    async def create(request: Request) -> Response:
        session = await desk.session(request)
        with refusing() as refusal:
            fields = await desk.form(request, session, max_fields=MAX_FIELDS)
            Editing(desk.hub.catalog, desk.hub.vocab, session.user.viewer).require(None)
            saved = await run_in_threadpool(register, desk.hub, session.user.viewer, fields)
            if saved.record is None:
                return new_page(request, session, saved.state, saved.status)
            return see_other(f"{ONE}/{quote(saved.record.name)}?erledigt=registered")
        return refused(desk, request, session, refusal.status)

    async def dataset_page(request: Request, session: Session, record: Record,
                           state: form.FormState | None = None, status: int = 200,
                           message: form.Message | None = None) -> Response:
        facts = await run_in_threadpool(_facts, desk.hub, session.user.viewer, record)
        done = request.query_params.get("erledigt", "")
        done = done if status == 200 and done in DONE else None
        return desk.page(request, session, "workspace/dataset.html", status,
                         **_choices(desk.hub, session.user.viewer), **facts,
                         form=state or form.FormState(form.values_of(record)),
                         message=message, done=done)

    @router.get(ONE + "/{name}", response_class=HTMLResponse)
    async def dataset(request: Request, name: str) -> Response:
        session = await desk.session(request)
        with refusing() as refusal:
            record = await run_in_threadpool(editable_record, desk.hub, session.user.viewer,
                                             name)
            return await dataset_page(request, session, record)
        return refused(desk, request, session, refusal.status)

    @router.post(ONE + "/{name}", response_class=HTMLResponse)
    async def change(request: Request, name: str) -> Response:
        session = await desk.session(request)
        with refusing() as refusal:
            fields = await desk.form(request, session, max_fields=MAX_FIELDS)
            viewer = session.user.viewer
            record = await run_in_threadpool(editable_record, desk.hub, viewer, name)
            saved = await run_in_threadpool(update, desk.hub, viewer, record, fields)
            if saved.record is None:
                return await dataset_page(request, session, record, saved.state,
                                          saved.status)
            return see_other(f"{ONE}/{quote(saved.record.name)}?erledigt=saved")
        return refused(desk, request, session, refusal.status)

    @router.post(ONE + "/{name}/veroeffentlichung", response_class=HTMLResponse)
    async def publication(request: Request, name: str) -> Response:
        session = await desk.session(request)
        with refusing() as refusal:
            fields = await desk.form(request, session)
            viewer = session.user.viewer
            record = await run_in_threadpool(editable_record, desk.hub, viewer, name)
            try:
                done = await run_in_threadpool(act, desk.hub, viewer, record, fields)
            except NotReady:
                return await dataset_page(request, session, record, status=409,
                                          message=("not_ready", {}))
            except Conflict:
                return await dataset_page(request, session, record, status=409,
                                          message=("conflict", {}))
            except Forbidden:
                raise
            except HubError as exc:
                return await dataset_page(request, session, record, status=400,
                                          message=("invalid", {"detail": str(exc)}))
            return see_other(f"{ONE}/{quote(record.name)}?erledigt={done}")
        return refused(desk, request, session, refusal.status)

    return router


def _facts(hub: Services, viewer: Viewer, record: Record) -> dict[str, Any]:
    """What the dataset page shows beside the form."""
    publication = publication_of(hub, viewer)
    return {"record": record, "stage": stage(record), "stages": STAGES, "targets": TARGETS,
            "checklist": publication.checklist(record), "pending": publication.pending(record),
            "may_publish": publication.may_publish(record),
            "versions": versions_seen(hub, viewer, record)}


def _choices(hub: Services, viewer: Viewer) -> dict[str, Any]:
    """The vocabularies the form offers (an admin chooses the organisation)."""
    vocab = hub.vocab
    orgs = sorted(vocab.organizations.values(), key=lambda o: o.name)
    return {"licenses": vocab.licenses.terms, "frequencies": vocab.frequencies.terms,
            "themes": vocab.themes.terms, "access_levels": ("public", "internal", "restricted"),
            "organizations": orgs if viewer.admin else
            [o for o in orgs if o.id == viewer.organization]}
