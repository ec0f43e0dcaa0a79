"""Sign-in on a real `hub serve` with a real HTTP client: /anmelden (password, then TOTP
computed here with pyotp), /konto (second factor set up with the page's secret, recovery
codes, API tokens shown once), /abmelden; cookie flags, session fixation, CSRF, throttling,
replayed codes, generic errors."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
from ckan_project import build
from conftest import serving

from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.web.session import COOKIE, SECOND_FACTOR, Sessions

PASSWORD = "Korrekt Pferd Batterie"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Accounts]]:
    root: Path = tmp_path_factory.mktemp("signin")
    build(root)
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for user in ("sam", "vic", "kat"):
        accounts.set_password(user, PASSWORD)
    with serving(root) as url:
        yield url, accounts


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, follow_redirects=False)


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def sign_in(browser: httpx.Client, name: str, password: str = PASSWORD,
            **headers: str) -> httpx.Response:
    form = browser.get("/anmelden")
    assert form.status_code == 200
    return browser.post("/anmelden", data={"name": name, "password": password,
                                           "csrf": csrf_of(form)}, headers=headers)


def test_password_sign_in_sets_a_safe_cookie_and_shows_the_account(hub: tuple) -> None:
    url, _ = hub
    with client(url) as browser:
        start = browser.get("/")
        assert '<a class="account" href="/anmelden">Anmelden</a>' in start.text
        done = sign_in(browser, "vic")
        assert done.status_code == 303 and done.headers["location"] == "/konto"
        cookie = next(c for c in done.headers.get_list("set-cookie")
                      if c.startswith(COOKIE + "="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        account = browser.get("/konto")
        assert account.status_code == 200 and ">vic<" in account.text
        assert account.headers["cache-control"] == "no-store"
        assert '<a class="account" href="/konto">vic</a>' in browser.get("/").text
    with client(url) as behind_tls:  # through a proxy uvicorn trusts (127.0.0.1)
        done = sign_in(behind_tls, "vic", **{"X-Forwarded-Proto": "https"})
        cookie = next(c for c in done.headers.get_list("set-cookie")
                      if c.startswith(COOKIE + "="))
        assert "Secure" in cookie


def test_failures_say_only_that_sign_in_failed(hub: tuple) -> None:
    url, _ = hub
    with client(url) as browser:
        wrong = sign_in(browser, "vic", PASSWORD + "x")
        unknown = sign_in(browser, "niemand")
        for answer in (wrong, unknown):
            assert answer.status_code == 401 and "Anmeldung fehlgeschlagen" in answer.text
            assert COOKIE not in answer.cookies
        same = [re.sub(r'value="[^"]+"', "", a.text) for a in (wrong, unknown)]
        assert same[0] == same[1]  # nothing tells an unknown user from a wrong password


def test_forms_without_their_csrf_token_are_refused(hub: tuple) -> None:
    url, _ = hub
    with client(url) as browser:
        browser.get("/anmelden")
        for token in ("", "falsch"):
            refused = browser.post("/anmelden", data={"name": "vic", "password": PASSWORD,
                                                      "csrf": token})
            assert refused.status_code == 403
        assert sign_in(browser, "vic").status_code == 303
        token = csrf_of(browser.get("/konto"))
        for sent in ({}, {"csrf": "falsch"}):
            assert browser.post("/konto/schluessel", data={"label": "x", **sent}
                                ).status_code == 403
            assert browser.post("/abmelden", data=sent).status_code == 403
        assert browser.get("/konto").status_code == 200  # still signed in
        made = browser.post("/konto/schluessel", data={"label": "laptop", "csrf": token})
        assert made.status_code == 200


def test_the_session_id_changes_at_sign_in(hub: tuple) -> None:
    url, accounts = hub
    planted = Sessions(accounts).start("kat", SECOND_FACTOR)  # an id an attacker knows
    with client(url) as browser:
        form = browser.get("/anmelden")
        browser.cookies.set(COOKIE, planted)  # set by the attacker before the victim signs in
        done = browser.post("/anmelden", data={"name": "vic", "password": PASSWORD,
                                               "csrf": csrf_of(form)})
        assert done.status_code == 303
        new = done.cookies[COOKIE]
        assert new != planted
        assert Sessions(accounts).get(planted) is None  # the planted one is gone
        assert Sessions(accounts).get(new).user.name == "vic"


def test_sign_out_ends_the_session(hub: tuple) -> None:
    url, accounts = hub
    with client(url) as browser:
        sign_in(browser, "vic")
        sid = browser.cookies[COOKIE]
        out = browser.post("/abmelden", data={"csrf": csrf_of(browser.get("/konto"))})
        assert out.status_code == 303 and out.headers["location"] == "/"
        assert Sessions(accounts).get(sid) is None
    with client(url) as replay:
        replay.cookies.set(COOKIE, sid)
        assert replay.get("/konto").headers["location"] == "/anmelden"


def test_totp_set_up_sign_in_replay_and_recovery_codes(hub: tuple) -> None:
    url, _ = hub
    with client(url) as browser:
        sign_in(browser, "sam")
        token = csrf_of(browser.get("/konto"))
        assert browser.post("/konto/zweiter-faktor", data={"csrf": token}).status_code == 303
        page = browser.get("/konto")
        assert "<svg" in page.text and 'role="img"' in page.text
        secret = re.search(r"<code>([A-Z2-7]{32})</code>", page.text).group(1)
        otp = pyotp.TOTP(secret)
        confirmed = browser.post("/konto/zweiter-faktor/bestaetigen",
                                 data={"csrf": token, "code": otp.now()})
        assert confirmed.status_code == 200
        codes = re.findall(r"<li><code>([A-Z2-7-]{19})</code></li>", confirmed.text)
        assert len(codes) == 10
        assert not re.findall(r"<li><code>", browser.get("/konto").text)  # shown once
        browser.post("/abmelden", data={"csrf": token})
    with client(url) as browser:  # the code step, with a code made now
        halfway = sign_in(browser, "sam")
        assert halfway.headers["location"] == "/anmelden"
        assert browser.get("/konto").headers["location"] == "/anmelden"  # not yet
        step = browser.get("/anmelden")
        assert 'autocomplete="one-time-code"' in step.text
        used = otp.now()
        wait_for_fresh = browser.post("/anmelden/code", data={"csrf": csrf_of(step),
                                                              "code": used})
        # the code of set-up may be this step's: then it was used, else it signs in now
        if wait_for_fresh.status_code == 401:
            used = codes.pop()
            wait_for_fresh = browser.post("/anmelden/code",
                                          data={"csrf": csrf_of(step), "code": used})
        assert wait_for_fresh.status_code == 303
        assert browser.get("/konto").status_code == 200
    with client(url) as thief:  # the same code again: refused
        sign_in(thief, "sam")
        step = thief.get("/anmelden")
        replayed = thief.post("/anmelden/code", data={"csrf": csrf_of(step), "code": used})
        assert replayed.status_code == 401 and "Anmeldung fehlgeschlagen" in replayed.text
        assert thief.get("/konto").headers["location"] == "/anmelden"
        recovered = thief.post("/anmelden/code", data={"csrf": csrf_of(step),
                                                       "code": codes[0]})
        assert recovered.status_code == 303 and thief.get("/konto").status_code == 200
    with client(url) as browser:  # the code step can be left: back to the password
        sign_in(browser, "sam")
        step = browser.get("/anmelden")
        assert browser.post("/abmelden", data={"csrf": csrf_of(step)}).status_code == 303
        assert 'name="password"' in browser.get("/anmelden").text


def test_api_tokens_are_made_shown_once_and_revoked_in_the_page(hub: tuple) -> None:
    url, _ = hub
    with client(url) as browser:
        sign_in(browser, "vic")
        token = csrf_of(browser.get("/konto"))
        made = browser.post("/konto/schluessel", data={"label": "Notebook", "csrf": token})
        secret = html.unescape(re.search(r'<code class="secret">([^<]+)</code>',
                                         made.text).group(1))
        assert secret.startswith("hub_") and secret not in browser.get("/konto").text
        me = httpx.get(f"{url}/api/3/action/package_search",
                       params={"q": "Zuckerwatte", "include_private": "true"},
                       headers={"Authorization": secret}, timeout=30)
        assert me.json()["result"]["count"] == 2  # vic's internal and restricted records
        token_id = re.search(r'<td>Notebook</td>.*?action="/konto/schluessel/([0-9a-f]+)/'
                             r'widerrufen"', browser.get("/konto").text, re.S).group(1)
        assert browser.post(f"/konto/schluessel/{token_id}/widerrufen",
                            data={"csrf": token}).status_code == 303
        assert httpx.get(f"{url}/api/3/action/package_search",
                         headers={"Authorization": secret}, timeout=30).status_code == 403
    with client(url) as other:
        sign_in(other, "kat")
        assert other.post(f"/konto/schluessel/{token_id}/widerrufen", data={
            "csrf": csrf_of(other.get("/konto"))}).status_code == 404


def test_sign_in_is_throttled_after_failures(hub: tuple) -> None:
    url, _ = hub
    with client(url) as browser:
        for _ in range(5):
            assert sign_in(browser, "kat", "falsch falsch falsch").status_code == 401
        blocked = sign_in(browser, "kat")  # the right password, too late
        assert blocked.status_code == 429 and "Zu viele Versuche" in blocked.text
        assert COOKIE not in blocked.cookies
        assert sign_in(browser, "vic").status_code == 303  # another account is not blocked


def test_a_signed_in_viewer_sees_internal_records_on_the_portal(hub: tuple) -> None:
    url, _ = hub
    with client(url) as anonymous, client(url) as browser:
        sign_in(browser, "vic")
        for path in ("/datasets?q=Zuckerwatte", "/organizations/sozialamt"):
            assert "zuckerwatte-intern" not in anonymous.get(path).text
            assert 'href="/datasets/zuckerwatte-intern"' in browser.get(path).text, path
        assert anonymous.get("/datasets/zuckerwatte-intern").status_code == 404
        page = browser.get("/datasets/zuckerwatte-intern")
        assert page.status_code == 200 and "Zuckerwatte Verkaufsstände" in page.text
        assert browser.get("/datasets/zuckerwatte-kataster").status_code == 404  # another's


def test_a_role_that_must_use_a_second_factor_sets_it_up_first(hub: tuple) -> None:
    _, accounts = hub
    accounts.add_user("pia", "sozialamt", "publisher")
    accounts.set_password("pia", PASSWORD)
    root = accounts.store.root.parent
    with serving(root, HUB_TOTP_ROLES="publisher") as strict, client(strict) as browser:
        first = sign_in(browser, "pia")
        assert first.headers["location"] == "/konto"
        halfway = browser.cookies[COOKIE]
        page = browser.get("/konto")
        assert "Ihre Rolle verlangt einen zweiten Faktor" in page.text
        assert "/konto/schluessel" not in page.text  # nothing else until it is set up
        token = csrf_of(page)
        assert browser.post("/konto/schluessel", data={"label": "x", "csrf": token}
                            ).headers["location"] == "/anmelden"
        hidden = httpx.get(f"{strict}/api/3/action/package_search",
                           params={"q": "Zuckerwatte", "include_private": "true"},
                           cookies={COOKIE: halfway}, timeout=30)
        assert hidden.json()["result"]["count"] == 0  # not signed in yet
        browser.post("/konto/zweiter-faktor", data={"csrf": token})
        secret = re.search(r"<code>([A-Z2-7]{32})</code>", browser.get("/konto").text).group(1)
        done = browser.post("/konto/zweiter-faktor/bestaetigen",
                            data={"csrf": token, "code": pyotp.TOTP(secret).now()})
        assert done.status_code == 200 and done.cookies[COOKIE] != halfway
        assert Sessions(accounts).get(halfway) is None
        assert Sessions(accounts).get(done.cookies[COOKIE]).signed_in


def test_the_workspace_lists_what_the_user_may_edit_and_needs_sign_in(hub: tuple) -> None:
    url, accounts = hub
    for name, role in (("edda", "editor"), ("vera", "viewer")):  # fresh: no TOTP, no throttle
        accounts.add_user(name, "sozialamt", role)
        accounts.set_password(name, PASSWORD)
    with client(url) as anonymous, client(url) as sam, client(url) as vic:
        first = anonymous.get("/arbeitsbereich")
        assert first.status_code == 303 and first.headers["location"] == "/anmelden"
        for browser, name in ((sam, "edda"), (vic, "vera")):
            assert sign_in(browser, name).status_code == 303
        own = sam.get("/arbeitsbereich")
        assert own.status_code == 200 and own.headers["cache-control"] == "no-store"
        assert 'href="/arbeitsbereich/datensaetze/zuckerwatte-intern"' in own.text  # own org
        assert "zuckerwatte-kataster" not in own.text  # another's, though sam may not see it
        assert "Stadtplan" not in own.text  # public, but another organisation's
        # a viewer edits nothing, though it sees its organisation's internal records
        assert "zuckerwatte-intern" not in vic.get("/arbeitsbereich").text
        assert 'href="/arbeitsbereich"' in sam.get("/konto").text  # the account page's nav
