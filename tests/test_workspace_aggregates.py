"""The admins' page of public aggregates (/arbeitsbereich/aggregate) on a real `hub serve` and
`hub worker` over a copy of the demo district, with a second public aggregate of the internal
broadband cells (`breitband-summe`) that the cells' owner does not allow: the page lists both
derived datasets with their inputs and who allowed what; an admin's allowance (the same core
as `hub derived allow`, audited) queues the derived run and the aggregate becomes public (its
download, the CKAN API); revoking refuses its next run; non-admins and forms without the CSRF
token get 403; the page is axe-clean at 1280 and 360 px (screenshots in
tests/browser/artifacts/workspace-aggregates-*.png)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium import Watched, looked_at
from conftest import HUB, hub_cli, hub_server, hub_worker
from test_workspace_daten import csrf_of

from hub import audit
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.store.versions import Store

PASSWORD = "Aggregate Test 2026"
USERS = {"ada": ("landkreis-elbe-elster", "admin"), "bea": ("breitbandkoordination", "editor")}
DERIVED = "breitband-summe"
PAGE = "/arbeitsbereich/aggregate"


@pytest.fixture(scope="module")
def site(demo_district: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("aggregate") / "demo"
    shutil.copytree(demo_district, root)
    for folder in ("catalog/datasets", "pipelines"):  # the same aggregate under a new name
        text = (root / folder / "breitband-gemeinden.yaml").read_text(encoding="utf-8")
        (root / folder / f"{DERIVED}.yaml").write_text(
            re.sub(r"^(name|dataset): breitband-gemeinden$", rf"\1: {DERIVED}", text,
                   flags=re.M), encoding="utf-8")
        if folder == "catalog/datasets":  # (the pipelines load only once it is allowed)
            hub_cli(root, "catalog", "load")
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for name, (org, role) in USERS.items():
        accounts.add_user(name, org, role)
        accounts.set_password(name, PASSWORD)
    with hub_server(root) as server, hub_worker(root):
        yield server.url, root


@contextlib.contextmanager
def signed_in(url: str, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as browser:
        token = csrf_of(browser.get("/anmelden").text)
        assert browser.post("/anmelden", data={"name": user, "password": PASSWORD,
                                               "csrf": token}).status_code == 303
        yield browser


def row_of(page: str, derived: str, source: str) -> str:
    """The table row of input `source` in the section of `derived`."""
    section = page[page.index(f"<small>({derived})</small>"):]
    section = section[:section.index("</table>")]
    found = re.search(rf'<th scope="row">{re.escape(source)}</th>(.*?)</tr>', section, re.S)
    assert found, section[:2000]
    return " ".join(found.group(1).split())


def public_rows(url: str) -> list[dict[str, str]] | None:
    """The aggregate's rows as anyone downloads them (None: not public)."""
    answer = httpx.get(f"{url}/downloads/{DERIVED}/latest.csv", timeout=60)
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text[:300]
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


def done(browser: httpx.Client, job: str) -> dict[str, Any]:
    for _ in range(1200):  # guards a hang only: the derived run takes a few seconds
        state = browser.get(f"/arbeitsbereich/auftraege/{job}.json").json()
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError("the derived run did not finish")


