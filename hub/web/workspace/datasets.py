"""/arbeitsbereich/neu (register a dataset) and /arbeitsbereich/datensaetze/{name} (manage
one: its metadata, versions, publication checklist and workflow).

Thin routes over the core: a new record goes through `Editing.create` (as `package_create`
of the CKAN API), a change through `Editing.update` with the revision the form was based on,
publication through `hub.catalog.publication`; `hub.access` decides who may. Invalid input
answers 400 with the form as typed and a German message next to each field concerned, nothing
stored; a change that came in between answers 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from hub.access import DataAccess, Viewer
from hub.catalog import audited
from hub.catalog.editing import Editing
from hub.catalog.index import NameTaken
from hub.catalog.model import ALL_STATES, Record, RecordInvalid
from hub.catalog.publication import STAGES, TARGETS, NotReady, Publication, editors_publish, stage
from hub.errors import Conflict, HubError, StoreError
from hub.store.versions import Version
from hub.web.portal.pages import N_, PageError
from hub.web.services import Services
from hub.web.session import Session
from hub.web.workspace import record_form as form
from hub.web.workspace.desk import ROOT, Desk, see_other

NEW = f"{ROOT}/neu"
ONE = f"{ROOT}/datensaetze"
MAX_FIELDS = 60  # the form's fields and a checkbox per EU theme
CONFLICT = N_("Der Datensatz wurde inzwischen von jemand anderem geändert. Laden Sie die "
              "Seite neu, um die aktuelle Fassung zu sehen, und ändern Sie sie dann.")
PUBLIC_BY_WORKFLOW = N_("Öffentlich wird ein Datensatz über die Veröffentlichung unten "
                        "(mit Prüfliste), nicht über dieses Feld.")
NOT_FOUND = N_("Diesen Datensatz gibt es nicht, oder Sie dürfen ihn nicht bearbeiten.")
NOT_READY = N_("Noch nicht bereit zur Veröffentlichung: Die Prüfliste ist nicht erfüllt.")
DONE = {"request": N_("Die Veröffentlichung ist beantragt."),
        "publish": N_("Der Datensatz ist veröffentlicht."),
        "withdraw": N_("Der Datensatz ist zurückgezogen."),
        "saved": N_("Gespeichert."), "registered": N_("Der Datensatz ist als Entwurf angelegt.")}


def publication_of(hub: Services, viewer: Viewer) -> Publication:
    return Publication(Editing(hub.catalog, hub.vocab, viewer),
                       editors_publish(hub.district.raw))


def editable_record(hub: Services, viewer: Viewer, name: str) -> Record:
    """The record `name` if the viewer may edit it (drafts and withdrawn ones too), else a 404
    that does not tell hidden from unknown."""
    record = hub.catalog.get(name, viewer, ALL_STATES)
    if record is None or not viewer.may_edit(record.publisher):
        raise PageError(404, NOT_FOUND)
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
        return Saved(audited.register(editing, form.record_data(values, viewer, None),
                                      "web"), state)
    except RecordInvalid as exc:
        state.errors, state.message = form.errors_of(exc.errors)
    except NameTaken:
        state.errors = {"name": (form.NAME_TAKEN, {})}
    return Saved(None, state, 400)


def update(hub: Services, viewer: Viewer, old: Record, fields: dict[str, str]) -> Saved:
    """Change the record from the posted form (`Editing.update`, revision-checked); making
    a published record public goes through the workflow, not this form."""
    values = form.values_posted(fields, hub.vocab)
    state = form.FormState(values, form.too_long(values))
    try:
        expected = int(fields.get("revision", ""))
    except ValueError:
        state.message = (CONFLICT, {})
        return Saved(None, state, 409)
    if stage(old) == "internal" and values["access"] == "public":
        state.errors["access"] = (PUBLIC_BY_WORKFLOW, {})
    if state.errors:
        return Saved(None, state, 400)
    editing = Editing(hub.catalog, hub.vocab, viewer)
    try:
        return Saved(audited.update(editing, old, form.record_data(values, viewer, old),
                                    expected, "web"), state)
    except RecordInvalid as exc:
        state.errors, state.message = form.errors_of(exc.errors)
    except NameTaken:
        state.errors = {"name": (form.NAME_TAKEN, {})}
    except Conflict:
        state.message = (CONFLICT, {})
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
        raise PageError(400, N_("Unbekannte Aktion."))
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
        editing = Editing(desk.hub.catalog, desk.hub.vocab, session.user.viewer)
        editing.require(None)
        return new_page(request, session, form.FormState(
            form.blank(session.user.viewer, desk.hub.vocab)))

    @router.post(NEW, response_class=HTMLResponse)
    async def create(request: Request) -> Response:
        session = await desk.session(request)
        fields = await desk.form(request, session, max_fields=MAX_FIELDS)
        Editing(desk.hub.catalog, desk.hub.vocab, session.user.viewer).require(None)
        saved = await run_in_threadpool(register, desk.hub, session.user.viewer, fields)
        if saved.record is None:
            return new_page(request, session, saved.state, saved.status)
        return see_other(f"{ONE}/{quote(saved.record.name)}?erledigt=registered")

    async def dataset_page(request: Request, session: Session, record: Record,
                           state: form.FormState | None = None, status: int = 200,
                           message: tuple[str, dict[str, Any]] | None = None) -> Response:
        facts = await run_in_threadpool(_facts, desk.hub, session.user.viewer, record)
        done = DONE.get(request.query_params.get("erledigt", "")) if status == 200 else None
        return desk.page(request, session, "workspace/dataset.html", status,
                         **_choices(desk.hub, session.user.viewer), **facts,
                         form=state or form.FormState(form.values_of(record)),
                         message=message, done=done)

    @router.get(ONE + "/{name}", response_class=HTMLResponse)
    async def dataset(request: Request, name: str) -> Response:
        session = await desk.session(request)
        record = await run_in_threadpool(editable_record, desk.hub, session.user.viewer, name)
        return await dataset_page(request, session, record)

    @router.post(ONE + "/{name}", response_class=HTMLResponse)
    async def change(request: Request, name: str) -> Response:
        session = await desk.session(request)
        fields = await desk.form(request, session, max_fields=MAX_FIELDS)
        viewer = session.user.viewer
        record = await run_in_threadpool(editable_record, desk.hub, viewer, name)
        saved = await run_in_threadpool(update, desk.hub, viewer, record, fields)
        if saved.record is None:
            return await dataset_page(request, session, record, saved.state, saved.status)
        return see_other(f"{ONE}/{quote(saved.record.name)}?erledigt=saved")

    @router.post(ONE + "/{name}/veroeffentlichung", response_class=HTMLResponse)
    async def publication(request: Request, name: str) -> Response:
        session = await desk.session(request)
        fields = await desk.form(request, session)
        viewer = session.user.viewer
        record = await run_in_threadpool(editable_record, desk.hub, viewer, name)
        try:
            done = await run_in_threadpool(act, desk.hub, viewer, record, fields)
        except NotReady:
            return await dataset_page(request, session, record, status=409,
                                      message=(NOT_READY, {}))
        except Conflict:
            return await dataset_page(request, session, record, status=409,
                                      message=(CONFLICT, {}))
        except HubError as exc:
            if getattr(exc, "http_status", None) == 403:
                raise
            return await dataset_page(request, session, record, status=400,
                                      message=(form.INVALID, {"detail": str(exc)}))
        return see_other(f"{ONE}/{quote(record.name)}?erledigt={done}")

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
