"""The audit trail: who changed what, when, from what to what — append-only and tamper-evident.

Every change to data, metadata, pipelines, users, roles, tokens and publication state is
recorded by the core function that makes it (so the CLI, the CKAN API and the workspace are all
covered) with `record`. An entry holds its number (`id`, consecutive from 1: a gap is a
deletion), the time, the actor (a user name, or "cli" for the operator's commands and "hub"
for the hub's own work such as harvests), a dotted action ("record.update", "user.role",
"version.commit", …), the subject (a dataset, user, token or organisation) and the state
before and after as JSON. Never a secret: values under the keys in `SECRET_KEYS` are replaced
by "***" on the way in.

Each entry carries the hash of the one before it (`prev_hash`; the first: `GENESIS`) and its
own hash, the SHA-256 of its canonical form (`canonical`) — so editing, deleting or inserting
an entry breaks the chain where it happened, and `verify` names that entry. Appends are
serialised inside the writing transaction (SQLite: its write lock; PostgreSQL: an advisory
lock held to the end of the transaction), and `prev_hash` is unique, so the chain cannot fork
under concurrent writers. What the chain cannot show by itself is the loss of its newest
entries: `verify` reports the head's hash, which an operator may note elsewhere and pass back
(`hub audit verify --head HASH`) to prove nothing after it was cut off.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import astuple, dataclass, fields
from typing import Any

from sqlalchemy import Connection, Select, func, select, text

from hub.db import Database
from hub.db.schema import audit
from hub.errors import HubError
from hub.spreadsheet import safe_row

GENESIS = "0" * 64  # the `prev_hash` of the first entry
LOCK_KEY = 0x6875622D61756474  # "hub-audt": the advisory lock that serialises appends
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
SECRET_KEYS = frozenset({"password", "secret", "token_secret", "totp_secret", "totp_pending",
                         "recovery_codes", "csrf"})


@dataclass(frozen=True)
class Entry:
    id: int
    at: str
    actor: str
    action: str
    subject: str
    before: str | None  # JSON as stored (and hashed)
    after: str | None
    prev_hash: str
    hash: str

    def canonical(self) -> bytes:
        """What the hash covers: every field but the id and the hash, in a fixed JSON form
        (the entry's place is fixed by `prev_hash`)."""
        return canonical(self.at, self.actor, self.action, self.subject, self.before,
                         self.after, self.prev_hash)

    @property
    def before_value(self) -> Any:
        return json.loads(self.before) if self.before is not None else None

    @property
    def after_value(self) -> Any:
        return json.loads(self.after) if self.after is not None else None


FIELDS = tuple(f.name for f in fields(Entry))


def canonical(at: str, actor: str, action: str, subject: str, before: str | None,
              after: str | None, prev_hash: str) -> bytes:
    return json.dumps([at, actor, action, subject, before, after, prev_hash],
                      ensure_ascii=False, separators=(",", ":")).encode()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- writing ----------------------------------------------------------------------------------

def record(db: Database, *, actor: str, action: str, subject: str,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           connection: Connection | None = None) -> None:
    """Append one entry. With `connection` (or when this thread's connection is inside a
    transaction already, as in a block of `db.write()`), the entry is written inside that
    transaction and stands or falls with it; otherwise in a transaction of its own."""
    values = (actor, action, subject, _json(before), _json(after))
    if connection is not None and db.in_transaction(connection):
        _append(db, connection, *values)
        return
    with db.connection() as conn:
        if db.in_transaction(conn):
            _append(db, conn, *values)
            return
    with db.write() as conn:
        _append(db, conn, *values)


def _append(db: Database, conn: Connection, actor: str, action: str, subject: str,
            before: str | None, after: str | None) -> None:
    if not db.is_sqlite:  # SQLite: the writing transaction holds the database's write lock
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    head = conn.execute(select(audit.c.id, audit.c.hash)
                        .order_by(audit.c.id.desc()).limit(1)).first()
    number, prev = (head.id + 1, head.hash) if head else (1, GENESIS)
    at = _now()
    conn.execute(audit.insert().values(
        id=number, at=at, actor=actor, action=action, subject=subject, before=before,
        after=after, prev_hash=prev,
        hash=digest(canonical(at, actor, action, subject, before, after, prev))))


def _now() -> str:
    from hub.store.versions import now  # (the store records its own changes here)

    return now()


def _json(value: dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(_scrubbed(value), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"), default=str)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "***" if k in SECRET_KEYS and v is not None else _scrubbed(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


# -- checking ---------------------------------------------------------------------------------

class Tampered(HubError):
    """The chain is broken at `entry` (CLI exit code 1)."""

    def __init__(self, entry: int, message: str):
        super().__init__(message)
        self.entry = entry


@dataclass(frozen=True)
class Verified:
    entries: int
    head: str  # the newest entry's hash (GENESIS when there is none)


def verify(db: Database, head: str | None = None) -> Verified:
    """Check the whole chain from the first entry; raises `Tampered` naming the first entry
    that was edited, deleted or inserted. With `head` (a hash noted earlier), also checks
    that the entry with that hash is still in the chain."""
    prev, number, found_head = GENESIS, 0, head is None
    found = _all(db)
    following = next(found, None)
    while following is not None:
        entry, following = following, next(found, None)
        if entry.id != number + 1:
            raise Tampered(entry.id, (
                f"audit entry {entry.id} follows entry {number}: entries "
                f"{number + 1}–{entry.id - 1} were deleted" if entry.id > number + 1 else
                f"audit entry {entry.id} follows entry {number}: entries were renumbered"))
        if digest(entry.canonical()) != entry.hash:
            raise Tampered(entry.id, f"audit entry {entry.id} was edited: its content does "
                           f"not match its hash ({entry.action} of {entry.subject!r} at "
                           f"{entry.at})")
        if entry.prev_hash != prev:
            if following is not None and following.prev_hash == prev:
                raise Tampered(entry.id, f"audit entry {entry.id} was inserted: entry "
                               f"{following.id} is chained to entry {number}")
            if number == 0:
                raise Tampered(entry.id, "audit entry 1 does not start the chain: earlier "
                               "entries were deleted and the rest renumbered")
            raise Tampered(number, (
                f"audit entry {entry.id} is not chained to entry {number}: entry {number} "
                "was replaced (edited with its hash recomputed), or entries between them "
                "were deleted and the rest renumbered"))
        prev, number = entry.hash, entry.id
        found_head = found_head or entry.hash == head
    if not found_head:
        raise Tampered(number + 1, f"no audit entry has the hash {head}: entries at or after "
                       f"it were deleted (the chain now ends at entry {number})")
    return Verified(number, prev)


def _all(db: Database, batch: int = 5000) -> Iterator[Entry]:
    """Every entry in order, read in batches (no transaction held open meanwhile)."""
    after = 0
    while True:
        with db.connection() as conn:
            rows = conn.execute(ENTRY.where(audit.c.id > after).order_by(audit.c.id)
                                .limit(batch)).all()
        for row in rows:
            yield Entry(*row)
        if len(rows) < batch:
            return
        after = rows[-1].id


# -- reading ----------------------------------------------------------------------------------

ENTRY = select(*(audit.c[name] for name in FIELDS))


@dataclass(frozen=True)
class Filter:
    """Which entries to show: each field narrows (actor and action exactly or, with a
    trailing '.', by prefix: "record."; subject as a substring; dates as YYYY-MM-DD)."""

    actor: str = ""
    action: str = ""
    subject: str = ""
    since: str = ""  # first day
    until: str = ""  # last day

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value and not DAY.fullmatch(value):
                raise HubError(f"{name} {value!r}: expected a day as YYYY-MM-DD")

    def apply(self, query: Select) -> Select:
        if self.actor:
            query = query.where(audit.c.actor == self.actor)
        if self.action.endswith("."):
            query = query.where(func.substr(audit.c.action, 1, len(self.action)) == self.action)
        elif self.action:
            query = query.where(audit.c.action == self.action)
        if self.subject:
            query = query.where(audit.c.subject.contains(self.subject, autoescape=True))
        if self.since:
            query = query.where(audit.c.at >= self.since)
        if self.until:
            query = query.where(audit.c.at < self.until + "~")  # the whole last day
        return query


def entries(db: Database, where: Filter = Filter(), limit: int | None = 100,
            offset: int = 0) -> list[Entry]:
    """The newest entries first."""
    query = where.apply(ENTRY).order_by(audit.c.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with db.connection() as conn:
        return [Entry(*row) for row in conn.execute(query).all()]


def count(db: Database, where: Filter = Filter()) -> int:
    with db.connection() as conn:
        return conn.execute(where.apply(select(func.count()).select_from(audit))).scalar_one()


def actions(db: Database) -> list[str]:
    """The actions recorded so far (for a filter's choices)."""
    with db.connection() as conn:
        return list(conn.execute(select(audit.c.action).distinct().order_by(audit.c.action))
                    .scalars())


def csv_lines(db: Database, where: Filter = Filter()) -> Iterator[str]:
    """The entries as CSV (oldest first, every field, the hashes too), line by line."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(FIELDS)  # (cells with formulas neutralised: hub.spreadsheet)
    after = 0
    while True:
        with db.connection() as conn:
            rows = conn.execute(where.apply(ENTRY).where(audit.c.id > after)
                                .order_by(audit.c.id).limit(5000)).all()
        for row in rows:
            out.writerow(safe_row(astuple(Entry(*row))))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < 5000:
            return
        after = rows[-1].id
