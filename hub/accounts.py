"""Users, their organisation and role, how they sign in, and their API tokens (in the store's
database): the one accounts module of `hub user`/`hub token` and the web.

Roles are those of `hub.access` (viewer, editor, publisher, admin), where what each may do is
decided. Passwords are stored as Argon2id hashes (argon2-cffi); a user without one cannot sign
in on the web. The second factor is TOTP (RFC 6238, 30-second steps, pyotp): a new secret is
pending until a code made from it confirms it; the QR code for authenticator apps is rendered
here as SVG (segno), nothing leaves the hub. A code is accepted once: the user's last accepted
time step is kept, and a code of that or an earlier step is refused. Confirming a secret makes
ten one-time recovery codes, shown once. Which roles must use a second factor is configuration
(`HUB_TOTP_ROLES`, see `Accounts.totp_required`).

A token is shown once, when it is made; only its SHA-256 is stored. Tokens and recovery codes
carry 256 and 80 random bits, so a fast hash is as safe as a slow one for them (slow hashes
such as Argon2 protect guessable passwords) and keeps every API call cheap. Tokens expire, can
be revoked, and stop working when their user is disabled.

An identity at the district's OpenID Connect provider (hub/oidc.py) signs in the user it is
linked to (table `identities`: issuer and `sub`); an identity not yet linked is linked once to
the one user whose e-mail address the provider vouches for (`email_verified`). Nothing else
makes a link, and no account is ever made from an identity: an admin makes accounts.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from hub import audit
from hub.access import ROLES, Viewer
from hub.catalog.vocab import Vocabularies
from hub.db.schema import identities, recovery_codes, sessions, tokens, users
from hub.errors import HubError
from hub.store.versions import Store, now

PREFIX = "hub_"
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,99}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # longer input is refused before hashing
ISSUER = "Datenhub"
RECOVERY_CODES = 10
STEP = 30  # seconds per TOTP code


class AccountError(HubError):
    """A user or token operation that cannot be done, with the reason."""


class IdentityRefused(AccountError):
    """An identity at the provider that signs in no user. `reason`: "unverified" (not linked,
    and the provider does not vouch for its e-mail address) or "unknown" (no active user
    linked to it or with its verified address, or several with that address)."""

    http_status = 403

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


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
        return Viewer.of_role(self.role, self.organization, self.name, self.state == "active")


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


@dataclass(frozen=True)
class Enrolment:
    """A pending TOTP secret: what an authenticator app needs, as text and as a QR code."""

    secret: str
    uri: str

    @property
    def qr_svg(self) -> str:
        """The QR code of `uri` as an SVG document (made locally)."""
        return segno.make(self.uri, error="m").svg_inline(scale=5, dark="#000", light="#fff")


class Accounts:
    """Users and tokens of one store."""

    def __init__(self, store: Store, vocab: Vocabularies,
                 totp_roles: frozenset[str] = frozenset()):
        self.store, self.vocab = store, vocab
        self.db = store.db
        self.totp_roles = totp_roles
        self._hasher = PasswordHasher()  # Argon2id with the library's current parameters
        self._dummy = self._hasher.hash(secrets.token_hex(16))  # for unknown users' timing

    # -- users -----------------------------------------------------------------------------

    def add_user(self, name: str, organization: str, role: str = "editor", email: str = "",
                 fullname: str = "", *, by: str = "cli") -> User:
        """`by`: who adds the user (for the audit trail: a user name, or "cli")."""
        if not USER_NAME.match(name):
            raise AccountError(f"user name {name!r}: use 2–100 lower-case letters, digits, "
                               "'.', '_' or '-'")
        if role not in ROLES:
            raise AccountError(f"role {role!r}: must be one of {', '.join(ROLES)}")
        org = self.vocab.organization(organization)
        if org is None:
            raise AccountError(f"organisation {organization!r} is unknown (see "
                               "catalog/organizations.yaml or `organization_create`)")
        with self.db.write() as db:
            try:
                db.execute(users.insert().values(
                    name=name, id=str(uuid.uuid4()), fullname=fullname, email=email,
                    organization=org.id, role=role, created=now()))
            except IntegrityError:
                raise AccountError(f"a user named {name!r} exists already") from None
            audit.record(self.db, actor=by, action="user.add", subject=name, after={
                "organization": org.id, "role": role, "email": email, "fullname": fullname},
                connection=db)
        return self.user(name)

    def user(self, name: str) -> User:
        with self.db.connection() as db:
            row = db.execute(USER_ROW.where(or_(users.c.name == name,
                                             users.c.id == name))).first()
        if row is None:
            raise AccountError(f"no user named {name!r}")
        return User(**row._asdict())

    def users(self) -> list[User]:
        with self.db.connection() as db:
            rows = db.execute(USER_ROW.order_by(users.c.name)).all()
        return [User(**r._asdict()) for r in rows]

    def set_state(self, name: str, state: str, *, by: str = "cli") -> User:
        """Disable (`disabled`) or enable (`active`) a user; a disabled user's tokens fail
        and their sessions end at once."""
        user = self.user(name)
        with self.db.write() as db:
            db.execute(update(users).where(users.c.name == user.name).values(state=state))
            if state != "active":
                db.execute(sessions.delete().where(sessions.c.user == user.name))
            if state != user.state:
                audit.record(self.db, actor=by, action="user.state", subject=user.name,
                             before={"state": user.state}, after={"state": state},
                             connection=db)
        return self.user(name)

    def set_role(self, name: str, role: str, *, by: str = "cli") -> User:
        if role not in ROLES:
            raise AccountError(f"role {role!r}: must be one of {', '.join(ROLES)}")
        user = self.user(name)
        with self.db.write() as db:
            db.execute(update(users).where(users.c.name == user.name).values(role=role))
            if role != user.role:
                audit.record(self.db, actor=by, action="user.role", subject=user.name,
                             before={"role": user.role}, after={"role": role},
                             connection=db)
        return self.user(name)

    # -- passwords -------------------------------------------------------------------------

    def set_password(self, name: str, password: str, *, by: str = "cli") -> User:
        """Set (or reset, by an admin) a user's password; stored as its Argon2id hash."""
        user = self.user(name)
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password is too short: use at least {MIN_PASSWORD} "
                               "characters")
        if len(password) > MAX_PASSWORD:
            raise AccountError(f"the password is too long: at most {MAX_PASSWORD} characters")
        if password.strip() != password or password.lower() in (user.name, user.email.lower()):
            raise AccountError("the password must not be the user's name or e-mail address "
                               "and must not begin or end with a space")
        hashed = self._hasher.hash(password)
        with self.db.write() as db:
            db.execute(update(users).where(users.c.name == user.name).values(password=hashed))
            audit.record(self.db, actor=by, action="user.password", subject=user.name,
                         connection=db)
        return user

    def reset_password(self, name: str, *, by: str = "cli") -> str:
        """Give a user a new random password (an admin's reset); returns it, to be shown once
        to the admin who passes it on."""
        password = secrets.token_urlsafe(15)  # 20 characters, 120 random bits
        self.set_password(name, password, by=by)
        return password

    def check_password(self, name: str, password: str) -> User | None:
        """The active user `name` if `password` is theirs, else None — the same for an
        unknown user, a disabled one and a wrong password (and about the same time: an
        unknown user's check runs against a dummy hash)."""
        row = self._secrets(name)
        stored = row["password"] if row else None
        if not password or len(password) > MAX_PASSWORD:
            return None
        try:
            self._hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or stored is None or row["state"] != "active":
            return None
        if self._hasher.check_needs_rehash(stored):
            with self.db.connection() as db:
                db.execute(update(users).where(users.c.name == row["name"])
                           .values(password=self._hasher.hash(password)))
        return self.user(row["name"])

    # -- the second factor (TOTP) ----------------------------------------------------------

    def totp_required(self, user: User) -> bool:
        """Must this user sign in with a second factor (their role is in `totp_roles`)?"""
        return user.role in self.totp_roles

    def totp_enabled(self, name: str) -> bool:
        row = self._secrets(name)
        return bool(row and row["totp_secret"])

    def begin_totp(self, name: str) -> Enrolment:
        """A new pending secret for `name` (replacing any earlier pending one); the user's
        current second factor, if any, stays in force until `confirm_totp`."""
        user = self.user(name)
        secret = pyotp.random_base32()
        with self.db.connection() as db:
            db.execute(update(users).where(users.c.name == user.name)
                       .values(totp_pending=secret))
        return self._enrolment(user, secret)

    def pending_totp(self, name: str) -> Enrolment | None:
        row = self._secrets(name)
        if row is None or not row["totp_pending"]:
            return None
        return self._enrolment(self.user(name), row["totp_pending"])

    def confirm_totp(self, name: str, code: str, at: float | None = None) -> list[str]:
        """Make the pending secret the user's second factor when `code` comes from it;
        returns new recovery codes (replacing earlier ones), shown only now."""
        row = self._secrets(name)
        if row is None or not row["totp_pending"]:
            raise AccountError("no second factor is being set up: start again")
        step = _matching_step(row["totp_pending"], code, at)
        if step is None:
            raise AccountError("the code does not match: check the authenticator app's time "
                               "and enter the current code")
        with self.db.write() as db:
            done = db.execute(update(users).where(users.c.name == row["name"],
                                                  users.c.totp_pending == row["totp_pending"])
                              .values(totp_secret=row["totp_pending"], totp_pending=None,
                                      totp_step=step))
            if done.rowcount != 1:
                raise AccountError("the setup changed meanwhile: start again")
            audit.record(self.db, actor=row["name"], action="user.second_factor",
                         subject=row["name"], before={"second_factor": bool(row["totp_secret"])},
                         after={"second_factor": True}, connection=db)
        return self.new_recovery_codes(row["name"])

    def reset_totp(self, name: str, *, by: str = "cli") -> User:
        """Remove a user's second factor and recovery codes (an admin's reset)."""
        user = self.user(name)
        had = self.totp_enabled(user.name)
        with self.db.write() as db:
            db.execute(update(users).where(users.c.name == user.name)
                       .values(totp_secret=None, totp_pending=None, totp_step=None))
            db.execute(recovery_codes.delete().where(recovery_codes.c.user == user.name))
            audit.record(self.db, actor=by, action="user.second_factor_reset",
                         subject=user.name, before={"second_factor": had},
                         after={"second_factor": False}, connection=db)
        return user

    def check_second_factor(self, name: str, code: str, at: float | None = None) -> bool:
        """Is `code` a current TOTP code of the user not accepted before, or one of their
        unused recovery codes? Either is used up by this check (also under concurrency:
        the update that records it succeeds once)."""
        row = self._secrets(name)
        if row is None or not row["totp_secret"] or row["state"] != "active":
            return False
        code = code.strip().replace(" ", "")
        step = _matching_step(row["totp_secret"], code, at)
        if step is not None:
            last = users.c.totp_step
            with self.db.connection() as db:
                done = db.execute(update(users).where(
                    users.c.name == row["name"], users.c.totp_secret == row["totp_secret"],
                    or_(last.is_(None), last < step)).values(totp_step=step))
            return done.rowcount == 1
        if len(code) < 16 or len(code) > 40:
            return False
        with self.db.connection() as db:
            done = db.execute(update(recovery_codes).where(
                recovery_codes.c.hash == _digest(_recovery_form(code)),
                recovery_codes.c.user == row["name"], recovery_codes.c.used.is_(None))
                .values(used=now()))
        return done.rowcount == 1

    def new_recovery_codes(self, name: str) -> list[str]:
        """Ten new one-time recovery codes (earlier ones stop working); shown only now."""
        user = self.user(name)
        codes = ["-".join(_groups(base64.b32encode(secrets.token_bytes(10)).decode()))
                 for _ in range(RECOVERY_CODES)]
        created = now()
        with self.db.connection() as db:
            db.execute(recovery_codes.delete().where(recovery_codes.c.user == user.name))
            db.execute(recovery_codes.insert(), [
                {"hash": _digest(_recovery_form(c)), "user": user.name, "created": created}
                for c in codes])
        return codes

    def recovery_codes_left(self, name: str) -> int:
        with self.db.connection() as db:
            return len(db.execute(select(recovery_codes.c.hash).where(
                recovery_codes.c.user == name, recovery_codes.c.used.is_(None))).all())

    def _enrolment(self, user: User, secret: str) -> Enrolment:
        uri = pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=user.name,
                                                                 issuer_name=ISSUER)
        return Enrolment(secret, uri)

    def _secrets(self, name: str) -> dict | None:
        with self.db.connection() as db:
            row = db.execute(select(users.c.name, users.c.state, users.c.password,
                                    users.c.totp_secret, users.c.totp_pending,
                                    users.c.totp_step).where(users.c.name == name)).first()
        return row._asdict() if row else None

    # -- identities at the district's OpenID Connect provider --------------------------------

    def user_of_identity(self, issuer: str, subject: str, email: str = "",
                         email_verified: bool = False) -> User:
        """The active user the provider's identity (`issuer`, `subject`) is linked to; an
        identity not linked yet is linked now to the one user whose e-mail address is `email`,
        when the provider says it verified it (`email_verified` is True, not just truthy) and
        that user has no other identity at this provider. Else `IdentityRefused`."""
        with self.db.connection() as db:
            linked = db.execute(select(identities.c.user).where(
                identities.c.issuer == issuer, identities.c.subject == subject)).scalar()
        if linked is not None:
            return self._active(self.user(linked), issuer, subject)
        if not email:
            raise IdentityRefused("unknown", f"identity {subject!r} at {issuer}: not linked "
                                  "to a user and no e-mail address given")
        if email_verified is not True:
            raise IdentityRefused("unverified", f"identity {subject!r} at {issuer}: not linked "
                                  f"to a user, and its e-mail address {email!r} is not verified "
                                  "by the provider")
        with self.db.connection() as db:
            names = db.execute(select(users.c.name).where(
                func.lower(users.c.email) == email.strip().lower())).scalars().all()
            taken = db.execute(select(identities.c.user).where(
                identities.c.issuer == issuer, identities.c.user.in_(names))).scalars().all()
        if len(names) != 1 or taken:
            raise IdentityRefused("unknown", f"identity {subject!r} at {issuer}: {len(names)} "
                                  f"user(s) with the e-mail address {email!r}"
                                  + (", linked to another identity already" if taken else ""))
        user = self._active(self.user(names[0]), issuer, subject)
        with self.db.write() as db:
            try:
                db.execute(identities.insert().values(issuer=issuer, subject=subject,
                                                      user=user.name, linked=now()))
            except IntegrityError:  # linked meanwhile (two sign-ins at once)
                raise IdentityRefused("unknown", f"identity {subject!r} at {issuer}: was "
                                      "linked meanwhile; sign in again") from None
            audit.record(self.db, actor=user.name, action="user.identity_link",
                         subject=user.name, after={"issuer": issuer, "subject": subject,
                                                   "email": email}, connection=db)
        return user

    def identities_of(self, name: str) -> list[tuple[str, str]]:
        """The (issuer, subject) pairs linked to user `name`."""
        with self.db.connection() as db:
            return [tuple(r) for r in db.execute(
                select(identities.c.issuer, identities.c.subject)
                .where(identities.c.user == self.user(name).name)
                .order_by(identities.c.issuer, identities.c.subject)).all()]

    def record_sign_in(self, name: str, method: str, stage: str) -> None:
        """An audit entry for a sign-in of `name` by `method` (e.g. "oidc") that reached
        `stage` (signed in, or a second factor is next)."""
        audit.record(self.db, actor=name, action="user.sign_in", subject=name,
                     after={"method": method, "stage": stage})

    @staticmethod
    def _active(user: User, issuer: str, subject: str) -> User:
        if user.state != "active":
            raise IdentityRefused("unknown", f"identity {subject!r} at {issuer}: its user "
                                  f"{user.name!r} is disabled")
        return user

    # -- tokens ----------------------------------------------------------------------------

    def create_token(self, user: str, name: str = "api", days: int | None = 365, *,
                     by: str | None = None) -> tuple[Token, str]:
        """A new token for an active user; returns it and its secret (shown only now).
        `by`: who makes it (default: the user; the operator's commands say "cli")."""
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
        with self.db.write() as db:
            db.execute(tokens.insert().values(id=token_id, user=owner.name, name=name,
                                              hash=_digest(secret), created=created,
                                              expires=expires))
            audit.record(self.db, actor=by or owner.name, action="token.create",
                         subject=owner.name, after={"id": token_id, "name": name,
                                                    "expires": expires}, connection=db)
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

    def revoke(self, token_id: str, *, by: str | None = None) -> Token:
        """`by`: who revokes it (default: its user; the operator's commands say "cli")."""
        token = self.token(token_id)
        if token.revoked is None:
            stamp = now()
            with self.db.write() as db:
                db.execute(update(tokens).where(tokens.c.id == token_id).values(revoked=stamp))
                audit.record(self.db, actor=by or token.user, action="token.revoke",
                             subject=token.user, before={"id": token_id, "revoked": None},
                             after={"id": token_id, "revoked": stamp}, connection=db)
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


# A user's public facts (never their secrets), as `User` holds them.
USER_ROW = select(*(users.c[f] for f in User.__dataclass_fields__))
_TOKEN = select(tokens.c.id, tokens.c.user, tokens.c.name, tokens.c.created, tokens.c.expires,
                tokens.c.last_used, tokens.c.revoked)
# A token's user by the token's hash: the check of every authenticated request.
_AUTHENTICATE = select(
    tokens.c.id.label("token_id"), tokens.c.last_used, tokens.c.expires, tokens.c.revoked,
    *USER_ROW.selected_columns).join(users, users.c.name == tokens.c.user).where(
        tokens.c.hash == bindparam("hash"))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step (the current one, or one either side for clock drift) whose code is
    `code`, or None."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    otp = pyotp.TOTP(secret, interval=STEP)
    current = int((time.time() if at is None else at) // STEP)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(otp.generate_otp(step), code):
            return step
    return None


def _groups(text: str) -> list[str]:
    """`text` in groups of four characters."""
    return [text[i:i + 4] for i in range(0, len(text), 4)]


def _recovery_form(code: str) -> str:
    """A recovery code as compared: upper case, without spaces and dashes."""
    return re.sub(r"[\s-]", "", code).upper()
