"""Every workspace route answers a request it cannot serve as the workspace's own page, on a
real `hub serve`: anonymous → the sign-in page (a JSON client: 401), a role that may not → 403,
unknown (and hidden) → 404 — in the page's language (German, Lower Sorbian, English), while
clients that ask for JSON (`Accept: application/json`) get JSON with the same status. A
dataset the user may not see looks exactly like one that does not exist."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ckan_project import build
from conftest import serving
from test_workspace_daten import PASSWORD, csrf_of

from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings

JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
OWN = "zuckerwatte-intern"  # sozialamt's, internal: kat (kataster) sees it but may not edit
HIDDEN = "zuckerwatte-sozial"  # restricted to sozialamt: kat may not see it
UNKNOWN = "gibt-es-nicht"
DATA = ["/daten", "/pruefbericht", "/pruefbericht/quarantaene.csv", "/pruefbericht/probleme.csv",
        "/pipeline.yaml", "/daten/lauf.json"]
# every workspace page a signed-in user may ask for (GET), {name} a dataset
PAGES = ["", "/neu", "/benutzer", "/aufgaben", "/protokoll", "/protokoll.csv", "/nutzung",
         "/nutzung.csv", "/bericht", "/bericht.csv", "/aggregate", "/auftraege/x1",
         "/datensaetze/{name}", *(f"/datensaetze/{{name}}{p}" for p in DATA), "/gibt/es/nicht"]
POSTS = ["/neu", "/benutzer", "/benutzer/sam", "/aggregate", "/datensaetze/{name}",
         "/datensaetze/{name}/veroeffentlichung", "/datensaetze/{name}/daten/dateien",
         "/datensaetze/{name}/daten/pipeline", "/datensaetze/{name}/daten/lauf"]
HEADINGS = {"de": {403: "Kein Zugriff", 404: "Nicht gefunden"},
            "en": {403: "No access", 404: "Not found"}}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("fehler")
    build(root)
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for user in ("ann", "sam", "kat", "vic"):
        accounts.set_password(user, PASSWORD)
    with serving(root) as found:
        yield found


@contextlib.contextmanager
def signed_in(url: str, user: str, lang: str = "de") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False,
                      headers=BROWSER) as browser:
        token = csrf_of(browser.get("/anmelden").text)
        assert browser.post("/anmelden", data={"name": user, "password": PASSWORD,
                                               "csrf": token}).status_code == 303
        browser.get("/", params={"lang": lang})  # remembered in the language cookie
        yield browser


def heading(answer: httpx.Response) -> str:
    found = re.search(r"<h1>([^<]*)</h1>", answer.text)
    return found.group(1) if found else ""


def test_anonymous_requests_go_to_the_sign_in_page_or_get_401(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as anonymous:
        for path in PAGES:
            path = "/arbeitsbereich" + path.format(name=OWN)
            page = anonymous.get(path, headers=BROWSER)
            if path.endswith(".json"):  # a JSON twin answers JSON to a browser too
                assert page.status_code == 401, path
                continue
            assert page.status_code == 303 and page.headers["location"] == "/anmelden", path
            api = anonymous.get(path, headers=JSON)
            assert api.status_code == 401, path
            assert api.json()["detail"].startswith("sign in first")
        for path in POSTS:
            path = "/arbeitsbereich" + path.format(name=OWN)
            sent = anonymous.post(path, data={"csrf": "x"}, headers=BROWSER)
            assert sent.status_code == 303 and sent.headers["location"] == "/anmelden", path


@pytest.mark.parametrize("lang", ["de", "dsb", "en"])
def test_a_role_that_may_not_gets_the_403_page_in_its_language(url: str, lang: str) -> None:
    """kat (editor of another organisation) on sozialamt's dataset, vic (a viewer) on the
    admin's and editors' pages: the workspace's page, its navigation, in the chosen language;
    the same requests asking for JSON get JSON."""
    cases = {"kat": [f"/datensaetze/{OWN}{p}" for p in DATA if not p.endswith(".json")],
             "vic": ["/neu", "/benutzer", "/protokoll", "/protokoll.csv", "/nutzung",
                     "/bericht", "/aggregate"]}
    headings = set()
    for user, paths in cases.items():
        with signed_in(url, user, lang) as browser:
            for path in paths:
                page = browser.get("/arbeitsbereich" + path)
                assert page.status_code == 403, (user, path, page.text[:300])
                assert page.headers["content-type"].startswith("text/html"), path
                assert 'class="workspace-nav"' in page.text and f'lang="{lang}"' in page.text
                assert "sozialamt" not in page.text.lower() or user == "vic"
                headings.add(heading(page))
                api = browser.get("/arbeitsbereich" + path, headers=JSON)
                assert api.status_code == 403 and api.headers["content-type"] == "application/json"
                assert api.json()["detail"]
    assert len(headings) == 1
    if lang in HEADINGS:
        assert headings == {HEADINGS[lang][403]}


@pytest.mark.parametrize("lang", ["de", "en"])
def test_unknown_and_hidden_look_the_same_and_unknown_pages_are_404(url: str,
                                                                    lang: str) -> None:
    with signed_in(url, "kat", lang) as browser:
        for path in ["/datensaetze/{name}", *(f"/datensaetze/{{name}}{p}" for p in DATA)]:
            hidden = browser.get("/arbeitsbereich" + path.format(name=HIDDEN))
            unknown = browser.get("/arbeitsbereich" + path.format(name=UNKNOWN))
            assert hidden.status_code == unknown.status_code == 404, path
            assert hidden.headers["content-type"] == unknown.headers["content-type"]
            assert hidden.text.replace(HIDDEN, "X") == unknown.text.replace(UNKNOWN, "X"), path
            assert "Zuckerwatte" not in hidden.text
            if not path.endswith(".json"):
                assert heading(hidden) == HEADINGS[lang][404]
            as_json = [browser.get("/arbeitsbereich" + path.format(name=n), headers=JSON)
                       for n in (HIDDEN, UNKNOWN)]
            assert [a.status_code for a in as_json] == [404, 404]
            assert as_json[0].json() == as_json[1].json()
        for path in ("/gibt/es/nicht", "/auftraege/x1", "/datensaetze"):
            page = browser.get("/arbeitsbereich" + path)
            assert page.status_code == 404, path
            assert heading(page) == HEADINGS[lang][404] and 'class="workspace-nav"' in page.text
            assert browser.get("/arbeitsbereich" + path, headers=JSON).status_code == 404


def test_posts_without_csrf_or_right_are_403_pages_and_json_for_json_clients(url: str) -> None:
    with signed_in(url, "kat") as browser:
        token = csrf_of(browser.get("/konto").text)
        for path in POSTS:
            path = "/arbeitsbereich" + path.format(name=OWN)
            missing = browser.post(path, data={"action": "allow"})
            assert missing.status_code == 403 and heading(missing) == "Kein Zugriff", path
            api = browser.post(path, data={"csrf": "falsch"}, headers=JSON)
            assert api.status_code == 403 and api.headers["content-type"] == "application/json"
        for path in ("/benutzer", "/aggregate"):  # admins only, with a valid token too
            refused = browser.post("/arbeitsbereich" + path, data={"csrf": token})
            assert refused.status_code == 403 and heading(refused) == "Kein Zugriff"
