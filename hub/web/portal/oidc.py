"""Sign-in with the district's OpenID Connect provider, beside the password (thin routes over
`hub.oidc`, `hub.accounts` and `hub.web.session`; only when HUB_OIDC_ISSUER is set).

/anmelden/oidc (the button "Mit <Label> anmelden"; `?next=` a path of this hub to return to):
sends the browser to the provider, with the flow's state, nonce and PKCE verifier in a cookie
that only /anmelden/oidc/… sees for ten minutes. /anmelden/oidc/zurueck (the redirect URI to
register at the provider): checks the provider's answer, finds the linked hub account and starts
a session as a password does — or, when the user's role needs a second factor and the provider
does not say it used one (`Identity.strong`), the hub's own TOTP comes next. Every refusal is
a page with its 4xx status (503: provider unreachable) and a precise German reason; failures
count in the sign-in throttle (`hub.web.throttle`) like wrong passwords.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.accounts import IdentityRefused
from hub.oidc import FLOW_SECONDS, Flow, Identity, Provider, SignInRefused
from hub.web.portal.pages import N_
from hub.web.portal.routes import Renderer
from hub.web.portal.signin import THROTTLED, client_of, safe_next
from hub.web.services import Services
from hub.web.session import COOKIE, ENROL, SECOND_FACTOR, SIGNED_IN, set_cookie
from hub.web.throttle import Throttle

FLOW_COOKIE = "hub_oidc"
PATH = "/anmelden/oidc"
CALLBACK = PATH + "/zurueck"
MESSAGES = {  # by SignInRefused.kind
    "unreachable": N_("Der Anmeldedienst %(label)s ist gerade nicht erreichbar. Bitte versuchen "
                      "Sie es später noch einmal."),
    "denied": N_("Die Anmeldung bei %(label)s wurde abgebrochen oder nicht erlaubt."),
    "provider_error": N_("%(label)s hat die Anmeldung abgelehnt (Fehler „%(error)s“)."),
    "no_flow": N_("Diese Anmeldung wurde nicht in diesem Browser begonnen oder ist abgelaufen. "
                  "Bitte melden Sie sich erneut an."),
    "bad_code": N_("Der Anmeldecode von %(label)s ist ungültig, abgelaufen oder wurde schon "
                   "verwendet. Bitte melden Sie sich erneut an."),
    "bad_token": N_("Die Anmeldebestätigung von %(label)s ist ungültig: %(what)s. Sie wurden "
                    "nicht angemeldet."),
}
TOKEN_PROBLEMS = {  # by SignInRefused.params["what"]
    "signature": N_("die Signatur passt zu keinem Schlüssel des Anmeldedienstes"),
    "aud": N_("sie ist nicht für diesen Datenhub ausgestellt"),
    "iss": N_("sie stammt nicht vom eingestellten Anmeldedienst"),
    "nonce": N_("sie gehört nicht zu dieser Anmeldung"),
    "exp": N_("sie ist abgelaufen"),
    "other": N_("sie ist unvollständig oder fehlerhaft"),
}
UNKNOWN = N_("Zu Ihrem Konto bei %(label)s gibt es kein Konto im Datenhub. Ein Konto legt die "
             "Verwaltung des Datenhubs an; bitte wenden Sie sich an sie.")
UNVERIFIED = N_("%(label)s bestätigt Ihre E-Mail-Adresse nicht. Ohne bestätigte Adresse kann "
                "der Datenhub Ihr Konto nicht zuordnen; bitte wenden Sie sich an die Verwaltung "
                "des Datenhubs.")


def oidc_router(provider: Provider, services: Callable[[], Services], render: Renderer,
                throttle: Throttle) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def refused(request: Request, status: int, message: str, **params: str) -> Response:
        """The refusal page: `message` a German msgid, `params` its placeholders (`what`: a
        msgid of its own)."""
        response = render(request, "signin_refused.html", status, message=message,
                          params={"label": provider.label, **params})
        response.headers["Cache-Control"] = "no-store"
        response.delete_cookie(FLOW_COOKIE, path=PATH)
        return response

    def refusal(request: Request, exc: SignInRefused) -> Response:
        what = exc.params.get("what")
        return refused(request, exc.status, MESSAGES[exc.kind],
                       **{**exc.params, **({"what": TOKEN_PROBLEMS[what]} if what else {})})

    def redirect_uri(request: Request) -> str:
        base = services().settings.base_url or str(request.base_url).rstrip("/")
        return base + CALLBACK

    @router.get(PATH, response_class=HTMLResponse)
    async def begin(request: Request, next: str = "") -> Response:
        if throttle.blocked(None, client_of(request)):
            return refused(request, 429, THROTTLED)
        try:
            url, flow = await provider.begin(redirect_uri(request), safe_next(next))
        except SignInRefused as exc:
            return refusal(request, exc)
        response = RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})
        response.set_cookie(FLOW_COOKIE, flow.cookie(), max_age=FLOW_SECONDS, httponly=True,
                            samesite="lax", path=PATH, secure=request.url.scheme == "https")
        return response

    @router.get(CALLBACK, response_class=HTMLResponse)
    async def callback(request: Request) -> Response:
        client = client_of(request)
        if throttle.blocked(None, client):
            return refused(request, 429, THROTTLED)
        flow = Flow.of_cookie(request.cookies.get(FLOW_COOKIE))
        try:
            identity = await provider.finish(dict(request.query_params), flow,
                                             redirect_uri(request))
        except SignInRefused as exc:
            if exc.status != 503:
                throttle.failed(None, client)
            return refusal(request, exc)
        if throttle.blocked("oidc:" + identity.subject, client):
            return refused(request, 429, THROTTLED)
        hub = services()
        try:
            user = await run_in_threadpool(
                hub.accounts.user_of_identity, identity.issuer, identity.subject,
                identity.email, identity.email_verified)
        except IdentityRefused as exc:
            throttle.failed("oidc:" + identity.subject, client)
            return refused(request, 403, UNVERIFIED if exc.reason == "unverified" else UNKNOWN)
        stage = await run_in_threadpool(_stage, hub, user.name, identity, provider)
        throttle.succeeded("oidc:" + identity.subject)
        new = await run_in_threadpool(hub.sessions.start, user.name, stage,
                                      request.cookies.get(COOKIE))
        await run_in_threadpool(hub.accounts.record_sign_in, user.name, "oidc", stage)
        target = {SECOND_FACTOR: "/anmelden", ENROL: "/konto"}.get(stage) or \
            safe_next(flow.next if flow else "") or "/konto"
        response = RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})
        set_cookie(request, response, new)
        response.delete_cookie(FLOW_COOKIE, path=PATH)
        return response

    return router


def _stage(hub: Services, name: str, identity: Identity, provider: Provider) -> str:
    """How far this sign-in goes: signed in, unless the user has the hub's second factor or
    their role needs one, and the provider did not say it used a second factor itself."""
    if identity.strong(provider.settings):
        return SIGNED_IN
    if hub.accounts.totp_enabled(name):
        return SECOND_FACTOR
    if hub.accounts.totp_required(hub.accounts.user(name)):
        return ENROL
    return SIGNED_IN
