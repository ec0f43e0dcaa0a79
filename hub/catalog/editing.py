"""Changing the catalog: the functions every face calls to create, change, delete and rename
records and to add organisations — the CKAN API, the `hub catalog` commands, the coming web
workspace and Python API.

Each one checks the rules of `hub.access` for the viewer (raising `Forbidden`), validates with
`hub.catalog.model.validate` (raising `RecordInvalid`), checks a record that is or becomes
public against the publication checklist (`hub.catalog.checklist.require_ready`, raising
`NotReady`) and writes; a change based on an outdated revision of the record raises
`Conflict`, a name or id in use `NameTaken`. Faces translate their
input into a record dict and these errors into their own (HTTP status, CLI message).

Every write is recorded in the audit trail (`hub.audit`) in the write's transaction (`audited`):
the fields that changed, before and after, by the viewer's user ("cli" for the operator's
commands, "hub" for the hub's own work).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from hub import audit
from hub.access import (
    ADMIN,
    Viewer,
    check_create,
    check_delete,
    check_manage_organizations,
    check_update,
    may_choose_id,
    owner_id,
    require_editor_of,
    require_writer,
)
from hub.catalog.checklist import require_ready
from hub.catalog.index import Catalog, NameTaken
from hub.catalog.model import ALL_STATES, Record, validate
from hub.catalog.vocab import Organization, Vocabularies
from hub.errors import StoreError


@dataclass(frozen=True)
class Editing:
    """The catalog, its vocabularies and who is changing it."""

    catalog: Catalog
    vocab: Vocabularies
    viewer: Viewer

    def owner(self, name: str) -> str | None:
        """The organisation owning data the hub holds under `name` (None: no such data)."""
        try:
            dataset = self.catalog.store.dataset(name)
        except StoreError:
            return None
        return owner_id(dataset.organization, self.vocab)

    def _stored(self, record: Record) -> Record:
        return self.catalog.get(record.id, ADMIN, ALL_STATES) or record

    def require(self, old: Record | None) -> None:
        """The checks that need no new data: a writer, and an editor of `old` (faces call it
        before reading their input, so who may not write learns nothing from its errors)."""
        require_writer(self.viewer)
        if old is not None:
            require_editor_of(self.viewer, old.publisher)

    def create(self, data: dict[str, Any], where: str = "") -> Record:
        """Register a new record; only admins choose its `id` (others get a random one)."""
        require_writer(self.viewer)
        if data.get("id") and not may_choose_id(self.viewer):
            data = {**data, "id": str(uuid.uuid4())}
        record = validate(data, self.vocab, where)
        check_create(self.viewer, record, self.owner(record.name))
        require_ready(self.catalog.store, None, record)
        taken = self.catalog.get(record.name, ADMIN, ALL_STATES)
        freed = [taken.name] if taken is not None and taken.state == "deleted" else []
        # a deleted record gives its name up (in the same transaction)
        self.catalog.upsert_many([record], create=True, delete=freed,
                                 then=audited(self.catalog, self.actor, [record], freed))
        return self._stored(record)

    def update(self, old: Record, data: dict[str, Any], expected: int | None = None,
               where: str = "") -> Record:
        """Replace `old` by the record `data` describes (keeping its id and origin); a new
        `name` renames it. `expected`: the revision the change is based on."""
        self.require(old)
        record = validate({**data, "id": old.id, "origin": old.origin}, self.vocab, where)
        return self.replace(old, record, expected)

    def patch(self, old: Record, changes: dict[str, Any], expected: int | None = None,
              where: str = "") -> Record:
        """Change only the fields given; the whole record is validated again."""
        return self.update(old, {**editable(old), **changes}, expected, where)

    def replace(self, old: Record, record: Record, expected: int | None = None) -> Record:
        """Store an already validated `record` in place of `old`."""
        taken = self.catalog.get(record.name, ADMIN, ALL_STATES)
        if taken is not None and taken.id != old.id:
            raise NameTaken(record.name)  # the first problem of a rename onto a used name
        check_update(self.viewer, old, record, self.owner(old.name), self.owner(record.name))
        require_ready(self.catalog.store, self._stored(old), record)
        self.catalog.upsert(record, expected=expected,
                            then=audited(self.catalog, self.actor, [record]))
        return self._stored(record)

    def delete(self, record: Record, expected: int | None = None) -> Record:
        """Soft delete: the record stays (and so does its access), out of every list."""
        check_delete(self.viewer, record)
        record.state = "deleted"
        self.catalog.upsert(record, expected=expected,
                            then=audited(self.catalog, self.actor, [record]))
        return self._stored(record)

    def add_organization(self, org: Organization) -> Organization:
        check_manage_organizations(self.viewer)
        self.catalog.add_organization(org, then=lambda: audit.record(
            self.catalog.store.db, actor=self.actor, action="organization.create",
            subject=org.id, after=asdict(org)))
        return org

    @property
    def actor(self) -> str:
        """Who the audit trail names: the viewer's user."""
        return self.viewer.user or "unknown"


def audited(catalog: Catalog, actor: str, records: list[Record],
            removed: list[str] | tuple[str, ...] = ()) -> Callable[[list[str]], None]:
    """What `Catalog.upsert_many` calls inside its transaction to record the writes of
    `records` (and the records `removed` for good) in the audit trail: one entry per record
    created, changed or deleted, with the fields that changed (read before the write)."""
    stored = {r.id: catalog.get(r.id, ADMIN, ALL_STATES) or catalog.get(r.name, ADMIN, ALL_STATES)
              for r in records}
    gone = [found for name in removed if (found := catalog.get(name, ADMIN, ALL_STATES))]

    def then(outcomes: list[str]) -> None:
        db = catalog.store.db
        for old in gone:
            audit.record(db, actor=actor, action="record.remove", subject=old.name,
                         before=old.curated())
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome == "unchanged":
                continue
            old = stored.get(record.id)
            before, after = changes(old.curated() if old else None, record.curated())
            action = ("record.create" if outcome == "created" else "record.delete"
                      if record.state == "deleted" and old is not None and old.state != "deleted"
                      else "record.update")
            audit.record(db, actor=actor, action=action, subject=record.name, before=before,
                         after=after)
    return then


def changes(old: dict[str, Any] | None, new: dict[str, Any]
            ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The fields that differ, as they were and as they are (all fields of a new record)."""
    if old is None:
        return None, {k: v for k, v in new.items() if v not in (None, "", [], {})}
    keys = [k for k in {**old, **new} if old.get(k) != new.get(k)]
    return {k: old.get(k) for k in keys}, {k: new.get(k) for k in keys}


def editable(record: Record) -> dict[str, Any]:
    """A record as the dict `validate` takes, without empty fields."""
    return {k: v for k, v in record.curated().items() if v not in (None, "", [], {})}
