"""Write actions (CKAN's create/update/patch/delete), for API tokens with the right role.

A thin translation: the package dict becomes a record dict, `hub.catalog.editing` checks the
rules of `hub.access`, validates, checks the publication checklist and writes, and its errors
become CKAN's (Forbidden: 403 Authorization Error, RecordInvalid and NameTaken: 409 Validation
Error, Conflict: 409 with the `if_revision` field, NotReady — a public dataset, by `private`
false or left out as in CKAN, that fails the checklist — 409 Validation Error naming each
missing item under `private` and its own field). `package_update` replaces the whole
dataset, as CKAN's does; `package_patch` changes only the keys given. Deleting keeps the
record (state `deleted`).

Optimistic concurrency: `package_show` gives each dataset's `hub_revision`; an update, patch or
delete that sends it back as `if_revision` is refused while another change came in between.
"""

from __future__ import annotations

import contextlib
import copy
import mimetypes
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from hub.access import check_manage_organizations, may_choose_id
from hub.api.ckan import packages as dicts
from hub.api.ckan.core import Call, NotAuthorized, NotFound, ValidationError, action, required
from hub.api.ckan.get import find_package, show_states
from hub.catalog.checklist import NotReady
from hub.catalog.editing import Editing
from hub.catalog.expr import Match
from hub.catalog.index import NameTaken, Query
from hub.catalog.model import ALL_STATES, SLUG, Record, RecordInvalid
from hub.catalog.uploads import Received, UploadTooLarge
from hub.catalog.vocab import Organization
from hub.errors import Conflict, Forbidden
from hub.store.versions import now


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The core's errors as CKAN reports them."""
    try:
        yield
    except Forbidden as exc:
        raise NotAuthorized(str(exc)) from None
    except Conflict as exc:
        raise ValidationError({"if_revision": [str(exc)]}) from None
    except RecordInvalid as exc:
        raise ValidationError({dicts.error_field(k): ["Missing value" if v == "is required"
                                                      else v] for k, v in exc.errors.items()}
                              ) from None
    except NotReady as exc:
        raise ValidationError(_not_ready(exc)) from None
    except NameTaken as exc:
        if exc.key == "id":
            raise ValidationError({"id": ["Dataset id already exists"]}) from None
        raise ValidationError({"name": ["That URL is already in use."]}) from None


# the package dict's field for each item of the publication checklist
CHECKLIST_FIELDS = {"license": "license_id", "contact": "maintainer_email",
                    "frequency": "frequency", "owner": "maintainer",
                    "access_note": "access_note", "preview": "resources",
                    "validation": "resources"}


def _not_ready(exc: NotReady) -> dict[str, list[str]]:
    """A record that may not be public (yet), as CKAN's ValidationError: `private` names
    every missing item of the publication checklist, each field its own."""
    errors = {"private": ["may not be public yet: the publication checklist misses "
                          + ", ".join(item.label for item in exc.missing)
                          + " (or send private: true to keep it internal)"]}
    for item in exc.missing:
        errors.setdefault(CHECKLIST_FIELDS[item.key], []).append(f"{item.label}: {item.hint}")
    return errors


def _editing(call: Call) -> Editing:
    return Editing(call.catalog, call.vocab, call.viewer)


def _expected(data: dict[str, Any]) -> int | None:
    """The revision a change is based on (`if_revision`), if the caller sent one."""
    value = data.get("if_revision")
    if value in (None, ""):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValidationError({"if_revision": ["Invalid integer (the hub_revision of "
                                               "package_show)"]}) from None


def _save(call: Call, pkg: dict[str, Any], old: Record | None,
          expected: int | None = None) -> Record:
    """Validate a package dict and store it as a new record or in place of `old`."""
    with _translated():
        editing = _editing(call)
        editing.require(old)  # who may not write learns nothing from validation errors
        try:
            data = dicts.record_data(pkg, call.site, old)
        except dicts.PackageInvalid as exc:
            raise ValidationError(exc.errors) from None
        if not data.get("publisher"):
            raise ValidationError({"owner_org": ["Missing value"]})
        if old is not None:
            return editing.update(old, data, expected)
        data["origin"] = "api"
        if not data.get("id"):
            data["id"] = str(uuid.uuid4())  # as in CKAN: new, random; only admins choose one
        return editing.create(data)


