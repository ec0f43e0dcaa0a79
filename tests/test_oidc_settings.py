"""The OpenID Connect settings (HUB_OIDC_*), the `next` check, and the relying party against a
real provider that is down or names another issuer (tests/oidc_provider.py); the whole flow
through `hub serve` is in test_oidc_signin.py."""

from __future__ import annotations

import asyncio

import oidc_provider
import pytest
from conftest import free_port

from hub.config import OidcSettings
from hub.errors import PipelineError
from hub.oidc import Flow, Identity, Provider, SignInRefused
from hub.web.portal.signin import safe_next

BASE = {"HUB_OIDC_ISSUER": "https://login.example-kreis.de/realms/verwaltung",
        "HUB_OIDC_CLIENT_ID": "datenhub", "HUB_OIDC_CLIENT_SECRET": "geheim"}


def test_unset_means_no_oidc_and_every_setting_is_read() -> None:
    assert OidcSettings.from_env({}) is None
    assert OidcSettings.from_env({"HUB_OIDC_CLIENT_ID": "x"}) is None
    plain = OidcSettings.from_env(BASE)
    assert plain is not None and plain.scopes == "openid email profile"
    assert plain.label == "Dienstkonto" and not plain.mfa_amr and not plain.mfa_acr
    full = OidcSettings.from_env({**BASE, "HUB_OIDC_SCOPES": "openid,email",
                                  "HUB_OIDC_LABEL": "Landkreis-Konto",
                                  "HUB_OIDC_MFA_AMR": "mfa, hwk", "HUB_OIDC_MFA_ACR": "gold"})
    assert full.scopes == "openid email" and full.label == "Landkreis-Konto"
    assert full.mfa_amr == {"mfa", "hwk"} and full.mfa_acr == {"gold"}


@pytest.mark.parametrize("env, names", [
    ({"HUB_OIDC_ISSUER": "login.example-kreis.de"}, "HUB_OIDC_ISSUER"),
    ({"HUB_OIDC_CLIENT_SECRET": ""}, "HUB_OIDC_CLIENT_SECRET"),
    ({"HUB_OIDC_CLIENT_ID": ""}, "HUB_OIDC_CLIENT_ID"),
    ({"HUB_OIDC_SCOPES": "email profile"}, "must contain 'openid'"),
])
def test_a_wrong_setting_is_named(env: dict[str, str], names: str) -> None:
    with pytest.raises(PipelineError, match=names):
        OidcSettings.from_env({**BASE, **env})


@pytest.mark.parametrize("path, kept", [
    ("/konto", True), ("/datasets?q=Schule&lang=dsb", True), ("/arbeitsbereich/", True),
    ("//evil.example", False), ("/\\evil.example", False), ("https://evil.example", False),
    ("evil.example", False), ("/\tevil", False), ("/a\x00b", False), ("/ä", False),
    ("", False), (None, False), ("/" + "a" * 1000, False),
])
def test_next_is_kept_only_as_a_local_path(path: str | None, kept: bool) -> None:
    assert safe_next(path) == (path if kept else "")


def test_a_flow_cookie_round_trips_and_garbage_is_no_flow() -> None:
    flow = Flow("s", "n", "v" * 64, "/konto")
    assert Flow.of_cookie(flow.cookie()) == flow
    for garbage in (None, "", "%%%", "bm90IGpzb24", "WzEsIDJd", "x" * 5000):
        assert Flow.of_cookie(garbage) is None


def test_the_second_factor_counts_only_for_configured_values() -> None:
    settings = OidcSettings.from_env({**BASE, "HUB_OIDC_MFA_AMR": "mfa",
                                      "HUB_OIDC_MFA_ACR": "urn:kreis:loa:hoch"})
    who = Identity("i", "s", "a@b.example", True, ("pwd",), "")
    assert not who.strong(settings)
    assert Identity("i", "s", "", True, ("pwd", "mfa"), "").strong(settings)
    assert Identity("i", "s", "", True, (), "urn:kreis:loa:hoch").strong(settings)
    assert not Identity("i", "s", "", True, ("pwd", "mfa"), "").strong(OidcSettings.from_env(BASE))


def test_a_provider_that_is_down_or_names_another_issuer_is_a_503() -> None:
    down = Provider(OidcSettings.from_env({**BASE, "HUB_OIDC_ISSUER":
                                           f"http://127.0.0.1:{free_port()}"}), timeout=5)
    with pytest.raises(SignInRefused) as refused:
        asyncio.run(down.begin("http://127.0.0.1/anmelden/oidc/zurueck"))
    assert refused.value.status == 503 and refused.value.kind == "unreachable"
    with oidc_provider.serving(oidc_provider.Provider()) as issuer:
        other = Provider(OidcSettings.from_env({**BASE, "HUB_OIDC_ISSUER": issuer + "/"}))
        with pytest.raises(SignInRefused, match="names the issuer") as refused:
            asyncio.run(other.begin("http://127.0.0.1/anmelden/oidc/zurueck"))
        assert refused.value.status == 503
        right = Provider(OidcSettings.from_env({**BASE, "HUB_OIDC_ISSUER": issuer}))
        url, flow = asyncio.run(right.begin("http://127.0.0.1/anmelden/oidc/zurueck", "/x"))
        assert url.startswith(issuer + "/authorize?") and flow.next == "/x"
        assert f"state={flow.state}" in url and f"nonce={flow.nonce}" in url
