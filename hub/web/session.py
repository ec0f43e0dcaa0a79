"""Server-side sessions of signed-in browsers, and their cookie.

The cookie carries an opaque random id (256 bits); the database keeps only its SHA-256, the
user, the stage of the sign-in and the session's CSRF token. A session is made anew at each
step of a sign-in (`Sessions.start(…, replacing=…)` deletes the one before: an id known
before sign-in is worth nothing after it), ends after `IDLE` without a request or `ABSOLUTE`
after sign-in, ends at sign-out, and counts for nothing from the moment its user is disabled
(the lookup joins the user's state; disabling also deletes them).

The cookie is `HttpOnly`, `SameSite=Lax`, path `/`, and `Secure` when the request came over
TLS — directly, or through a proxy uvicorn trusts (`FORWARDED_ALLOW_IPS`, 127.0.0.1 unless
set) that said so in `X-Forwarded-Proto`. An unsafe request (POST, PUT, PATCH, DELETE) that
carries a session cookie must carry the session's CSRF token (`check_csrf`); requests with an
API token and no cookie are not affected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy import bindparam, select, update

from hub.accounts import USER_ROW, Accounts, User
from hub.db.schema import sessions, users
from hub.errors import Forbidden

COOKIE = "hub_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
# The stages: signed in; password checked, the code is next; password checked, and the role
# requires a second factor the user has yet to set up (only that is possible).
SIGNED_IN, SECOND_FACTOR, ENROL = "signed-in", "second-factor", "enrolment"
IDLE = dt.timedelta(hours=2)
ABSOLUTE = dt.timedelta(hours=12)
SECOND_FACTOR_TIME = dt.timedelta(minutes=10)  # from the password to the code (or set-up)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SEEN_EVERY = dt.timedelta(minutes=1)  # `seen` is written at most this often
# A session and its user by the session id's hash (`Database.rows`: compiled once)
_SESSION = select(sessions.c.stage, sessions.c.csrf, sessions.c.created, sessions.c.seen,
                  *USER_ROW.selected_columns).join(users, users.c.name == sessions.c.user
                                                   ).where(sessions.c.hash == bindparam("hash"))


@dataclass(frozen=True)
class Session:
    user: User
    stage: str
    csrf: str
    created: str

    @property
    def signed_in(self) -> bool:
        return self.stage == SIGNED_IN


class Sessions:
    """The sessions of one hub's database."""

    def __init__(self, accounts: Accounts, idle: dt.timedelta = IDLE,
                 absolute: dt.timedelta = ABSOLUTE):
        self.accounts, self.db = accounts, accounts.db
        self.idle, self.absolute = idle, absolute

    def start(self, user: str, stage: str = SIGNED_IN, replacing: str | None = None,
              at: dt.datetime | None = None) -> str:
        """A new session of `user` (deleting the session `replacing`); returns its id, for
        the cookie only."""
        if stage not in (SIGNED_IN, SECOND_FACTOR, ENROL):
            raise ValueError(f"unknown session stage {stage!r}")
        session_id = secrets.token_urlsafe(32)
        moment = _iso(at or _now())
        with self.db.connection() as db:
            if replacing:
                db.execute(sessions.delete().where(sessions.c.hash == _digest(replacing)))
            db.execute(sessions.insert().values(
                hash=_digest(session_id), user=self.accounts.user(user).name, stage=stage,
                csrf=secrets.token_urlsafe(32), created=moment, seen=moment))
        return session_id

    def get(self, session_id: str | None, at: dt.datetime | None = None) -> Session | None:
        """The live session of an active user with this id, or None (unknown, expired,
        ended, or its user disabled); an expired one is deleted."""
        if not session_id or len(session_id) > 100:
            return None
        at = at or _now()
        key = _digest(session_id)
        rows = self.db.rows(_SESSION, {"hash": key})  # every request of a signed-in user
        if not rows:
            return None
        found = rows[0]
        lifetime = self.absolute if found["stage"] == SIGNED_IN else SECOND_FACTOR_TIME
        if (found["created"] <= _iso(at - lifetime) or found["seen"] <= _iso(at - self.idle)
                or found["state"] != "active"):
            self.end(session_id)
            return None
        if found["seen"] <= _iso(at - SEEN_EVERY):
            with self.db.connection() as db:
                db.execute(update(sessions).where(sessions.c.hash == key).values(seen=_iso(at)))
        user = User(**{k: found[k] for k in User.__dataclass_fields__})
        return Session(user, found["stage"], found["csrf"], found["created"])

    def end(self, session_id: str) -> None:
        with self.db.connection() as db:
            db.execute(sessions.delete().where(sessions.c.hash == _digest(session_id)))

    def end_all(self, user: str) -> int:
        """End every session of `user`; how many there were."""
        with self.db.connection() as db:
            return db.execute(sessions.delete().where(sessions.c.user == user)).rowcount


def check_csrf(request: Request, session: Session, sent: str | None = None) -> None:
    """Refuse (403) an unsafe request of `session` without its CSRF token: in the
    `X-CSRF-Token` header, or `sent` (a form's `csrf` field, which the form's route reads)."""
    if request.method in SAFE_METHODS:
        return
    token = sent or request.headers.get(CSRF_HEADER, "")
    if not (token and hmac.compare_digest(token.encode(), session.csrf.encode())):
        raise Forbidden("the form or request lacks its security token (CSRF); reload the page "
                        "and send it again")


def set_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, httponly=True, samesite="lax", path="/",
                           secure=request.url.scheme == "https")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    """As `hub.store.versions.now` writes times (so they compare as text)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
