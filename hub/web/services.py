"""What every surface of the web server shares: the catalog and its vocabularies, accounts,
sessions, uploads, and who is asking (from an API token or a session cookie), opened once per
process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fastapi import Request

from hub.access import ANONYMOUS, Viewer
from hub.accounts import Accounts
from hub.catalog import District, open_catalog
from hub.catalog.index import Catalog
from hub.catalog.uploads import Uploads
from hub.catalog.vocab import Vocabularies
from hub.config import Settings
from hub.errors import HubError
from hub.web.session import COOKIE, Session, Sessions, check_csrf

TOKEN_HEADERS = ("x-ckan-api-key", "authorization")


def credentials_sent(request: Request) -> bool:
    """Does the request say who sends it (an API token or a session cookie)?"""
    return COOKIE in request.cookies or any(request.headers.get(h) for h in TOKEN_HEADERS)


class InvalidToken(HubError):
    """A token was sent but is unknown, expired or revoked, or its user is disabled."""

    def __init__(self) -> None:
        super().__init__("the API token is not valid (unknown, expired or revoked)")


class Opener:
    """Opens the services once (the server does so at startup and does not start when that
    fails, see `hub.web.app.create_app`); a failure is remembered for a few seconds, so
    callers that retry fail fast."""

    RETRY_SECONDS = 5.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self._services: Services | None = None
        self._failure: tuple[float, HubError] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Services:
        if self._services is not None:
            return self._services
        with self._lock:
            if self._failure and time.monotonic() - self._failure[0] < self.RETRY_SECONDS:
                raise self._failure[1]
            try:
                self._services = Services.open(self.settings)
            except HubError as exc:
                self._failure = (time.monotonic(), exc)
                raise
            return self._services


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    vocab: Vocabularies
    district: District
    accounts: Accounts
    uploads: Uploads
    sessions: Sessions

    @classmethod
    def open(cls, settings: Settings) -> Services:
        catalog, vocab, district = open_catalog(settings)
        accounts = Accounts(catalog.store, vocab, settings.totp_roles)
        return cls(settings, catalog, vocab, district, accounts,
                   Uploads(catalog.store.root, settings.max_upload, catalog.store.files),
                   Sessions(accounts))

    def viewer(self, request: Request) -> Viewer:
        """Who sends the request, by the one rule every face uses: the user of its API token
        (raises `InvalidToken` for a bad one), else the user signed in by its session cookie
        (an unsafe request must carry the session's CSRF token: `Forbidden` without), else
        anonymous. Accepts `Authorization: <token>`, `Authorization: Bearer <token>` and
        `X-CKAN-API-Key: <token>`, as CKAN and ckanapi send them."""
        for header in TOKEN_HEADERS:
            value = request.headers.get(header, "").strip()
            if value.lower().startswith("bearer "):
                value = value[7:].strip()
            if value:
                user = self.accounts.authenticate(value)
                if user is None:
                    raise InvalidToken()
                return user.viewer
        session = self.session(request)
        if session is None or not session.signed_in:
            return ANONYMOUS
        check_csrf(request, session)
        return session.user.viewer

    def session(self, request: Request) -> Session | None:
        """The request's live session (signed in or halfway), if its cookie names one."""
        return self.sessions.get(request.cookies.get(COOKIE))

    def base_url(self, request: Request) -> str:
        return self.settings.base_url or str(request.base_url).rstrip("/")
