"""The data manager's whole journey in one real browser session (Playwright, Debian's chromium)
on a fresh `hub serve` of the demo district, the second factor enforced for editors and
publishers (HUB_TOTP_ROLES); a `hub worker` starts beside it once the first run waits in the
queue, so the live view of a queued run is seen whatever the machine's speed:

an editor signs in with password, sets up TOTP (the code computed here with pyotp from the
secret the page shows), signs out and in again with password and a fresh code (the code of the
set-up, replayed, is refused); registers a dataset; uploads the demo XLSX of care locations with
a renamed column and two bad postcodes; sees the proposed mapping without the renamed column,
fixes it, saves and runs it (the page follows the run live); sees the quarantined rows in the
report and downloads them; uploads the corrected file and runs again; requests publication.
A publisher (TOTP too) approves it. The dataset is then found on the public portal, through
the CKAN API (ckanapi) and as OGC API items; `hub audit verify` passes and the audit trail
holds each step.

Every page visited: zero serious or critical axe-core violations, no console error, nothing
fetched from outside 127.0.0.1, no sideways scrolling at 360 px; screenshots at 1280 and 360 px
of each step in tests/browser/artifacts/journey-*.png.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ckanapi
import httpx
import pyotp
import pytest
from chromium import ARTIFACTS, Watched, looked_at
from conftest import demo_copy, hub_cli, hub_server, hub_worker
from test_workspace_daten import care_workbook

from hub import audit
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.store.versions import Store

PASSWORD = "Reise Durch Den Arbeitsbereich"
EDITOR, PUBLISHER = "erika", "peter"
NAME = "pflege-reise"
TITLE = "Pflegeangebote (Reise)"
STEP = 30  # seconds of a TOTP code


@pytest.fixture(scope="module")
def journey(demo_district: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, Path, Callable[[], None]]]:
    """The server's URL, the project's root, and what starts the worker (once)."""
    root = demo_copy(demo_district, tmp_path_factory.mktemp("journey") / "demo")
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for name, role in ((EDITOR, "editor"), (PUBLISHER, "publisher")):
        accounts.add_user(name, "sozialamt", role)
        accounts.set_password(name, PASSWORD)
    with hub_server(root, HUB_TOTP_ROLES="editor,publisher") as server, \
            contextlib.ExitStack() as worker:
        yield server.url, root, lambda: worker.enter_context(hub_worker(root))


class Walk:
    """One person's browser: every page they see is screenshot and checked."""

    def __init__(self, browser: Any, url: str, problems: dict[str, list[str]]):
        self.watched = Watched(browser)
        self.page = self.watched.page
        self.url = url
        self.problems = problems
        self.first_code = ""  # the code that set up the second factor

    def look(self, step: str) -> None:
        looked_at(self.page, f"journey-{step}", self.problems)

    def code(self, secret: str, ahead: int = 0) -> str:
        return pyotp.TOTP(secret).at(time.time() + ahead * STEP)

    def password(self, name: str) -> None:
        page = self.page
        page.goto(f"{self.url}/anmelden")
        page.fill("#name", name)
        page.fill("#password", PASSWORD)
        page.click("form.account-form button[type=submit]")

    def enrol(self, name: str, step: str) -> str:
        """First sign-in: the role demands a second factor, set up on the account page;
        returns the secret."""
        page = self.page
        self.password(name)
        page.wait_for_url(f"{self.url}/konto")
        assert "Ihre Rolle verlangt einen zweiten Faktor" in page.locator("main").inner_text()
        page.goto(f"{self.url}/arbeitsbereich")  # not signed in yet: back to the sign-in
        assert page.url == f"{self.url}/anmelden"
        page.goto(f"{self.url}/konto")
        page.get_by_role("button", name="Zweiten Faktor einrichten").click()
        assert page.locator(".qr svg").count() == 1
        self.look(f"{step}-totp")
        secret = page.locator(".qr figcaption code").inner_text()
        self.first_code = self.code(secret)
        page.get_by_label("Code aus der App").fill(self.first_code)
        page.get_by_role("button", name="Bestätigen").click()
        assert page.locator(".codes li").count() == 10  # the recovery codes, shown once
        self.look(f"{step}-recovery-codes")
        page.get_by_role("button", name="Abmelden").click()
        return secret

    def sign_in(self, name: str, secret: str, step: str) -> None:
        """Password, then the TOTP code: the one already used is refused, the next one
        accepted."""
        page = self.page
        self.password(name)
        page.wait_for_selector("#code")
        self.look(f"{step}-code")
        page.fill("#code", self.first_code)  # replayed
        page.click("form.account-form button[type=submit]")
        assert "fehlgeschlagen" in page.locator("[role=alert]").inner_text()
        self.watched.errors = [e for e in self.watched.errors if "status of 401" not in e]
        page.fill("#code", self.code(secret, ahead=1))
        page.click("form.account-form button[type=submit]")
        page.wait_for_url(f"{self.url}/konto")
        assert page.locator("header a.account").inner_text() == name

    def clean(self) -> None:
        assert not self.watched.errors, self.watched.errors
        assert not self.watched.outside, self.watched.outside
        self.watched.close()