@action()
def package_create(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Create a dataset (`name`, `title`, `notes`, `owner_org`, `license_id`, `tags`, `groups`,
    `extras`, `resources`, `private`). Editors of `owner_org` and admins; only admins set `id`;
    a name under which the hub holds data only editors of the data's organisation and admins."""
    return dicts.package(_save(call, data, None), call.site)


@action()
def package_update(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Replace a dataset (`id` or `name`) as a whole: fields and resources left out are removed.
    `if_revision`: refuse if the dataset is no longer at this `hub_revision`."""
    old = find_package(call, required(data, "id") if data.get("id") else
                       required(data, "name"))
    return dicts.package(_save(call, data, old, _expected(data)), call.site)


@action()
def package_patch(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Change only the given top-level fields of a dataset (`id`); `if_revision` as for
    package_update."""
    old = find_package(call, required(data, "id"))
    merged = {**dicts.package(old, call.site), **data, "id": old.id}
    return dicts.package(_save(call, merged, old, _expected(data)), call.site)


@action()
def package_delete(call: Call, data: dict[str, Any]) -> None:
    """Delete a dataset (`id`): its state becomes `deleted`, it leaves every list and feed."""
    with _translated():
        editing = _editing(call)
        editing.require(None)
        editing.delete(find_package(call, required(data, "id")), _expected(data))


# -- resources ------------------------------------------------------------------------------

def _resource_owner(call: Call, key: str) -> tuple[Record, int]:
    with _translated():
        _editing(call).require(None)
    for record in call.catalog.search(Query(where=Match("resource", key), rows=1, facets=(),
                                            states=show_states(call)), call.viewer).records:
        for i, d in enumerate(record.distributions):
            if d.id == key:
                return record, i
        raise ValidationError({"id": ["this resource is the hub's own download of the data; "
                                      "it changes with the data, not through the API"]})
    raise NotFound("Resource was not found.")


def _receive(call: Call) -> Received | None:
    upload = call.files.get("upload")
    if upload is None:
        return None
    try:
        return call.uploads.receive(upload.stream, upload.filename)
    except UploadTooLarge as exc:
        raise ValidationError({"upload": [str(exc)]}) from None


def _store_resource(call: Call, record: Record, position: int | None,
                    res: dict[str, Any]) -> dict[str, Any]:
    """Put resource `res` at `position` (None: append), with an uploaded file if one came."""
    received = _receive(call)
    try:
        if received is not None:
            res.update(url=f"/dataset/{record.id}/resource/{res['id']}/download/"
                           f"{quote(received.filename)}", url_type="upload", size=received.size,
                       hash=f"sha256:{received.sha256}", last_modified=now())
            res.setdefault("mimetype", mimetypes.guess_type(received.filename)[0])
        res.setdefault("created", now())
        pkg = dicts.package(record, call.site)
        resources = pkg["resources"][:len(record.distributions)]
        if position is None:
            resources.append(res)
        else:
            resources[position] = res
        if received is not None:  # keep the file attached to the resource's id
            record.distributions = [d for d in record.distributions if d.id != res["id"]]
        saved = _save(call, {**pkg, "resources": resources}, record)
        dist = next(d for d in saved.distributions if d.id == res["id"])
        if received is not None:
            with _translated():
                uploaded = copy.deepcopy(saved)
                next(d for d in uploaded.distributions if d.id == dist.id).upload = \
                    received.filename
                saved = _editing(call).replace(saved, uploaded)
            call.uploads.commit(received, saved.id, dist.id)
            received = None
    finally:
        call.uploads.discard(received)
    saved = call.catalog.get(saved.id, call.viewer, ALL_STATES) or saved
    index = [d.id for d in saved.served()].index(res["id"])
    return dicts.resource(saved.served()[index], saved, index, call.site)


def _resource_input(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("upload", "package_id", "clear_upload")}


@action()
def resource_create(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Add a resource to a dataset (`package_id`, `url` or a multipart `upload`, `name`,
    `description`, `format`)."""
    with _translated():
        _editing(call).require(None)
    record = find_package(call, required(data, "package_id"))
    res = _resource_input(data)
    if not res.get("url") and "upload" not in call.files:
        raise ValidationError({"url": ["Missing value"]})
    res["id"] = str(res.get("id") or uuid.uuid4()) if may_choose_id(call.viewer) \
        else str(uuid.uuid4())
    return _store_resource(call, record, None, res)


@action()
def resource_update(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Replace a resource (`id`); an uploaded file stays unless a new `upload`, a `url` or
    `clear_upload` is given."""
    record, position = _resource_owner(call, required(data, "id"))
    old = record.distributions[position]
    res = _resource_input(data)
    if old.upload and not res.get("url") and "upload" not in call.files \
            and not data.get("clear_upload"):
        res["url_type"] = "upload"  # the file stays
    if not res.get("url") and not old.upload and "upload" not in call.files:
        raise ValidationError({"url": ["Missing value"]})
    return _store_resource(call, record, position, res)


@action()
def resource_patch(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Change only the given fields of a resource (`id`)."""
    record, position = _resource_owner(call, required(data, "id"))
    current = dicts.resource(record.distributions[position], record, position, call.site)
    return resource_update(call, {**current, **data})


@action()
def resource_delete(call: Call, data: dict[str, Any]) -> None:
    """Remove a resource (`id`) from its dataset."""
    record, position = _resource_owner(call, required(data, "id"))
    pkg = dicts.package(record, call.site)
    resources = pkg["resources"][:len(record.distributions)]
    del resources[position]
    _save(call, {**pkg, "resources": resources}, record)


# -- organisations --------------------------------------------------------------------------

@action()
def organization_create(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Create an organisation (`name`, `title`, `description`, `kind`); admins only."""
    with _translated():
        check_manage_organizations(call.viewer)
    name = required(data, "name")
    if not SLUG.match(name) or len(name) < 2:
        raise ValidationError({"name": ["Must be purely lowercase alphanumeric (ascii) "
                                        "characters and these symbols: -_"]})
    if dicts.find_organization(name, call.vocab) is not None:
        raise ValidationError({"name": ["Group name already exists in database"]})
    kind = str(data.get("kind") or "external")
    if kind not in ("department", "municipality", "external"):
        raise ValidationError({"kind": ["must be department, municipality or external"]})
    org = Organization(id=name, name=str(data.get("title") or name).strip(), kind=kind,
                       description=str(data.get("description") or "").strip(),
                       email=str(data.get("email") or ""), url=str(data.get("url") or ""))
    if problems := org.link_problems():
        raise ValidationError({key: [problem] for key, problem in problems.items()})
    try:
        _editing(call).add_organization(org)  # (admins: checked above)
    except NameTaken:
        raise ValidationError({"name": ["Group name already exists in database"]}) from None
    return dicts.organization(org, call.site, 0)
