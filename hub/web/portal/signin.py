"""Sign-in, sign-out and the own account, in the portal's layout: thin routes over
`hub.accounts` (passwords, second factor, tokens) and `hub.web.session` (the session cookie).

/anmelden: name and password, then (when the user has one) the TOTP or a recovery code; a
role that must use a second factor without one set up is led to /konto to set it up first.
Every failure says only "Anmeldung fehlgeschlagen" (401), whether the user exists or not;
after too many failures per account or client (`hub.web.throttle`) the answer is 429.
/abmelden (POST) ends the session. /konto: the own account — set up the second factor (QR
code, recovery codes shown once), make and revoke the own API tokens (shown once).

Every form carries a CSRF token: the session's; before sign-in, a random one that is also in
a short-lived cookie (double submit), so no other site can sign a browser in.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.accounts import AccountError
from hub.errors import Forbidden
from hub.web.forms import read_form
from hub.web.portal.pages import N_
from hub.web.portal.routes import Renderer
from hub.web.services import Services
from hub.web.session import (
    COOKIE,
    CSRF_FIELD,
    ENROL,
    SECOND_FACTOR,
    SIGNED_IN,
    Session,
    check_csrf,
    clear_cookie,
    set_cookie,
)
from hub.web.throttle import Throttle

PRE_CSRF = "hub_signin"  # the double-submit cookie of the sign-in form
FAILED = N_("Anmeldung fehlgeschlagen")
THROTTLED = N_("Zu viele Versuche. Bitte warten Sie einige Minuten.")
# A path of this hub to go to after sign-in: one leading "/", then no second "/" or "\\", no
# whitespace (anything else could leave the site: "//evil.example", "/\\evil.example").
LOCAL_PATH = re.compile(r"^/(?![/\\])[^\s\\]*$")
WRONG_CODE = N_("Der Code passt nicht. Bitte geben Sie den aktuellen Code aus der App ein.")
NO_TOKEN = N_("Diesen Schlüssel gibt es nicht.")


def safe_next(path: str | None) -> str:
    """`path` when it is a path of this hub (to go to after sign-in), else "": never an open
    redirect."""
    if not path or len(path) > 1000 or not (path.isascii() and path.isprintable()):
        return ""
    return path if LOCAL_PATH.match(path) else ""


def client_of(request: Request) -> str:
    """The client's address, as the throttle counts it."""
    return request.client.host if request.client else ""


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, 303)


