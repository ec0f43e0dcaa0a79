"""Users, their organisation and role, and their API tokens (in the store's SQLite database).

Roles: `viewer` (sees internal data and what is restricted to their organisation), `editor`
(also edits their organisation's records), `admin` (everything). A token is shown once, when it
is made; only its SHA-256 is stored. Tokens are 256 random bits, so a fast hash is as safe as a
slow one here (slow hashes such as argon2 protect guessable passwords) and keeps every API call
cheap. Tokens expire, can be revoked, and stop working when their user is disabled.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from hub.access import ANONYMOUS, Viewer
from hub.catalog.vocab import Vocabularies
from hub.errors import HubError
from hub.store.versions import Store, now

ROLES = ("viewer", "editor", "admin")
PREFIX = "hub_"
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,99}$")
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    fullname TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    organization TEXT NOT NULL,
    role TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'active',
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name),
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    expires TEXT,
    last_used TEXT,
    revoked TEXT
);
"""


class AccountError(HubError):
    """A user or token operation that cannot be done, with the reason."""


@dataclass(frozen=True)
class User:
    name: str
    id: str
    fullname: str
    email: str
    organization: str
    role: str
    state: str
    created: str

    @property
    def viewer(self) -> Viewer:
        if self.state != "active":
            return ANONYMOUS
        return Viewer(staff=True, organization=self.organization, admin=self.role == "admin",
                      editor=self.role in ("editor", "admin"), user=self.name)


@dataclass(frozen=True)
class Token:
    id: str
    user: str
    name: str
    created: str
    expires: str | None
    last_used: str | None
    revoked: str | None

    def usable(self, moment: str) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > moment)


class Accounts:
    """Users and tokens of one store."""

    def __init__(self, store: Store, vocab: Vocabularies):
        self.store, self.vocab = store, vocab
        with self._db() as db:
            db.executescript(SCHEMA_SQL)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self.store._db() as db:
            yield db

    # -- users -----------------------------------------------------------------------------

    def add_user(self, name: str, organization: str, role: str = "editor", email: str = "",
                 fullname: str = "") -> User:
        if not USER_NAME.match(name):
            raise AccountError(f"user name {name!r}: use 2–100 lower-case letters, digits, "
                               "'.', '_' or '-'")
        if role not in ROLES:
            raise AccountError(f"role {role!r}: must be one of {', '.join(ROLES)}")
        org = self.vocab.organization(organization)
        if org is None:
            raise AccountError(f"organisation {organization!r} is unknown (see "
                               "catalog/organizations.yaml or `organization_create`)")
        with self._db() as db:
            try:
                db.execute("INSERT INTO users (name, id, fullname, email, organization, role,"
                           " created) VALUES (?,?,?,?,?,?,?)",
                           (name, str(uuid.uuid4()), fullname, email, org.id, role, now()))
            except sqlite3.IntegrityError:
                raise AccountError(f"a user named {name!r} exists already") from None
        return self.user(name)

    def user(self, name: str) -> User:
        with self._db() as db:
            row = db.execute("SELECT * FROM users WHERE name = ? OR id = ?",
                             (name, name)).fetchone()
        if row is None:
            raise AccountError(f"no user named {name!r}")
        return User(**dict(row))

    def users(self) -> list[User]:
        with self._db() as db:
            return [User(**dict(r)) for r in db.execute("SELECT * FROM users ORDER BY name")]

    def set_state(self, name: str, state: str) -> User:
        """Disable (`disabled`) or enable (`active`) a user; a disabled user's tokens fail."""
        user = self.user(name)
        with self._db() as db:
            db.execute("UPDATE users SET state = ? WHERE name = ?", (state, user.name))
        return self.user(name)

    # -- tokens ----------------------------------------------------------------------------

    def create_token(self, user: str, name: str = "api", days: int | None = 365
                     ) -> tuple[Token, str]:
        """A new token for an active user; returns it and its secret (shown only now)."""
        owner = self.user(user)
        if owner.state != "active":
            raise AccountError(f"user {owner.name!r} is disabled")
        if days is not None and days <= 0:
            raise AccountError("a token must be valid for at least one day")
        secret = PREFIX + secrets.token_urlsafe(32)
        created = now()
        expires = None if days is None else (
            dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat(
                timespec="milliseconds").replace("+00:00", "Z")
        token_id = secrets.token_hex(6)
        with self._db() as db:
            db.execute("INSERT INTO tokens (id, user, name, hash, created, expires) "
                       "VALUES (?,?,?,?,?,?)",
                       (token_id, owner.name, name, _digest(secret), created, expires))
        return self.token(token_id), secret

    def token(self, token_id: str) -> Token:
        with self._db() as db:
            row = db.execute("SELECT id, user, name, created, expires, last_used, revoked "
                             "FROM tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            raise AccountError(f"no token with id {token_id!r}")
        return Token(**dict(row))

    def tokens(self, user: str | None = None) -> list[Token]:
        with self._db() as db:
            rows = db.execute("SELECT id, user, name, created, expires, last_used, revoked "
                              "FROM tokens WHERE ? IS NULL OR user = ? ORDER BY created",
                              (user, user)).fetchall()
        return [Token(**dict(r)) for r in rows]

    def revoke(self, token_id: str) -> Token:
        token = self.token(token_id)
        if token.revoked is None:
            with self._db() as db:
                db.execute("UPDATE tokens SET revoked = ? WHERE id = ?", (now(), token_id))
        return self.token(token_id)

    def authenticate(self, secret: str) -> User | None:
        """The active user a usable token belongs to, or None (unknown, expired, revoked)."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        moment = now()
        with self._db() as db:
            row = db.execute(
                "SELECT t.id, t.last_used, t.expires, t.revoked, u.* FROM tokens t "
                "JOIN users u ON u.name = t.user WHERE t.hash = ?", (_digest(secret),)
            ).fetchone()
            if row is None or row["revoked"] or (row["expires"] and row["expires"] <= moment):
                return None
            if row["state"] != "active":
                return None
            if (row["last_used"] or "") < moment[:13]:  # recorded once an hour at most
                db.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (moment, row["id"]))
        return User(**{k: row[k] for k in User.__dataclass_fields__})


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