def test_the_whole_journey_from_sign_in_to_the_published_dataset(
        journey: tuple[str, Path, Callable[[], None]], browser: Any, demo_district: Path,
        tmp_path: Path) -> None:
    url, root, start_worker = journey
    problems: dict[str, list[str]] = {}
    here = f"{url}/arbeitsbereich/datensaetze/{NAME}"
    wrong = tmp_path / "wrong" / "Pflege Angebote.xlsx"
    right = tmp_path / "right" / "Pflege Angebote.xlsx"
    for path, broken in ((wrong, 2), (right, 0)):
        path.parent.mkdir()
        path.write_bytes(care_workbook(demo_district, {"Name": "Bezeichnung"},
                                       broken_plz=broken))

    editor = Walk(browser, url, problems)
    page = editor.page
    secret = editor.enrol(EDITOR, "editor")
    editor.sign_in(EDITOR, secret, "editor")

    # register the dataset
    page.goto(f"{url}/arbeitsbereich")
    editor.look("dashboard")
    page.goto(f"{url}/arbeitsbereich/neu")
    editor.look("register")
    page.fill("#title", TITLE)
    page.fill("#name", NAME)
    page.fill("#description", "Ambulante und stationäre Pflegeangebote des Landkreises.")
    page.fill("#contact_name", "Sozialamt, Team Pflege")
    page.fill("#contact_email", "pflege@example.org")
    page.select_option("#frequency", "QUARTERLY")
    page.check("input[name=theme_SOCI]")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{here}?erledigt=registered")
    editor.look("registered")

    # upload the workbook with the renamed column: the proposed mapping lacks it
    page.click("text=Daten einbringen oder aktualisieren")
    page.set_input_files("#dateien", str(wrong))
    page.click(".intake-upload button[type=submit]")
    page.wait_for_selector("#intake-map .leaflet-interactive")  # the map of the first places
    assert "155 Zeilen, 19 Spalten" in page.locator("main").inner_text()
    assert page.locator("#map-name").input_value() == ""  # the renamed column: no proposal
    assert page.locator("#map-plz").input_value() == "PLZ"
    assert page.locator("text=Pflichtfeld ohne Spalte.").count() == 1
    editor.look("proposed-mapping")
    page.select_option("#map-name", "Bezeichnung")  # fixed
    page.click(".intake-mapping button[type=submit]")
    page.wait_for_selector("text=Gespeichert ist Fassung 1")

    # run it: the page follows the run live, then links the report
    polled: list[str] = []
    page.on("response", lambda r: polled.append(r.url) if "/daten/lauf.json" in r.url else None)
    page.click("#pipeline ~ form button")
    page.wait_for_url(f"{here}/daten#lauf")
    assert page.locator("#intake-progress").count() == 1  # queued: the live view
    assert "wartet auf einen freien Arbeitsprozess" in page.locator("#intake-run").inner_text()
    editor.look("run-queued")
    start_worker()
    page.wait_for_selector("text=Zum Prüfbericht", timeout=120_000)  # guards a hang only
    assert polled  # the page followed the run (its JSON twin) until it ended, then reloaded
    assert "Version 1" in page.locator("#lauf ~ p").first.inner_text()
    editor.look("run-done")
    page.click("text=Zum Prüfbericht")
    page.wait_for_selector("text=Version 1 wurde angelegt")
    report = page.locator("main").inner_text()
    assert "PLZ" in report and "XY" in report
    editor.look("report-quarantine")
    with page.expect_download() as download:
        page.click("text=Zeilen in Quarantäne herunterladen (CSV)")
    rows = list(csv.DictReader(io.StringIO(
        Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert [(r["_zeile"], r["plz"]) for r in rows] == [("5", "XY"), ("6", "XY")]

    # quarantined rows block publication: the corrected file, the same pipeline, run again
    page.goto(f"{here}/daten")
    page.set_input_files("#dateien", str(right))
    page.click(".intake-upload button[type=submit]")
    page.wait_for_selector("text=Gespeichert ist Fassung 1")
    page.click("#pipeline ~ form button")
    page.wait_for_selector("text=Zum Prüfbericht", timeout=120_000)  # guards a hang only
    page.click("text=Zum Prüfbericht")
    page.wait_for_selector("text=Version 2 wurde angelegt")
    assert page.locator("text=Zeilen in Quarantäne herunterladen (CSV)").count() == 0
    editor.look("report-clean")

    # request publication
    page.goto(here)
    page.click("text=Öffentliche Freigabe beantragen")
    page.wait_for_url(f"{here}?erledigt=request")
    assert "Beantragt" in page.locator("main").inner_text()
    editor.look("requested")
    editor.clean()

    # the publisher (TOTP too) approves
    publisher = Walk(browser, url, problems)
    page = publisher.page
    secret = publisher.enrol(PUBLISHER, "publisher")
    publisher.sign_in(PUBLISHER, secret, "publisher")
    page.goto(here)
    publisher.look("to-approve")
    page.click("text=Öffentlich freigeben")
    page.wait_for_url(f"{here}?erledigt=publish")
    publisher.look("public")
    publisher.clean()

    # found by everyone: the portal, the CKAN API, the OGC API
    visitor = Walk(browser, url, problems)
    page = visitor.page
    page.goto(f"{url}/datasets?q=Pflegeangebote")
    page.click(f"text={TITLE}")
    page.wait_for_url(f"{url}/datasets/{NAME}")
    assert TITLE in page.locator("h1").inner_text()
    visitor.look("portal")
    visitor.clean()
    shown = ckanapi.RemoteCKAN(url).action.package_show(id=NAME)
    assert shown["title"] == TITLE and not shown["private"]
    assert shown["organization"]["name"] == "sozialamt"
    items = httpx.get(f"{url}/ogc/collections/{NAME}/items",
                      params={"limit": 1000, "f": "json"}).json()
    assert items["numberMatched"] == 155
    assert {f["properties"]["name"] for f in items["features"]} >= {
        r["Bezeichnung"] for r in _sheet_rows(right)[:5]}

    assert problems == {}, problems
    print(f"\nscreenshots: {ARTIFACTS}/journey-*.png")

    # the audit trail: intact, and each step of the journey in it
    verified = hub_cli(root, "audit", "verify")
    assert "intact" in verified.stdout
    store = Store(load_settings(root, root / "store").store)
    steps = [(e.actor, e.action, e.subject) for e in reversed(audit.entries(store.db, limit=None))]
    journey_steps = [(EDITOR, "user.second_factor", EDITOR),
                     (EDITOR, "record.create", NAME),
                     (EDITOR, "pipeline.save", NAME),
                     (EDITOR, "version.commit", NAME), (EDITOR, "job.run", NAME),
                     (EDITOR, "version.commit", NAME), (EDITOR, "job.run", NAME),
                     (EDITOR, "publication.request", NAME),
                     (PUBLISHER, "user.second_factor", PUBLISHER),
                     (PUBLISHER, "publication.approve", NAME)]
    assert [s for s in steps if s in journey_steps] == journey_steps, steps[-20:]
    approved = audit.entries(store.db, audit.Filter(action="publication.approve",
                                                    subject=NAME))[0]
    assert json.loads(approved.after)["access"] == "public"


def _sheet_rows(workbook: Path) -> list[dict[str, Any]]:
    """The care workbook's rows (header on row 4) as dicts."""
    import openpyxl

    sheet = openpyxl.load_workbook(workbook, read_only=True)["Einrichtungen"]
    rows = list(sheet.iter_rows(min_row=4, values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