def test_admin_allows_the_aggregate_becomes_public_revoke_refuses_the_next_run(
        site: tuple[str, Path]) -> None:
    url, root = site
    assert public_rows(url) is None
    ckan = httpx.get(f"{url}/api/3/action/package_show", params={"id": DERIVED}).json()
    assert not ckan["success"] or not any(
        r.get("url", "").endswith(".csv") for r in ckan["result"].get("resources", []))
    with signed_in(url, "ada") as admin:
        page = admin.get(PAGE)
        assert page.status_code == 200
        text = page.text
        # the demo's aggregate: allowed by its owner; the new one: by no one yet
        assert "ja" in row_of(text, "breitband-gemeinden", "breitband")
        assert "vom Eigentümer (public_derivatives)" in row_of(text, "breitband-gemeinden",
                                                               "breitband")
        assert "nicht nötig (öffentlich)" in row_of(text, DERIVED, "gemeinden")
        assert "<strong>nein</strong>" in row_of(text, DERIVED, "breitband")
        token = csrf_of(text)

        missing = admin.post(PAGE, data={"action": "allow", "input": "breitband",
                                         "derived": DERIVED})
        assert missing.status_code == 403 and "<h1>Kein Zugriff</h1>" in missing.text
        unknown = admin.post(PAGE, data={"csrf": token, "action": "allow",
                                         "input": "gemeinden", "derived": "breitband"})
        assert unknown.status_code == 404  # not a derived dataset with that input

        allowed = admin.post(PAGE, data={"csrf": token, "action": "allow", "input": "breitband",
                                         "derived": DERIVED, "grund": "Kreistag 3/2026"})
        assert allowed.status_code == 303, allowed.text[:500]
        job = re.search(r"auftrag=([^&]+)", allowed.headers["location"]).group(1)
        assert done(admin, job)["state"] == "done"
        shown = admin.get(allowed.headers["location"]).text
        assert "Erlaubt." in shown
        row = row_of(shown, DERIVED, "breitband")
        assert "ja" in row and "von ada am" in row and "Kreistag 3/2026" in row
        assert "Widerrufen" in row
    rows = public_rows(url)
    assert rows and len(rows) == 33  # one row per municipality, for anyone
    ckan = httpx.get(f"{url}/api/3/action/package_show", params={"id": DERIVED}).json()
    assert ckan["success"] and ckan["result"]["private"] is False
    assert any(f"/downloads/{DERIVED}/" in r["url"] for r in ckan["result"]["resources"])
    listed = hub_cli(root, "derived", "list").stdout
    assert DERIVED in listed and "Kreistag 3/2026" in listed

    with signed_in(url, "bea") as editor:  # the owner's editor is no admin
        refused = editor.post(PAGE, data={"csrf": csrf_of(editor.get("/konto").text),
                                          "action": "revoke", "input": "breitband",
                                          "derived": DERIVED})
        assert refused.status_code == 403 and "nur Administratoren" in refused.text
        assert editor.get(PAGE).status_code == 403
    with signed_in(url, "ada") as admin:
        token = csrf_of(admin.get(PAGE).text)  # (the token is the session's)
        revoked = admin.post(PAGE, data={"csrf": token, "action": "revoke",
                                         "input": "breitband", "derived": DERIVED})
        assert revoked.status_code == 303
        shown = admin.get(revoked.headers["location"]).text
        assert "Widerrufen." in shown and "<strong>nein</strong>" in row_of(shown, DERIVED,
                                                                            "breitband")
        again = admin.post(PAGE, data={"csrf": token, "action": "revoke",
                                       "input": "breitband", "derived": DERIVED})
        assert again.status_code == 404
    assert DERIVED not in hub_cli(root, "derived", "list").stdout
    refused_run = subprocess.run(
        [sys.executable, "-c", HUB, "ingest", DERIVED, "--root", str(root), "--store",
         str(root / "store")], capture_output=True, text=True, timeout=300)
    assert refused_run.returncode == 1
    assert "does not allow it" in " ".join(refused_run.stdout.split() + refused_run.stderr.split())
    db = Store(load_settings(root, root / "store").store).db
    trail = audit.entries(db, audit.Filter(subject=f"breitband → {DERIVED}"))
    assert [(e.action, e.actor) for e in trail] == [("derived.revoke", "ada"),
                                                    ("derived.allow", "ada")]
    assert json.loads(trail[1].after) == {"reason": "Kreistag 3/2026"}


def test_the_page_is_axe_clean_on_desktop_and_phone(site: tuple[str, Path], browser: Any) -> None:
    url, _ = site
    watched = Watched(browser)
    try:
        page = watched.page
        page.goto(f"{url}/anmelden")
        page.fill("#name", "ada")
        page.fill("#password", PASSWORD)
        page.click("form.account-form button[type=submit]")
        page.wait_for_url(f"{url}/konto")
        page.goto(f"{url}{PAGE}")
        assert page.locator("h1").inner_text() == "Öffentliche Aggregate"
        problems: dict[str, list[str]] = {}
        looked_at(page, "workspace-aggregates", problems)
        assert problems == {}
        assert watched.errors == [] and watched.outside == []
    finally:
        watched.close()
