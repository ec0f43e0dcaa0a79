"""Registering and changing a record with an entry in the audit trail (`hub.audit`): what the
workspace calls (the checks, validation and writing are `hub.catalog.editing`'s)."""

from __future__ import annotations

from typing import Any

from hub import audit
from hub.catalog.editing import Editing, editable
from hub.catalog.model import Record


def register(editing: Editing, data: dict[str, Any], where: str = "") -> Record:
    """`Editing.create`, recorded as `dataset.register`."""
    record = editing.create(data, where)
    audit.record(editing.catalog.store.db, actor=_actor(editing), action="dataset.register",
                 subject=record.name, after=editable(record))
    return record


def update(editing: Editing, old: Record, data: dict[str, Any], expected: int | None = None,
           where: str = "") -> Record:
    """`Editing.update`, recorded as `record.update` with the fields before and after."""
    record = editing.update(old, data, expected, where)
    before, after = editable(old), editable(record)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        audit.record(editing.catalog.store.db, actor=_actor(editing), action="record.update",
                     subject=record.name, before={k: before.get(k) for k in changed},
                     after={k: after.get(k) for k in changed})
    return record


def _actor(editing: Editing) -> str:
    return editing.viewer.user or "unknown"
