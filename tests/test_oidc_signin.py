"""Sign-in with the district's OpenID Connect provider, end to end over HTTP: a real provider
(tests/oidc_provider.py: authlib's server side, RS256 key made here) and a real `hub serve`
configured through HUB_OIDC_*, driven with httpx as a browser would (the hub's redirect, the
provider's password form, the provider's redirect back).

Linking (verified e-mail once, then `sub`), the refusal of unknown and unverified identities,
the second-factor rule (`amr`), `next`, throttling, and the attacks: forged state, replayed and
expired code, a token signed by another key, wrong audience and issuer, nonce mismatch, an open
redirect. Each test's browser comes from its own client address (X-Forwarded-For, which the
hub's uvicorn trusts from 127.0.0.1), so the throttle counts each test on its own.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from chromium import Watched, looked_at
from ckan_project import copy_project
from conftest import serving
from oidc_provider import Client, Person, Provider, rsa_key
from oidc_provider import serving as provider_serving

from hub import audit
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.oidc import Flow
from hub.web.session import COOKIE, ENROL, SECOND_FACTOR, SIGNED_IN, Sessions

SECRET = "geheimes-client-secret-0123456789"
PASSWORD = "Passwort beim Landkreis"
LABEL = "Landkreis-Konto"
ADDRESSES = (f"10.20.{i // 250}.{i % 250 + 1}" for i in itertools.count())


@dataclass
class Site:
    url: str
    provider: Provider
    accounts: Accounts
    issuer: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    provider = Provider()
    with provider_serving(provider) as issuer:
        root = copy_project(tmp_path_factory.mktemp("oidc"))
        catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
        accounts = Accounts(catalog.store, vocab, frozenset({"admin"}))
        accounts.add_user("vic", "sozialamt", "viewer", email="Vic.Viewer@lkee.example")
        accounts.add_user("ann", "landkreis-elbe-elster", "admin", email="ann@lkee.example")
        accounts.add_user("tom", "sozialamt", "editor", email="tom@lkee.example")
        accounts.add_user("kat", "kataster-vermessung", "editor", email="kat@lkee.example")
        for twin in ("zwilling-a", "zwilling-b"):
            accounts.add_user(twin, "sozialamt", "viewer", email="team@lkee.example")
        accounts.add_user("ex", "sozialamt", "viewer", email="ex@lkee.example")
        accounts.set_state("ex", "disabled")
        for person in (Person("vic.viewer", PASSWORD, "vic.viewer@lkee.example"),
                       Person("ann.admin", PASSWORD, "ann@lkee.example"),
                       Person("tom", PASSWORD, "tom@lkee.example"),
                       Person("kat", PASSWORD, "kat@lkee.example", email_verified=False),
                       Person("team", PASSWORD, "team@lkee.example"),
                       Person("ex", PASSWORD, "ex@lkee.example"),
                       Person("stranger", PASSWORD, "stranger@elsewhere.example")):
            provider.add(person)
        env = {"HUB_OIDC_ISSUER": issuer, "HUB_OIDC_CLIENT_ID": "datenhub",
               "HUB_OIDC_CLIENT_SECRET": SECRET, "HUB_OIDC_LABEL": LABEL,
               "HUB_OIDC_MFA_AMR": "mfa,hwk", "HUB_TOTP_ROLES": "admin"}
        with serving(root, **env) as url:
            provider.clients["datenhub"] = Client("datenhub", SECRET,
                                                  [url + "/anmelden/oidc/zurueck"])
            yield Site(url, provider, accounts, issuer)


@pytest.fixture(autouse=True)
def honest(site: Site) -> Iterator[None]:
    """Every test starts with an honest provider."""
    yield
    site.provider.tamper.clear()
    site.provider.code_lifetime = 60.0


def as_client(site: Site, address: str | None = None) -> httpx.Client:
    """A browser of its own client address (for the hub's throttle)."""
    return httpx.Client(base_url=site.url, timeout=30, follow_redirects=False,
                        headers={"X-Forwarded-For": address or next(ADDRESSES)})


def to_provider(site: Site, client: httpx.Client, next_path: str | None = None) -> str:
    """Press the button: the provider's authorization URL the hub sends the browser to."""
    started = client.get("/anmelden/oidc", params={"next": next_path} if next_path else None)
    assert started.status_code == 303, started.text[:500]
    location = started.headers["location"]
    assert location.startswith(site.issuer + "/authorize?")
    return location


def authorize(site: Site, client: httpx.Client, username: str, next_path: str | None = None,
              deny: bool = False) -> str:
    """The hub's callback URL the provider sends the browser back to, after its form."""
    location = to_provider(site, client, next_path)
    query = parse_qs(urlsplit(location).query)
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == ["datenhub"] and "openid" in query["scope"][0].split()
    assert query["state"][0] and query["nonce"][0] and query["code_challenge"][0]
    form = client.get(location)
    assert form.status_code == 200 and "District sign-in" in form.text
    data = {"username": username, "password": PASSWORD} | ({"deny": "1"} if deny else {})
    answer = client.post(location, data=data)
    assert answer.status_code == 302, answer.text[:500]
    back = answer.headers["location"]
    assert back.startswith(site.url + "/anmelden/oidc/zurueck?")
    return back


def sign_in(site: Site, client: httpx.Client, username: str,
            next_path: str | None = None) -> httpx.Response:
    """The whole walk; the hub's answer to the provider's redirect back."""
    return client.get(authorize(site, client, username, next_path))


def refused(answer: httpx.Response, status: int, text: str) -> None:
    """A refusal page with `status`, `text` in its message, and no session."""
    assert answer.status_code == status, answer.text[:800]
    assert "Anmeldung nicht möglich" in answer.text
    message = re.search(r'<p class="error" role="alert">(.*?)</p>', answer.text, re.S)
    assert message and text in message.group(1), answer.text[:800]
    assert COOKIE not in answer.cookies
    assert answer.headers["cache-control"] == "no-store"


def entries(site: Site, action: str, subject: str) -> list[audit.Entry]:
    return [e for e in audit.entries(site.accounts.db) if e.action == action
            and e.subject == subject]


def test_the_button_and_a_first_sign_in_linked_by_verified_email(site: Site) -> None:
    with as_client(site) as client:
        page = client.get("/anmelden")
        assert page.status_code == 200
        assert f'<a class="button" href="/anmelden/oidc">Mit {LABEL} anmelden</a>' in page.text
        assert 'action="/anmelden"' in page.text  # the password form stays beside it
        planted = Sessions(site.accounts).start("tom", SECOND_FACTOR)  # fixation attempt
        client.cookies.set(COOKIE, planted)
        done = sign_in(site, client, "vic.viewer")
        assert done.status_code == 303 and done.headers["location"] == "/konto"
        session = done.cookies[COOKIE]
        assert session != planted and Sessions(site.accounts).get(planted) is None
        assert Sessions(site.accounts).get(session).stage == SIGNED_IN
        assert "hub_oidc=" in done.headers["set-cookie"]  # the flow's cookie is cleared
        client.cookies.clear()  # (the jar kept the planted cookie beside the new one)
        client.cookies.set(COOKIE, session)
        account = client.get("/konto")
        assert account.status_code == 200 and ">vic<" in account.text
    person = site.provider.people["vic.viewer"]
    assert site.accounts.identities_of("vic") == [(site.issuer, person.sub)]
    linked = entries(site, "user.identity_link", "vic")
    assert len(linked) == 1 and person.sub in linked[0].after
    signed = entries(site, "user.sign_in", "vic")
    assert signed and '"method":"oidc"' in signed[-1].after and signed[-1].actor == "vic"


def test_a_linked_identity_signs_in_by_sub_whatever_its_address_says_now(site: Site) -> None:
    with as_client(site) as client:
        assert sign_in(site, client, "tom").status_code == 303
    person = site.provider.people["tom"]
    person.email, person.email_verified = "tom.neu@elsewhere.example", False
    try:
        with as_client(site) as client:
            done = sign_in(site, client, "tom")
            assert done.status_code == 303
            assert Sessions(site.accounts).get(done.cookies[COOKIE]).user.name == "tom"
    finally:
        person.email, person.email_verified = "tom@lkee.example", True
    assert len(entries(site, "user.identity_link", "tom")) == 1


def test_unknown_unverified_ambiguous_and_disabled_identities_are_refused(site: Site) -> None:
    for username, text in (("stranger", "gibt es kein Konto im Datenhub"),
                           ("kat", "bestätigt Ihre E-Mail-Adresse nicht"),
                           ("team", "gibt es kein Konto im Datenhub"),
                           ("ex", "gibt es kein Konto im Datenhub")):
        with as_client(site) as client:
            answer = sign_in(site, client, username)
            refused(answer, 403, text)
            assert LABEL in answer.text
            assert client.get("/konto").headers["location"] == "/anmelden"
    for user in ("kat", "zwilling-a", "zwilling-b", "ex"):
        assert site.accounts.identities_of(user) == []


def test_an_address_only_in_userinfo_links_when_userinfo_is_about_the_same_subject(
        site: Site) -> None:
    """An ID token without the e-mail: the address is asked of userinfo, and used only when
    userinfo answers for the token's subject (OpenID Connect Core 5.3.2)."""
    site.accounts.add_user("uwe", "sozialamt", "viewer", email="uwe@lkee.example")
    person = site.provider.add(Person("uwe.info", PASSWORD, "uwe@lkee.example"))
    site.provider.tamper.update(email_in_userinfo_only=True, userinfo_sub="jemand-anders")
    with as_client(site) as client:  # userinfo about someone else: no address at all
        refused(sign_in(site, client, "uwe.info"), 403, "gibt es kein Konto im Datenhub")
    assert site.accounts.identities_of("uwe") == []
    del site.provider.tamper["userinfo_sub"]
    with as_client(site) as client:
        done = sign_in(site, client, "uwe.info")
        assert done.status_code == 303, done.text[:500]
        assert Sessions(site.accounts).get(done.cookies[COOKIE]).user.name == "uwe"
    assert site.accounts.identities_of("uwe") == [(site.issuer, person.sub)]


def test_the_provider_saying_no_is_a_clear_refusal(site: Site) -> None:
    with as_client(site) as client:
        refused(client.get(authorize(site, client, "vic.viewer", deny=True)), 403,
                "abgebrochen oder nicht erlaubt")
        other = client.get("/anmelden/oidc/zurueck", params={"error": "server_error"})
        refused(other, 400, "nicht in diesem Browser begonnen")  # no flow began here


def test_a_forged_or_foreign_state_is_refused(site: Site) -> None:
    with as_client(site) as victim:
        back = authorize(site, victim, "vic.viewer")
        forged = re.sub(r"state=[^&]+", "state=gefaelscht", back)
        refused(victim.get(forged), 400, "nicht in diesem Browser begonnen")
    with as_client(site) as attacker, as_client(site) as victim:
        back = authorize(site, attacker, "stranger")  # the attacker's code, sent to a victim
        refused(victim.get(back), 400, "nicht in diesem Browser begonnen")


def test_a_replayed_or_expired_code_is_refused(site: Site) -> None:
    with as_client(site) as client:
        back = authorize(site, client, "vic.viewer")
        flow = client.cookies["hub_oidc"]
        assert client.get(back).status_code == 303  # used once
    with as_client(site) as replay:
        replay.cookies.set("hub_oidc", flow, path="/anmelden/oidc")
        refused(replay.get(back), 400, "ungültig, abgelaufen oder wurde schon verwendet")
    site.provider.code_lifetime = 0
    with as_client(site) as late:
        refused(sign_in(site, late, "vic.viewer"), 400, "abgelaufen")


@pytest.mark.parametrize("tamper, text", [
    ({"key": "same-kid"}, "die Signatur passt zu keinem Schlüssel"),
    ({"key": "other-kid"}, "die Signatur passt zu keinem Schlüssel"),
    ({"aud": "eine-andere-anwendung"}, "nicht für diesen Datenhub ausgestellt"),
    ({"iss": "https://fremder-dienst.example"}, "nicht vom eingestellten Anmeldedienst"),
    ({"nonce": "eine-andere-anmeldung"}, "gehört nicht zu dieser Anmeldung"),
])
def test_an_id_token_that_fails_a_check_signs_no_one_in(site: Site, tamper: dict,
                                                         text: str) -> None:
    if "key" in tamper:  # an attacker's key: the provider's key id, or one of its own
        tamper = {"key": rsa_key("k1" if tamper["key"] == "same-kid" else "k-fremd")}
    site.provider.tamper.update(tamper)
    with as_client(site) as client:
        answer = sign_in(site, client, "vic.viewer")
        refused(answer, 401, text)
        assert "Sie wurden nicht angemeldet" in answer.text
        assert client.get("/konto").headers["location"] == "/anmelden"


@pytest.mark.parametrize("next_path, target", [
    ("/datasets?q=Schule", "/datasets?q=Schule"),
    ("//evil.example/anmelden", "/konto"),
    ("https://evil.example/", "/konto"),
    ("/\\evil.example", "/konto"),
    ("/\tevil", "/konto"),
])
def test_next_leads_only_to_a_path_of_the_hub(site: Site, next_path: str, target: str) -> None:
    with as_client(site) as client:
        page = client.get("/anmelden", params={"next": next_path})
        if target == "/konto":
            assert 'href="/anmelden/oidc">' in page.text  # the button does not carry it on
        done = sign_in(site, client, "vic.viewer", next_path)
        assert done.status_code == 303 and done.headers["location"] == target
    with as_client(site) as client:  # a flow cookie the browser itself altered: no way out
        location = to_provider(site, client)
        flow = Flow.of_cookie(client.cookies["hub_oidc"])
        client.cookies.delete("hub_oidc")
        client.cookies.set("hub_oidc", Flow(flow.state, flow.nonce, flow.verifier,
                                            next_path).cookie(), path="/anmelden/oidc")
        back = client.post(location, data={"username": "vic.viewer", "password": PASSWORD})
        assert client.get(back.headers["location"]).headers["location"] == target


def test_a_role_that_needs_two_factors_takes_the_providers_only_when_amr_says_so(
        site: Site) -> None:
    with as_client(site) as client:  # ann is an admin (HUB_TOTP_ROLES), no second factor yet
        done = sign_in(site, client, "ann.admin")
        assert done.status_code == 303 and done.headers["location"] == "/konto"
        assert Sessions(site.accounts).get(done.cookies[COOKIE]).stage == ENROL
        assert client.get("/datasets").status_code == 200
    site.provider.people["ann.admin"].amr = ("pwd", "mfa")  # now with the provider's own
    try:
        with as_client(site) as client:  # the provider says it used a second factor ("mfa")
            done = sign_in(site, client, "ann.admin")
            assert done.status_code == 303 and done.headers["location"] == "/konto"
            assert Sessions(site.accounts).get(done.cookies[COOKIE]).stage == SIGNED_IN
    finally:
        site.provider.people["ann.admin"].amr = ("pwd",)
    secret = site.accounts.begin_totp("tom").secret  # tom set up the hub's own second factor
    site.accounts.confirm_totp("tom", pyotp.TOTP(secret).now())
    try:
        with as_client(site) as client:
            done = sign_in(site, client, "tom")
            assert done.status_code == 303 and done.headers["location"] == "/anmelden"
            assert Sessions(site.accounts).get(done.cookies[COOKIE]).stage == SECOND_FACTOR
            step = client.get("/anmelden")
            assert 'action="/anmelden/code"' in step.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', step.text).group(1)
            code = pyotp.TOTP(secret).at(time.time() + 30)  # after the step that confirmed
            answer = client.post("/anmelden/code", data={"csrf": csrf, "code": code})
            assert answer.status_code == 303 and answer.headers["location"] == "/konto"
            assert Sessions(site.accounts).get(answer.cookies[COOKIE]).stage == SIGNED_IN
    finally:
        site.accounts.reset_totp("tom")


def test_failures_are_throttled_like_wrong_passwords(site: Site) -> None:
    address = next(ADDRESSES)
    with as_client(site, address) as client:
        back = authorize(site, client, "vic.viewer")
        forged = re.sub(r"state=[^&]+", "state=falsch", back)
        for _ in range(20):  # the limit per client address
            refused(client.get(forged), 400, "nicht in diesem Browser begonnen")
        refused(client.get(back), 429, "Zu viele Versuche")  # the right answer, too late
        assert client.get("/anmelden/oidc").status_code == 429
    with as_client(site) as other:  # another address is not blocked
        assert sign_in(site, other, "vic.viewer").status_code == 303


def test_a_walk_in_chromium_is_clean_and_accessible(site: Site, browser: Any) -> None:
    """The button, the provider's form, the account; a refusal page: screenshots at 1280 and
    360 px, no serious axe-core finding, no console error, nothing fetched from outside."""
    problems: dict[str, list[str]] = {}
    watched = Watched(browser)
    try:
        page = watched.page
        page.goto(site.url + "/anmelden")
        looked_at(page, "oidc-signin", problems)
        page.get_by_role("link", name=f"Mit {LABEL} anmelden").click()
        page.wait_for_url(site.issuer + "/authorize?*")
        page.fill("#username", "vic.viewer")
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(site.url + "/konto")
        assert page.get_by_role("link", name="vic").count() >= 1
        looked_at(page, "oidc-account", problems)
        page.goto(site.url + "/anmelden/oidc/zurueck?state=alt&code=alt")
        assert page.get_by_role("alert").inner_text().startswith("Diese Anmeldung wurde nicht")
        looked_at(page, "oidc-refused", problems)
        page.goto(site.url + "/anmelden/oidc/zurueck?state=alt&code=alt&lang=dsb")
        looked_at(page, "oidc-refused-dsb", problems)
        errors = [e for e in watched.errors if "status of 400" not in e]
        assert problems == {} and errors == [] and watched.outside == []
    finally:
        watched.close()