def signin_router(services: Callable[[], Services], render: Renderer,
                  throttle: Throttle, oidc_label: str = "") -> APIRouter:
    """`oidc_label`: the district's identity provider's name for the button "Mit … anmelden"
    (hub/web/portal/oidc.py); "": no such button."""
    router = APIRouter(include_in_schema=False)

    def session(request: Request) -> Session | None:
        return services().session(request)

    def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        response = render(request, template, status, secret=True, **context)
        response.headers["Cache-Control"] = "no-store"
        return response

    def signin_form(request: Request, status: int = 200, error: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        response = page(request, "signin.html", status, step="password", csrf=token,
                        error=error, oidc_label=oidc_label,
                        next=safe_next(request.query_params.get("next")))
        response.set_cookie(PRE_CSRF, token, max_age=3600, httponly=True, samesite="strict",
                            path="/anmelden", secure=request.url.scheme == "https")
        return response

    @router.get("/anmelden", response_class=HTMLResponse)
    async def signin(request: Request) -> Response:
        found = await run_in_threadpool(session, request)
        if found and found.signed_in:
            return _see_other("/konto")
        if found and found.stage == SECOND_FACTOR:
            return page(request, "signin.html", step="code", csrf=found.csrf, error="")
        return signin_form(request)

    @router.post("/anmelden", response_class=HTMLResponse)
    async def signin_post(request: Request) -> Response:
        form = await read_form(request)
        name, password = form.get("name", "").strip().lower(), form.get("password", "")
        expected = request.cookies.get(PRE_CSRF, "")
        if not (expected and hmac.compare_digest(form.get(CSRF_FIELD, "").encode(),
                                                 expected.encode())):
            raise Forbidden("the sign-in form lacks its security token (CSRF); reload the "
                            "page and send it again")
        if throttle.blocked(name, client_of(request)):
            return signin_form(request, 429, THROTTLED)
        hub = services()
        user = await run_in_threadpool(hub.accounts.check_password, name, password)
        if user is None:
            throttle.failed(name, client_of(request))
            return signin_form(request, 401, FAILED)
        if hub.accounts.totp_enabled(user.name):
            stage = SECOND_FACTOR
        elif hub.accounts.totp_required(user):
            stage = ENROL
        else:
            stage = SIGNED_IN
            throttle.succeeded(user.name)
        new = await run_in_threadpool(hub.sessions.start, user.name, stage,
                                      request.cookies.get(COOKIE))
        response = _see_other("/anmelden" if stage == SECOND_FACTOR else "/konto")
        set_cookie(request, response, new)
        response.delete_cookie(PRE_CSRF, path="/anmelden")
        return response

    @router.post("/anmelden/code", response_class=HTMLResponse)
    async def code_post(request: Request) -> Response:
        form = await read_form(request)
        found = await run_in_threadpool(session, request)
        if found is None or found.stage != SECOND_FACTOR:
            return _see_other("/anmelden")
        check_csrf(request, found, form.get(CSRF_FIELD))
        name = found.user.name
        if throttle.blocked(name, client_of(request)):
            return page(request, "signin.html", 429, step="code", csrf=found.csrf,
                        error=THROTTLED)
        hub = services()
        if not await run_in_threadpool(hub.accounts.check_second_factor, name,
                                       form.get("code", "")):
            throttle.failed(name, client_of(request))
            return page(request, "signin.html", 401, step="code", csrf=found.csrf,
                        error=FAILED)
        throttle.succeeded(name)
        new = await run_in_threadpool(hub.sessions.start, name, SIGNED_IN,
                                      request.cookies.get(COOKIE))
        response = _see_other("/konto")
        set_cookie(request, response, new)
        return response

    @router.post("/abmelden")
    async def signout(request: Request) -> Response:
        form = await read_form(request)
        found = await run_in_threadpool(session, request)
        if found is not None:
            check_csrf(request, found, form.get(CSRF_FIELD))
            await run_in_threadpool(services().sessions.end, request.cookies[COOKIE])
        response = _see_other("/")
        clear_cookie(request, response)
        return response

    def account_page(request: Request, found: Session, status: int = 200,
                     **shown: Any) -> Response:
        hub = services()
        name = found.user.name
        return page(request, "account.html", status, account=found.user, csrf=found.csrf,
                    stage=found.stage, totp=hub.accounts.totp_enabled(name),
                    totp_required=hub.accounts.totp_required(found.user),
                    recovery_left=hub.accounts.recovery_codes_left(name),
                    tokens=[t for t in hub.accounts.tokens(name) if t.revoked is None],
                    enrolment=hub.accounts.pending_totp(name), **shown)

    def account_session(request: Request) -> Session | None:
        found = session(request)
        return found if found and found.stage in (SIGNED_IN, ENROL) else None

    @router.get("/konto", response_class=HTMLResponse)
    def account(request: Request) -> Response:
        found = account_session(request)
        if found is None:
            return _see_other("/anmelden")
        return account_page(request, found)

    @router.post("/konto/zweiter-faktor", response_class=HTMLResponse)
    async def totp_begin(request: Request) -> Response:
        form = await read_form(request)
        found = await run_in_threadpool(account_session, request)
        if found is None:
            return _see_other("/anmelden")
        check_csrf(request, found, form.get(CSRF_FIELD))
        if found.stage == SIGNED_IN or not services().accounts.totp_enabled(found.user.name):
            await run_in_threadpool(services().accounts.begin_totp, found.user.name)
        return _see_other("/konto#zweiter-faktor")

    @router.post("/konto/zweiter-faktor/bestaetigen", response_class=HTMLResponse)
    async def totp_confirm(request: Request) -> Response:
        form = await read_form(request)
        found = await run_in_threadpool(account_session, request)
        if found is None:
            return _see_other("/anmelden")
        check_csrf(request, found, form.get(CSRF_FIELD))
        hub = services()
        try:
            codes = await run_in_threadpool(hub.accounts.confirm_totp, found.user.name,
                                            form.get("code", ""))
        except AccountError:
            return account_page(request, found, 400,
                                totp_error=WRONG_CODE)
        if found.stage == ENROL:  # set up: now signed in, in a new session
            new = await run_in_threadpool(hub.sessions.start, found.user.name, SIGNED_IN,
                                          request.cookies.get(COOKIE))
            found = hub.sessions.get(new)
            response = account_page(request, found, recovery_codes=codes)
            set_cookie(request, response, new)
            return response
        return account_page(request, found, recovery_codes=codes)

    @router.post("/konto/schluessel", response_class=HTMLResponse)
    async def token_create(request: Request) -> Response:
        form = await read_form(request)
        found = await run_in_threadpool(session, request)
        if found is None or not found.signed_in:
            return _see_other("/anmelden")
        check_csrf(request, found, form.get(CSRF_FIELD))
        label = form.get("label", "").strip()[:100] or "api"
        _, secret = await run_in_threadpool(services().accounts.create_token,
                                            found.user.name, label)
        return account_page(request, found, new_token=secret)

    @router.post("/konto/schluessel/{token_id}/widerrufen", response_class=HTMLResponse)
    async def token_revoke(request: Request, token_id: str) -> Response:
        form = await read_form(request)
        found = await run_in_threadpool(session, request)
        if found is None or not found.signed_in:
            return _see_other("/anmelden")
        check_csrf(request, found, form.get(CSRF_FIELD))
        hub = services()
        own = {t.id for t in hub.accounts.tokens(found.user.name)}
        if token_id not in own:  # another's token and an unknown one alike
            return account_page(request, found, 404, token_error=NO_TOKEN)
        await run_in_threadpool(hub.accounts.revoke, token_id)
        return _see_other("/konto#schluessel")

    return router
