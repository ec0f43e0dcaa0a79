"""A real OpenID provider for the sign-in tests, built from authlib's server side: the
authorization code grant (`authlib.oauth2.rfc6749`) with PKCE (`rfc7636.CodeChallenge`) and
OpenID Connect's code flow (`authlib.oidc.core.grants.OpenIDCode`), in a Flask app that
werkzeug serves on 127.0.0.1 (port 0) in a thread.

It has a discovery document, a JWKS with an RS256 key made here, an authorization endpoint with
a password form (and a "deny" button), the token endpoint (client_secret_basic; a code counts
once and for `code_lifetime` seconds) and userinfo. `tamper` makes it misbehave as a hostile
or broken provider would: sign ID tokens with another key (`key`), name another audience
(`aud`), issuer (`iss`) or nonce (`nonce`); leave the e-mail out of the ID token so that only
userinfo has it (`email_in_userinfo_only`), or answer userinfo for another subject
(`userinfo_sub`).
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

SCOPES = "openid email profile"


def rsa_key(kid: str = "k1") -> RSAKey:
    """A new RS256 signing key (2048 bits) with its key id."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class Person:
    """An account at the provider."""

    username: str
    password: str
    email: str = ""
    email_verified: bool = True
    amr: tuple[str, ...] = ("pwd",)
    acr: str = ""
    sub: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass
class Client(ClientMixin):
    client_id: str
    secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in SCOPES.split())

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    person: Person
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    made: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.made)

    def get_amr(self) -> list[str]:
        return list(self.person.amr)

    def get_acr(self) -> str | None:
        return self.person.acr or None


class Provider:
    """The provider's state (people, clients, codes, tokens) and its Flask app."""

    def __init__(self) -> None:
        self.key = rsa_key()
        self.people: dict[str, Person] = {}
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Person] = {}
        self.tamper: dict[str, Any] = {}
        self.code_lifetime = 60.0
        self.issuer = ""  # set when served
        self.app = self._app()

    def add(self, person: Person) -> Person:
        self.people[person.username] = person
        return person

    # -- the Flask app ---------------------------------------------------------------------

    def _app(self) -> Flask:
        app = Flask("oidc-provider")
        provider = self

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic",)

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                provider.codes[code] = Code(
                    code, req.client.get_client_id(), req.payload.redirect_uri,
                    req.payload.scope, req.user, data.get("nonce"),
                    data.get("code_challenge"), data.get("code_challenge_method"))

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = provider.codes.get(code)
                if (found is None or found.client_id != client.get_client_id()
                        or time.time() - found.made > provider.code_lifetime):
                    return None
                return found

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> Person:
                return authorization_code.person

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce: str, req: Any) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.tamper.get("key", provider.key)

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict[str, str]:
                key = provider.tamper.get("key", provider.key)
                return {"alg": "RS256", "kid": key.kid}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.tamper.get("iss", provider.issuer),
                        "aud": [provider.tamper.get("aud", client.get_client_id())],
                        "exp": int(time.time()) + 300}

            def get_authorization_code_claims(self, authorization_code: Code) -> dict:
                claims = super().get_authorization_code_claims(authorization_code)
                if "nonce" in provider.tamper:
                    claims["nonce"] = provider.tamper["nonce"]
                return claims

            def generate_user_info(self, user: Person, scope: str) -> UserInfo:
                if provider.tamper.get("email_in_userinfo_only"):
                    return UserInfo(sub=user.sub, name=user.username)
                return provider.user_info(user, scope)

        def save_token(token: dict[str, Any], req: Any) -> None:
            provider.tokens[token["access_token"]] = req.user

        server = AuthorizationServer(app, query_client=self.clients.get, save_token=save_token)
        server.register_grant(CodeGrant, [IdToken(require_nonce=True),
                                          CodeChallenge(required=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            base = self.issuer
            return jsonify({
                "issuer": base, "authorization_endpoint": base + "/authorize",
                "token_endpoint": base + "/token", "jwks_uri": base + "/jwks",
                "userinfo_endpoint": base + "/userinfo", "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "scopes_supported": SCOPES.split(),
                "claims_supported": ["sub", "email", "email_verified", "name", "amr", "acr"]})

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": [self.key.as_dict(private=False)]})

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize() -> Any:
            if request.method == "GET":
                try:
                    server.get_consent_grant(end_user=None)
                except Exception as exc:  # the provider's own error page
                    return f"<p>invalid request: {html.escape(str(exc))}</p>", 400
                return login_form()
            if request.form.get("deny"):
                return server.create_authorization_response(grant_user=None)
            person = self.people.get(request.form.get("username", ""))
            if person is None or person.password != request.form.get("password"):
                return login_form("Wrong user name or password."), 401
            return server.create_authorization_response(grant_user=person)

        def login_form(error: str = "") -> str:
            action = "/authorize?" + urlencode(list(request.args.items(multi=True)))
            return f"""<!doctype html><html lang="en"><head><title>District sign-in</title>
<meta name="viewport" content="width=device-width"></head><body><main>
<h1>District sign-in</h1><p role="alert">{html.escape(error)}</p>
<form method="post" action="{html.escape(action)}">
<label for="username">User name</label> <input id="username" name="username">
<label for="password">Password</label> <input id="password" name="password" type="password">
<button type="submit">Sign in</button>
<button type="submit" name="deny" value="1">Deny</button>
</form></main></body></html>"""

        @app.post("/token")
        def token() -> Any:
            return server.create_token_response()

        @app.get("/userinfo")
        def userinfo() -> Any:
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            person = self.tokens.get(bearer)
            if person is None:
                return jsonify({"error": "invalid_token"}), 401
            info = dict(self.user_info(person, SCOPES))
            return jsonify(info | {"sub": self.tamper.get("userinfo_sub", info["sub"])})

        return app

    def user_info(self, person: Person, scope: str) -> UserInfo:
        info = UserInfo(sub=person.sub, name=person.username)
        if "email" in scope.split() and person.email:
            info["email"] = person.email
            info["email_verified"] = person.email_verified
        return info


@contextmanager
def serving(provider: Provider) -> Iterator[str]:
    """The provider on 127.0.0.1 (a free port) in a thread until the block ends; yields its
    issuer URL."""
    server = make_server("127.0.0.1", 0, provider.app, threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider.issuer
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
