"""Public aggregates an admin allowed: the second way (beside the input owner's
`public_derivatives`) for a public derived dataset to read a dataset that is not public.

The decision is `hub.access.check_derivation`'s; this module keeps the admins' side of it in
the database (table `public_aggregates`), each change audited (`derived.allow`,
`derived.revoke`). `hub derived allow|revoke|list` is the command. A revoked allowance stops the
next derived run (the version made before stays current, as when an owner removes a name from
`public_derivatives`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from hub import audit
from hub.access import Viewer, check_allow_aggregate
from hub.db import Database
from hub.db.schema import public_aggregates as table
from hub.errors import HubError
from hub.store.versions import now

Pair = tuple[str, str]  # (input, derived)
_ALL = select(table.c.input, table.c.derived)


@dataclass(frozen=True)
class Allowance:
    input: str
    derived: str
    allowed_by: str
    allowed: str
    reason: str


class NotAllowed(HubError):
    """Revoking an allowance that does not exist."""

    http_status = 404


def allowed(db: Database) -> frozenset[Pair]:
    """Every (input, derived) pair an admin allowed."""
    return frozenset((row["input"], row["derived"]) for row in db.rows(_ALL))


def for_input(pairs: frozenset[Pair], name: str) -> tuple[str, ...]:
    """The derived datasets allowed to be public aggregates of `name`, sorted."""
    return tuple(sorted(derived for source, derived in pairs if source == name))


def listing(db: Database) -> list[Allowance]:
    with db.connection() as conn:
        rows = conn.execute(select(table).order_by(table.c.input, table.c.derived)).mappings()
        return [Allowance(**row) for row in rows]


def allow(db: Database, viewer: Viewer, source: str, derived: str, reason: str = "") -> bool:
    """Allow `derived` to be a public aggregate of `source` (admins only: `Forbidden`);
    False if it was allowed already."""
    check_allow_aggregate(viewer)
    for what, name in (("input", source), ("derived dataset", derived)):
        if not name.strip():
            raise HubError(f"name the {what}")
    with db.write() as conn:
        if conn.execute(select(table.c.input).where(
                table.c.input == source, table.c.derived == derived)).first() is not None:
            return False
        conn.execute(table.insert().values(input=source, derived=derived,
                                           allowed_by=viewer.user or "", allowed=now(),
                                           reason=reason))
        audit.record(db, actor=viewer.user or "", action="derived.allow",
                     subject=f"{source} → {derived}", after={"reason": reason},
                     connection=conn)
    return True


def revoke(db: Database, viewer: Viewer, source: str, derived: str) -> None:
    """Withdraw an admin's allowance (admins only); `NotAllowed` if there is none."""
    check_allow_aggregate(viewer)
    with db.write() as conn:
        gone = conn.execute(delete(table).where(table.c.input == source,
                                                table.c.derived == derived)).rowcount
        if not gone:
            raise NotAllowed(f"no admin allowed {derived!r} as a public aggregate of "
                             f"{source!r} (see `hub derived list`)")
        audit.record(db, actor=viewer.user or "", action="derived.revoke",
                     subject=f"{source} → {derived}", connection=conn)
