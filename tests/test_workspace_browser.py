"""The workspace's register-and-publish journey in a real browser (Playwright, Debian's
chromium) on the demo district: an editor registers a dataset (a mistake first, shown next to
its field), requests publication, a publisher approves it, and it is found on the portal and
through the CKAN API; the dashboard, the manage page and the admins' users page have zero
serious or critical axe-core violations. Screenshots at 1280 and 360 px of each page go to
tests/browser/artifacts/workspace-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium import ARTIFACTS, WIDTHS, Watched, looked_at
from conftest import demo_copy, hub_cli, hub_server

from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings

PASSWORD = "Arbeitsbereich Test 2026"
USERS = {"emma": ("sozialamt", "editor"), "paul": ("sozialamt", "publisher"),
         "ada": ("landkreis-elbe-elster", "admin")}


@pytest.fixture(scope="module")
def served(demo_district: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Path]]:
    root = demo_copy(demo_district, tmp_path_factory.mktemp("workspace") / "demo")
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for name, (org, role) in USERS.items():
        accounts.add_user(name, org, role)
        accounts.set_password(name, PASSWORD)
    with hub_server(root) as server:
        yield server.url, root


@pytest.fixture(scope="module")
def site(served: tuple[str, Path]) -> str:
    return served[0]


def sign_in(watched: Watched, url: str, name: str) -> None:
    page = watched.page
    page.goto(f"{url}/anmelden")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("form.account-form button[type=submit]")
    page.wait_for_url(f"{url}/konto")


def test_register_request_approve_and_find_it(site: str, browser: Any) -> None:
    problems: dict[str, list[str]] = {}
    name = "spielplaetze-demo"
    for width in WIDTHS:
        if width != WIDTHS[0]:
            name = f"spielplaetze-demo-{width}"
        editor = Watched(browser, width)
        try:
            sign_in(editor, site, "emma")
            page = editor.page
            page.goto(f"{site}/arbeitsbereich/neu")
            looked_at(editor.page, "workspace-new", problems, (width,))
            page.fill("#title", "Spielplätze (Demo)")
            page.fill("#name", "Spielplätze!")  # a mistake first
            page.fill("#description", "Alle öffentlichen Spielplätze mit Ausstattung.")
            page.fill("#contact_name", "Sozialamt, Team Daten")
            page.fill("#contact_email", "daten@example.org")
            page.select_option("#frequency", "ANNUAL")
            page.check("input[name=theme_SOCI]")
            page.check("#metadata_only")
            page.fill("#access_note", "Beim Sozialamt erfragen")
            page.click("form button[type=submit]")
            error = page.locator("#name-error")
            assert "Kleinbuchstaben" in error.inner_text()
            editor.errors = [e for e in editor.errors if "status of 400" not in e]  # (that page)
            assert page.locator("#title").input_value() == "Spielplätze (Demo)"  # kept
            looked_at(editor.page, "workspace-new-error", problems, (width,))
            page.fill("#name", name)
            page.click("form button[type=submit]")
            page.wait_for_url(f"{site}/arbeitsbereich/datensaetze/{name}?erledigt=registered")
            looked_at(editor.page, "workspace-dataset-draft", problems, (width,))
            page.click("text=Öffentliche Freigabe beantragen")
            page.wait_for_url(f"{site}/arbeitsbereich/datensaetze/{name}?erledigt=request")
            assert "Beantragt" in page.locator("main").inner_text()
            page.goto(f"{site}/arbeitsbereich")
            assert page.locator(f"a[href='/arbeitsbereich/datensaetze/{name}']").count() == 1
            looked_at(editor.page, "workspace-dashboard", problems, (width,))
            assert not editor.errors and not editor.outside
        finally:
            editor.close()
        publisher = Watched(browser, width)
        try:
            sign_in(publisher, site, "paul")
            page = publisher.page
            page.goto(f"{site}/arbeitsbereich/datensaetze/{name}")
            page.click("text=Öffentlich freigeben")
            page.wait_for_url(f"{site}/arbeitsbereich/datensaetze/{name}?erledigt=publish")
            looked_at(publisher.page, "workspace-dataset-public", problems, (width,))
            assert not publisher.errors and not publisher.outside
        finally:
            publisher.close()
        visitor = Watched(browser, width)
        try:
            response = visitor.page.goto(f"{site}/datasets/{name}")
            assert response.status == 200
            assert "Spielplätze (Demo)" in visitor.page.locator("h1").inner_text()
        finally:
            visitor.close()
        shown = httpx.get(f"{site}/api/3/action/package_show", params={"id": name}).json()
        assert shown["success"] and shown["result"]["title"] == "Spielplätze (Demo)"
        admin = Watched(browser, width)
        try:
            sign_in(admin, site, "ada")
            admin.page.goto(f"{site}/arbeitsbereich/benutzer")
            looked_at(admin.page, "workspace-users", problems, (width,))
        finally:
            admin.close()
    print(f"\nscreenshots: {ARTIFACTS}")
    assert not problems, problems


def test_place_pages_answer_for_the_signed_in_viewer(served: tuple[str, Path]) -> None:
    """Withdrawn, the care data (`pflege`) is its owner's only: an anonymous visitor's place
    page answers without it, a signed-in editor of the owner sees it there too."""
    url, root = served
    page = "/orte/herzberg-elster"
    care = "/ogc/collections/pflege"
    with httpx.Client(base_url=url) as anonymous:
        assert care in anonymous.get(page).text
    hub_cli(root, "catalog", "withdraw", "pflege")
    try:
        with httpx.Client(base_url=url) as anonymous:
            answer = anonymous.get(page)
            assert answer.status_code == 200 and care not in answer.text
        with httpx.Client(base_url=url) as staff:
            form = staff.get("/anmelden")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
            assert staff.post("/anmelden", data={"name": "emma", "password": PASSWORD,
                                                 "csrf": token}).status_code == 303
            assert care in staff.get(page).text
    finally:
        hub_cli(root, "catalog", "publish", "pflege", "--to", "public")
    with httpx.Client(base_url=url) as anonymous:
        assert care in anonymous.get(page).text
