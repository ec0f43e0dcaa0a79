"""Sign-in with the district's OpenID Connect provider: the relying party's side of the
authorization code flow, done by authlib's client over httpx.

`Provider.begin` reads the provider's discovery document (`<issuer>/.well-known/
openid-configuration`, whose `issuer` must be the configured one) and makes the authorization
URL with a fresh `state`, `nonce` and PKCE verifier (S256); the three travel in a short-lived
cookie of the browser that began (`Flow`), never in a URL the provider sees. `Provider.finish`
takes the provider's answer: its `error`, or the code, which is exchanged at the token endpoint
(with the client secret and the verifier); the ID token's signature is checked against the
provider's JWKS (fetched again once for an unknown key id), and its `iss`, `aud`, `exp`, `iat`
and `nonce`. Every refusal is a `SignInRefused` with a 4xx status (503 when the provider cannot
be reached) and a German message for the page; nothing here starts a session.

Who the identity is in the hub is `hub.accounts.Accounts.user_of_identity`'s decision; whether
the provider's sign-in counts as two factors is `Identity.strong`.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError

from hub.config import OidcSettings
from hub.errors import HubError

DISCOVERY = "/.well-known/openid-configuration"
LEEWAY = 60  # seconds of clock difference allowed for `exp` and `iat`
FLOW_SECONDS = 600  # from the button to the provider's answer (the flow cookie's life)


class SignInRefused(HubError):
    """The provider's sign-in does not sign anyone in: `status` (4xx; 503 when the provider
    cannot be reached), `kind` what went wrong (one of `KINDS`, the page's message), `params`
    its details (`error`: the provider's error code; `what`: which check of the ID token
    failed, one of `TOKEN_CHECKS`), the English reason in `str()` (for the logs)."""

    def __init__(self, status: int, kind: str, reason: str, **params: str):
        super().__init__(reason)
        self.status, self.kind, self.params = status, kind, params


KINDS = ("unreachable", "denied", "provider_error", "no_flow", "bad_code", "bad_token")
TOKEN_CHECKS = ("signature", "aud", "iss", "nonce", "exp", "other")


@dataclass(frozen=True)
class Flow:
    """One begun sign-in, kept in the browser's cookie until the provider's answer."""

    state: str
    nonce: str
    verifier: str
    next: str = ""

    def cookie(self) -> str:
        data = json.dumps([self.state, self.nonce, self.verifier, self.next]).encode()
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    @classmethod
    def of_cookie(cls, text: str | None) -> Flow | None:
        if not text or len(text) > 4000:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except ValueError:
            return None
        if not (isinstance(data, list) and len(data) == 4
                and all(isinstance(v, str) for v in data)):
            return None
        return cls(*data)


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in (from the checked ID token, or its userinfo)."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    amr: tuple[str, ...]
    acr: str

    def strong(self, settings: OidcSettings) -> bool:
        """Does the provider say the user signed in with more than one factor, by an `amr`
        or `acr` value the hub is configured to trust (HUB_OIDC_MFA_AMR, HUB_OIDC_MFA_ACR)?"""
        return bool(settings.mfa_amr.intersection(self.amr)) or (
            bool(self.acr) and self.acr in settings.mfa_acr)


class Provider:
    """The district's provider as this hub's client sees it (one per server process; the
    discovery document and the JWKS are read once and kept)."""

    def __init__(self, settings: OidcSettings, timeout: float = 30.0):
        self.settings = settings
        issuer = settings.issuer.rstrip("/")
        self.client = OAuth().register(
            name="district", client_id=settings.client_id,
            client_secret=settings.client_secret,
            server_metadata_url=issuer + DISCOVERY,
            client_kwargs={"scope": settings.scopes, "code_challenge_method": "S256",
                           "timeout": timeout})

    @property
    def label(self) -> str:
        return self.settings.label

    async def begin(self, redirect_uri: str, next_path: str = "") -> tuple[str, Flow]:
        """The provider's authorization URL to send the browser to, and the flow to keep
        (`next_path`: where to go after sign-in, a path already checked with `safe_next`)."""
        await self._metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        made = await self.client.create_authorization_url(
            redirect_uri, state=state, nonce=nonce, code_verifier=secrets.token_urlsafe(64))
        return made["url"], Flow(state, nonce, made["code_verifier"], next_path)

    async def finish(self, params: dict[str, str], flow: Flow | None,
                     redirect_uri: str) -> Identity:
        """The identity of the provider's answer `params` (the callback's query) to `flow`."""
        if flow is None or not secrets.compare_digest(params.get("state", "").encode(),
                                                      flow.state.encode()):
            raise SignInRefused(400, "no_flow", "the answer's state is not the one this browser "
                                "was sent with (or the sign-in was not begun here)")
        if "error" in params:
            error = params["error"][:100]
            if error == "access_denied":
                raise SignInRefused(403, "denied", "the provider answered access_denied")
            raise SignInRefused(400, "provider_error", f"the provider answered {error}",
                                error=error)
        code = params.get("code", "")
        if not code:
            raise SignInRefused(400, "bad_code", "the provider's answer has no code")
        try:
            token = await self.client.fetch_access_token(
                redirect_uri=redirect_uri, code=code, code_verifier=flow.verifier)
        except AuthlibBaseError as exc:
            raise SignInRefused(400, "bad_code", f"the token endpoint refused the code: "
                                f"{exc.error}: {exc.description}") from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        claims = await self._claims(token, flow.nonce)
        return await self._identity(token, claims)

    async def _metadata(self) -> dict[str, Any]:
        try:
            metadata = await self.client.load_server_metadata()
        except (httpx.HTTPError, ValueError) as exc:
            self.client.server_metadata.pop("_loaded_at", None)
            raise self._unreachable(exc) from None
        if metadata.get("issuer") != self.settings.issuer:
            self.client.server_metadata.pop("_loaded_at", None)
            raise SignInRefused(503, "unreachable", f"the discovery document names the "
                                f"issuer {metadata.get('issuer')!r}, not "
                                f"{self.settings.issuer!r}")
        return metadata

    async def _claims(self, token: dict[str, Any], nonce: str) -> dict[str, Any]:
        if "id_token" not in token:
            raise self._bad_token("other", "the token response has no id_token")
        options = {"iss": {"essential": True, "value": self.settings.issuer},
                   "aud": {"essential": True, "value": self.settings.client_id},
                   "sub": {"essential": True}, "nonce": {"essential": True}}
        try:
            claims = await self.client.parse_id_token(token, nonce, claims_options=options,
                                                      leeway=LEEWAY)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        except JoseError as exc:
            raise self._bad_token(_what(exc), f"the ID token: {exc.error}: {exc}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise self._bad_token("other", f"the ID token cannot be read: {exc}") from None
        return dict(claims)

    async def _identity(self, token: dict[str, Any], claims: dict[str, Any]) -> Identity:
        found = claims
        if "email" not in claims and self.client.server_metadata.get("userinfo_endpoint"):
            try:
                info = await self.client.userinfo(token=token)
            except (httpx.HTTPError, AuthlibBaseError, ValueError) as exc:
                raise self._unreachable(exc) from None
            if info.get("sub") == claims["sub"]:  # OIDC Core 5.3.2: else not to be used
                found = {**info, **claims}
        amr = claims.get("amr") or []
        return Identity(
            issuer=self.settings.issuer, subject=str(claims["sub"]),
            email=str(found.get("email") or "")[:320],
            email_verified=found.get("email_verified") is True,
            amr=tuple(str(a) for a in amr) if isinstance(amr, list) else (),
            acr=str(claims.get("acr") or ""))

    def _unreachable(self, exc: Exception) -> SignInRefused:
        return SignInRefused(503, "unreachable", f"the provider cannot be reached: {exc}")

    def _bad_token(self, what: str, reason: str) -> SignInRefused:
        return SignInRefused(401, "bad_token", reason, what=what)


def _what(exc: JoseError) -> str:
    """Which of `TOKEN_CHECKS` a joserfc error of an ID token is."""
    error = getattr(exc, "error", "")
    claim = getattr(exc, "claim", "")
    if error in ("bad_signature", "invalid_key_id", "unsupported_algorithm"):
        return "signature"
    if error == "expired_token":
        return "exp"
    if claim in ("aud", "iss", "nonce"):
        return claim
    return "other"
