"""Server-side sessions (hub/web/session.py): only a hash stored, rotated, idle and absolute
expiry, ended at sign-out and when the user is disabled — on SQLite and a real PostgreSQL —
and, on a real `hub serve`, the session cookie as the one `viewer(request)` rule: a signed-in
viewer sees internal records through the CKAN API, an unsafe request needs the CSRF token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ckan_project import REPO, build, run_hub
from conftest import serving
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.catalog.vocab import Vocabularies
from hub.config import load_settings
from hub.db import Database
from hub.db.schema import sessions
from hub.store.versions import Store
from hub.web.session import (
    ABSOLUTE,
    COOKIE,
    IDLE,
    SECOND_FACTOR,
    SECOND_FACTOR_TIME,
    Sessions,
    set_cookie,
)

T0 = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Sessions:
    database = (Database.for_store(tmp_path / "store") if request.param == "sqlite"
                else Database(request.getfixturevalue("postgres").database()))
    accounts = Accounts(Store(tmp_path / "store", database=database),
                        Vocabularies(REPO / "catalog"))
    accounts.add_user("a.schmidt", "sozialamt", "viewer")
    return Sessions(accounts)


def test_only_a_hash_of_the_id_is_stored(store_sessions: Sessions) -> None:
    sid = store_sessions.start("a.schmidt", at=T0)
    assert len(sid) >= 43
    with store_sessions.db.connection() as db:
        stored = db.execute(sessions.select()).all()
    assert len(stored) == 1 and sid not in str(stored[0])
    found = store_sessions.get(sid, at=T0)
    assert found and found.user.name == "a.schmidt" and found.signed_in and len(found.csrf) > 40
    for wrong in (None, "", sid + "x", sid[:-1], "x" * 500):
        assert store_sessions.get(wrong, at=T0) is None


def test_a_new_session_replaces_the_one_before(store_sessions: Sessions) -> None:
    halfway = store_sessions.start("a.schmidt", SECOND_FACTOR, at=T0)
    assert not store_sessions.get(halfway, at=T0).signed_in
    full = store_sessions.start("a.schmidt", replacing=halfway, at=T0)
    assert full != halfway and store_sessions.get(halfway, at=T0) is None
    assert store_sessions.get(full, at=T0).signed_in


def test_sessions_expire_idle_and_absolutely(store_sessions: Sessions) -> None:
    sid = store_sessions.start("a.schmidt", at=T0)
    moment = T0
    while moment + IDLE / 2 < T0 + ABSOLUTE:  # kept alive by requests, up to the absolute end
        moment += IDLE / 2
        assert store_sessions.get(sid, at=moment) is not None, moment
    assert store_sessions.get(sid, at=T0 + ABSOLUTE) is None
    idle = store_sessions.start("a.schmidt", at=T0)
    assert store_sessions.get(idle, at=T0 + IDLE + dt.timedelta(seconds=1)) is None
    assert store_sessions.get(idle, at=T0) is None  # deleted, not only refused
    halfway = store_sessions.start("a.schmidt", SECOND_FACTOR, at=T0)
    assert store_sessions.get(halfway, at=T0 + SECOND_FACTOR_TIME) is None


def test_sign_out_and_disabling_end_sessions(store_sessions: Sessions) -> None:
    one, two = (store_sessions.start("a.schmidt", at=T0) for _ in range(2))
    store_sessions.end(one)
    assert store_sessions.get(one, at=T0) is None and store_sessions.get(two, at=T0)
    store_sessions.accounts.set_state("a.schmidt", "disabled")
    assert store_sessions.get(two, at=T0) is None
    store_sessions.accounts.set_state("a.schmidt", "active")
    assert store_sessions.get(two, at=T0) is None  # enabling does not bring it back


def test_the_cookie_is_httponly_lax_and_secure_over_tls() -> None:
    for scheme, secure in (("http", False), ("https", True)):
        request = Request({"type": "http", "scheme": scheme, "method": "GET", "path": "/",
                           "headers": [], "server": ("127.0.0.1", 80)})
        response = Response()
        set_cookie(request, response, "abc")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=abc;") and "HttpOnly" in cookie, cookie
        assert "SameSite=lax" in cookie and "Path=/" in cookie
        assert ("Secure" in cookie) == secure, cookie


# -- on a running hub --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Sessions]]:
    root = tmp_path_factory.mktemp("sessions")
    build(root)
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    with serving(root) as url:
        yield root, url, Sessions(Accounts(catalog.store, vocab))


def search(url: str, cookie: str | None = None) -> set[str]:
    cookies = {COOKIE: cookie} if cookie else {}
    answer = httpx.get(f"{url}/api/3/action/package_search",
                       params={"q": "Zuckerwatte", "rows": 100, "include_private": "true"},
                       cookies=cookies, timeout=30)
    assert answer.status_code == 200, answer.text
    return {p["name"] for p in answer.json()["result"]["results"]}


def test_a_signed_in_viewer_sees_internal_records_with_the_cookie(hub: tuple) -> None:
    root, url, store_sessions = hub
    public = search(url)
    assert "zuckerwatte-intern" not in public
    sid = store_sessions.start("vic")
    assert search(url, sid) == public | {"zuckerwatte-intern", "zuckerwatte-sozial"}
    assert search(url, store_sessions.start("vic", SECOND_FACTOR)) == public  # halfway
    assert search(url, "made-up") == public  # an unknown cookie is no one
    run_hub(root, "user", "disable", "vic")
    try:
        assert search(url, sid) == public  # at once
    finally:
        run_hub(root, "user", "enable", "vic")


def test_an_unsafe_request_of_a_session_needs_its_csrf_token(hub: tuple) -> None:
    _, url, store_sessions = hub
    sid = store_sessions.start("sam")
    csrf = store_sessions.get(sid).csrf
    action = f"{url}/api/3/action/package_patch"
    body = {"id": "zuckerwatte-intern", "notes": "Geändert im Browser."}
    for headers in ({}, {"X-CSRF-Token": "falsch"}, {"X-CSRF-Token": csrf[:-1]}):
        refused = httpx.post(action, json=body, cookies={COOKIE: sid}, headers=headers,
                             timeout=30)
        assert refused.status_code == 403, refused.text
        assert "CSRF" in refused.json()["error"]["message"]
    done = httpx.post(action, json=body, cookies={COOKIE: sid},
                      headers={"X-CSRF-Token": csrf}, timeout=30)
    assert done.status_code == 200 and done.json()["result"]["notes"] == body["notes"]
    other = store_sessions.get(store_sessions.start("sam")).csrf  # another session's token
    assert httpx.post(action, json=body, cookies={COOKIE: sid}, headers={"X-CSRF-Token": other},
                      timeout=30).status_code == 403
