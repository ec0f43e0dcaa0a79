"""Users, their organisation and role, and their API tokens (in the store's database).

Roles: `viewer` (sees internal data and what is restricted to their organisation), `editor`
(also edits their organisation's records), `admin` (everything). A token is shown once, when it
is made; only its SHA-256 is stored. Tokens are 256 random bits, so a fast hash is as safe as a
slow one here (slow hashes such as argon2 protect guessable passwords) and keeps every API call
cheap. Tokens expire, can be revoked, and stop working when their user is disabled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from hub.access import ANONYMOUS, Viewer
from hub.catalog.vocab import Vocabularies
from hub.db.schema import tokens, users
from hub.errors import HubError
from hub.store.versions import Store, now

ROLES = ("viewer", "editor", "admin")
PREFIX = "hub_"
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,99}$")

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
        self.db = store.db

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
        with self.db.connection() as db:
            try:
                db.execute(users.insert().values(
                    name=name, id=str(uuid.uuid4()), fullname=fullname, email=email,
                    organization=org.id, role=role, created=now()))
            except IntegrityError:
                raise AccountError(f"a user named {name!r} exists already") from None
        return self.user(name)

    def user(self, name: str) -> User:
        with self.db.connection() as db:
            row = db.execute(select(users).where(or_(users.c.name == name,
                                                     users.c.id == name))).first()
        if row is None:
            raise AccountError(f"no user named {name!r}")
        return User(**row._asdict())

    def users(self) -> list[User]:
        with self.db.connection() as db:
            rows = db.execute(select(users).order_by(users.c.name)).all()
        return [User(**r._asdict()) for r in rows]

    def set_state(self, name: str, state: str) -> User:
        """Disable (`disabled`) or enable (`active`) a user; a disabled user's tokens fail."""
        user = self.user(name)
        with self.db.connection() as db:
            db.execute(update(users).where(users.c.name == user.name).values(state=state))
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
        with self.db.connection() as db:
            db.execute(tokens.insert().values(id=token_id, user=owner.name, name=name,
                                              hash=_digest(secret), created=created,
                                              expires=expires))
        return self.token(token_id), secret

    def token(self, token_id: str) -> Token:
        with self.db.connection() as db:
            row = db.execute(_TOKEN.where(tokens.c.id == token_id)).first()
        if row is None:
            raise AccountError(f"no token with id {token_id!r}")
        return Token(**row._asdict())

    def tokens(self, user: str | None = None) -> list[Token]:
        query = _TOKEN if user is None else _TOKEN.where(tokens.c.user == user)
        with self.db.connection() as db:
            rows = db.execute(query.order_by(tokens.c.created)).all()
        return [Token(**r._asdict()) for r in rows]

    def revoke(self, token_id: str) -> Token:
        token = self.token(token_id)
        if token.revoked is None:
            with self.db.connection() as db:
                db.execute(update(tokens).where(tokens.c.id == token_id).values(revoked=now()))
        return self.token(token_id)

    def authenticate(self, secret: str) -> User | None:
        """The active user a usable token belongs to, or None (unknown, expired, revoked)."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        moment = now()
        found = self.db.rows(_AUTHENTICATE, {"hash": _digest(secret)})
        row = found[0] if found else None
        if row is None or row["revoked"] or (row["expires"] and row["expires"] <= moment):
            return None
        if row["state"] != "active":
            return None
        if (row["last_used"] or "") < moment[:13]:  # recorded once an hour at most
            with self.db.connection() as db:
                db.execute(update(tokens).where(tokens.c.id == row["token_id"])
                           .values(last_used=moment))
        return User(**{k: row[k] for k in User.__dataclass_fields__})


_TOKEN = select(tokens.c.id, tokens.c.user, tokens.c.name, tokens.c.created, tokens.c.expires,
                tokens.c.last_used, tokens.c.revoked)
# A token's user by the token's hash: the check of every authenticated request.
_AUTHENTICATE = select(tokens.c.id.label("token_id"), tokens.c.last_used, tokens.c.expires,
                       tokens.c.revoked, *users.c).join(users, users.c.name == tokens.c.user
                                                        ).where(tokens.c.hash == bindparam("hash"))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
