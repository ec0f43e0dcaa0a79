"""Write actions (CKAN's create/update/patch/delete), for API tokens with the right role.

Every write ends in `hub.catalog.model.validate` and `Catalog.upsert`, like every other way of
registering a dataset. `package_update` replaces the whole dataset, as CKAN's does;
`package_patch` changes only the keys given. Deleting keeps the record (state `deleted`).
"""

from __future__ import annotations

import mimetypes
import uuid
from typing import Any
from urllib.parse import quote

from hub.api.ckan import packages as dicts
from hub.api.ckan.core import Call, NotAuthorized, NotFound, ValidationError, action, required
from hub.api.ckan.get import find_package, show_states
from hub.catalog.expr import Match
from hub.catalog.index import NameTaken, Query
from hub.catalog.model import ADMIN, ALL_STATES, SLUG, Record, RecordInvalid, validate
from hub.catalog.uploads import Received, UploadTooLarge
from hub.catalog.vocab import Organization
from hub.store.versions import now


def _writer(call: Call) -> None:
    if not (call.viewer.editor or call.viewer.admin):
        raise NotAuthorized("writing needs an API token of an editor or admin "
                            "(header Authorization)")


def _editable(call: Call, publisher: str) -> None:
    if not call.viewer.may_edit(publisher):
        raise NotAuthorized(f"user {call.viewer.user!r} may not edit datasets of the "
                            f"organization {publisher!r}")


def _save(call: Call, pkg: dict[str, Any], old: Record | None) -> Record:
    """Validate a package dict and store it as a new record or in place of `old`."""
    _writer(call)
    try:
        data = dicts.record_data(pkg, call.site, old)
    except dicts.PackageInvalid as exc:
        raise ValidationError(exc.errors) from None
    if not data.get("publisher"):
        raise ValidationError({"owner_org": ["Missing value"]})
    if old is not None:
        _editable(call, old.publisher)
        data["id"], data["origin"] = old.id, old.origin
    else:
        data["origin"] = "api"
        if not call.viewer.admin or not data.get("id"):
            data["id"] = str(uuid.uuid4())  # as in CKAN: new, random; only admins choose one
    _editable(call, data["publisher"])
    try:
        record = validate(data, call.vocab)
    except RecordInvalid as exc:
        raise ValidationError({dicts.error_field(k): ["Missing value" if v == "is required"
                                                      else v] for k, v in exc.errors.items()}
                              ) from None
    if old is None:
        taken = call.catalog.get(record.name, ADMIN, ALL_STATES)
        if taken is not None and taken.state == "deleted":
            call.catalog.delete(taken.name)  # a deleted dataset gives its name up
    try:
        call.catalog.upsert(record, create=old is None)
    except NameTaken as exc:
        if exc.key == "id":
            raise ValidationError({"id": ["Dataset id already exists"]}) from None
        raise ValidationError({"name": ["That URL is already in use."]}) from None
    return call.catalog.get(record.id, call.viewer, ALL_STATES) or record


@action()
def package_create(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Create a dataset (`name`, `title`, `notes`, `owner_org`, `license_id`, `tags`, `groups`,
    `extras`, `resources`, `private`). Editors of `owner_org` and admins; only admins set `id`."""
    _writer(call)
    return dicts.package(_save(call, data, None), call.site)


@action()
def package_update(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Replace a dataset (`id` or `name`) as a whole: fields and resources left out are removed."""
    old = find_package(call, required(data, "id") if data.get("id") else
                       required(data, "name"))
    return dicts.package(_save(call, data, old), call.site)


@action()
def package_patch(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Change only the given top-level fields of a dataset (`id`)."""
    old = find_package(call, required(data, "id"))
    merged = {**dicts.package(old, call.site), **data, "id": old.id}
    return dicts.package(_save(call, merged, old), call.site)


@action()
def package_delete(call: Call, data: dict[str, Any]) -> None:
    """Delete a dataset (`id`): its state becomes `deleted`, it leaves every list and feed."""
    _writer(call)
    record = find_package(call, required(data, "id"))
    _editable(call, record.publisher)
    record.state = "deleted"
    call.catalog.upsert(record)


# -- resources ------------------------------------------------------------------------------

def _resource_owner(call: Call, key: str) -> tuple[Record, int]:
    _writer(call)
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
            dist.upload = received.filename
            call.catalog.upsert(saved)
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
    _writer(call)
    record = find_package(call, required(data, "package_id"))
    res = _resource_input(data)
    if not res.get("url") and "upload" not in call.files:
        raise ValidationError({"url": ["Missing value"]})
    res["id"] = str(res.get("id") or uuid.uuid4()) if call.viewer.admin else str(uuid.uuid4())
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
    if not call.viewer.admin:
        raise NotAuthorized("only admins create organizations")
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
        call.catalog.add_organization(org)
    except NameTaken:
        raise ValidationError({"name": ["Group name already exists in database"]}) from None
    return dicts.organization(org, call.site, 0)
