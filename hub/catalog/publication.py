"""Publishing a dataset step by step: draft → internal → public, and withdrawing it.

Where the state lives. The record model expresses the workflow without a table of its own:

- draft: the record's `state` is `draft` — seen only by its organisation's editors (and
  admins), and the data the hub holds under its name only by its owner
  (`hub.catalog.index.Catalog.access`);
- internal: `state` active, `access` internal (or restricted: the organisations it names);
- public: `state` active, `access` public;
- withdrawn: `state` deleted — out of every list and feed, the record and every version of its
  data kept and retrievable by admins (and its owner's editors), its data again its owner's only.

The register form's access level is the level a record has once published; publishing to
`internal` narrows a public one to internal until it is published to `public`. What the record
cannot hold is an editor's open request for a publisher to approve: that is one row of the
small table `publication_requests` (hub/db/schema.py), removed when the request is approved or
the record withdrawn.

Who may: `hub.access` (`check_request`, `check_publish`, `check_withdraw`); a district may let
editors publish directly (`workspace: editors_publish: true` in catalog/district.yaml).
Publishing to `public` needs the checklist (`hub.catalog.checklist`) to pass: licence,
contact, update frequency, an owner, a map or table preview (the hub holds a version of the
data) whose current version passed validation — for a metadata-only record the access note
instead of the preview. Each change is written through `hub.catalog.editing`, which applies
that rule to every write (so the record is validated, revision-checked and checked against
the checklist like every other change, from every face). The CLI (`hub catalog
publish/withdraw`) and the workspace call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, delete, select

from hub import audit
from hub.access import check_publish, check_request, check_withdraw
from hub.catalog.checklist import Item, NotReady, checklist, current_version, stage
from hub.catalog.editing import Editing
from hub.catalog.model import Record
from hub.db.schema import publication_requests
from hub.errors import Conflict, HubError
from hub.store.versions import now

__all__ = ["STAGES", "TARGETS", "Item", "NotReady", "Publication", "Request", "checklist",
           "editors_publish", "stage"]

TARGETS = ("internal", "public")
STAGES = ("draft", "internal", "public", "withdrawn")


@dataclass(frozen=True)
class Request:
    """An open request to publish a record."""

    record: str
    target: str
    requested_by: str
    requested: str


def editors_publish(district_settings: dict[str, Any]) -> bool:
    """Does the district let editors publish directly (`workspace: editors_publish: true`)?"""
    workspace = district_settings.get("workspace") or {}
    return isinstance(workspace, dict) and workspace.get("editors_publish") is True


@dataclass(frozen=True)
class Publication:
    """The workflow for one viewer (`editing.viewer`) in one district."""

    editing: Editing
    editors_publish: bool = False

    @property
    def _db(self):
        return self.editing.catalog.store.db

    def checklist(self, record: Record) -> list[Item]:
        return checklist(record, current_version(self.editing.catalog.store, record))

    def pending(self, record: Record) -> Request | None:
        with self._db.connection() as db:
            row = db.execute(select(publication_requests).where(
                publication_requests.c.record == record.id)).first()
        return Request(**row._asdict()) if row else None

    def may_publish(self, record: Record) -> bool:
        try:
            check_publish(self.editing.viewer, record, self.editors_publish)
        except HubError:
            return False
        return True

    def request(self, record: Record, target: str) -> Request:
        """Ask a publisher to publish `record` to `target` (replaces an earlier request)."""
        _check_target(record, target)
        check_request(self.editing.viewer, record)
        if target == "public":
            self._ready(record)
        found = Request(record.id, target, self.editing.viewer.user or "", now())
        with self._db.write() as db:
            db.execute(delete(publication_requests).where(
                publication_requests.c.record == record.id))
            db.execute(publication_requests.insert().values(
                record=found.record, target=found.target, requested_by=found.requested_by,
                requested=found.requested))
            self._audit("publication.request", record, None, {"target": target}, db)
        return found

    def publish(self, record: Record, target: str, expected: int | None = None) -> Record:
        """Publish `record` to `target` (approving an open request, if any)."""
        _check_target(record, target)
        check_publish(self.editing.viewer, record, self.editors_publish)
        changed = replace(record, restricted_to=list(record.restricted_to))
        changed.state = "active"
        if target == "public":
            changed.access, changed.restricted_to = "public", []
        elif record.access == "public":
            changed.access = "internal"
        saved = self.editing.replace(record, changed, expected)
        self._forget(record, "publication.approve", _state(record), _state(saved))
        return saved

    def withdraw(self, record: Record, expected: int | None = None) -> Record:
        """Take `record` out of every list and feed; it and its data's versions are kept."""
        check_withdraw(self.editing.viewer, record)
        if record.state == "deleted":
            raise Conflict(f"{record.name} is withdrawn already")
        saved = self.editing.delete(replace(record), expected)
        self._forget(record, "publication.withdraw", _state(record), _state(saved))
        return saved

    def _ready(self, record: Record) -> None:
        missing = [item for item in self.checklist(record) if not item.ok]
        if missing:
            raise NotReady(record.name, missing)

    def _forget(self, record: Record, action: str, before: dict[str, Any],
                after: dict[str, Any]) -> None:
        """The request is done; the change goes into the audit trail."""
        with self._db.write() as db:
            db.execute(delete(publication_requests).where(
                publication_requests.c.record == record.id))
            self._audit(action, record, before, after, db)

    def _audit(self, action: str, record: Record, before: dict[str, Any] | None,
               after: dict[str, Any] | None, db: Connection) -> None:
        audit.record(self._db, actor=self.editing.viewer.user or "unknown", action=action,
                     subject=record.name, before=before, after=after, connection=db)


def _state(record: Record) -> dict[str, Any]:
    return {"stage": stage(record), "state": record.state, "access": record.access}


def _check_target(record: Record, target: str) -> None:
    if target not in TARGETS:
        raise HubError(f"publish to {target!r}: must be one of {', '.join(TARGETS)}")
    if stage(record) == target:
        raise Conflict(f"{record.name} is {target} already")
    if stage(record) == "public" and target == "internal":
        raise Conflict(f"{record.name} is public: withdraw it first")
