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
Publishing to `public` needs the checklist (`checklist`) to pass: licence, contact, update
frequency, an owner, a map or table preview (the hub holds a version of the data) whose
current version passed validation — for a metadata-only record the access note instead of the
preview. Each change is written through `hub.catalog.editing` (so the record is validated
and revision-checked like every other change). The CLI (`hub catalog publish/withdraw`) and
the workspace call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, delete, select

from hub import audit
from hub.access import check_publish, check_request, check_withdraw
from hub.catalog.editing import Editing
from hub.catalog.model import Record
from hub.db.schema import publication_requests
from hub.errors import Conflict, HubError, StoreError
from hub.store.versions import Version, now

TARGETS = ("internal", "public")
STAGES = ("draft", "internal", "public", "withdrawn")


class NotReady(HubError):
    """The checklist does not pass: the record may not be published yet (HTTP 409)."""

    http_status = 409

    def __init__(self, name: str, missing: list[Item]):
        self.missing = missing
        super().__init__(f"{name} cannot be published yet: "
                         + "; ".join(f"{item.label}: {item.hint}" for item in missing))


@dataclass(frozen=True)
class Item:
    """One point of the checklist: what it asks for, whether the record has it, and what to
    do otherwise (for the CLI; the workspace words each `key` in the page's language)."""

    key: str
    label: str
    ok: bool
    hint: str


@dataclass(frozen=True)
class Request:
    """An open request to publish a record."""

    record: str
    target: str
    requested_by: str
    requested: str


def stage(record: Record) -> str:
    """Where `record` is in the workflow (see the module's docstring)."""
    if record.state == "deleted":
        return "withdrawn"
    if record.state == "draft":
        return "draft"
    return "public" if record.access == "public" else "internal"


def editors_publish(district_settings: dict[str, Any]) -> bool:
    """Does the district let editors publish directly (`workspace: editors_publish: true`)?"""
    workspace = district_settings.get("workspace") or {}
    return isinstance(workspace, dict) and workspace.get("editors_publish") is True


def current_version(editing: Editing, record: Record) -> Version | None:
    """The current version of the data the hub holds under the record's name, if any."""
    if not record.data_held:
        return None
    try:
        return editing.catalog.store.current(record.name)
    except StoreError:
        return None


def checklist(record: Record, version: Version | None) -> list[Item]:
    """What publishing `record` to `public` needs; `version`: the current version of its
    data (None: the hub holds none)."""
    contact = record.contact
    items = [
        Item("license", "licence", bool(record.license), "choose a licence"),
        Item("contact", "contact", bool(contact.get("email") or contact.get("url")),
             "give an e-mail address or web page for questions"),
        Item("frequency", "update frequency", record.frequency not in ("", "UNKNOWN"),
             "say how often the dataset is updated"),
        Item("owner", "owner", bool(record.publisher and contact.get("name")),
             "name the unit or person who keeps the dataset (the contact's name)"),
    ]
    if not record.data_held:
        items.append(Item("access_note", "access note", bool(record.access_note),
                          "say who holds the data and how to get it"))
        return items
    items.append(Item("preview", "map or table preview", version is not None,
                      "bring the data into the hub (a version with a preview)"))
    valid = version is not None and not version.broken and version.quarantined == 0 and not (
        version.report or {}).get("violation_count")
    items.append(Item("validation", "current version passes validation", valid,
                      "fix the problems of the validation report and run again"))
    return items


@dataclass(frozen=True)
class Publication:
    """The workflow for one viewer (`editing.viewer`) in one district."""

    editing: Editing
    editors_publish: bool = False

    @property
    def _db(self):
        return self.editing.catalog.store.db

    def checklist(self, record: Record) -> list[Item]:
        return checklist(record, current_version(self.editing, record))

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
        if target == "public":
            self._ready(record)
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
