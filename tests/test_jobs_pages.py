"""The job pages on a real `hub serve`: /arbeitsbereich/auftraege/{id} (a job's progress,
its JSON twin, live in a real browser — no serious axe-core violation — and by reload
without JavaScript) and /arbeitsbereich/aufgaben (the organisation's to-do list). Only the
job's organisation and admins see a job; for everyone else it does not exist (404, like an
unknown id)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium import ARTIFACTS, axe_problems
from ckan_project import build
from conftest import serving
from playwright.sync_api import expect
from test_signin_pages import PASSWORD, client, sign_in

from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.db import Database
from hub.db.schema import todos
from hub.jobs import queue, submit
from hub.jobs.queue import stamp
from hub.web.session import COOKIE, Sessions


class Site:
    def __init__(self, url: str, db: Database, accounts: Accounts):
        self.url, self.db, self.accounts = url, db, accounts

    def job(self, organization: str, dataset: str = "pflege") -> str:
        return submit(self.db, "ingest", {"dataset": dataset}, by="sam",
                      organization=organization)

    def running(self, organization: str, progress: float, message: str) -> str:
        """A job claimed by a worker, at `progress` (older queued jobs stay queued)."""
        job_id = self.job(organization, dataset=f"lauf-{organization}-{progress}")
        older = []
        while (job := queue.claim(self.db, "w-test", lease=600)) is not None \
                and job.id != job_id:
            older.append(job)
        assert job is not None
        for other in older:
            queue.release(self.db, other, "w-test")
        queue.beat(self.db, job, "w-test", progress, message, lease=600)
        return job_id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root: Path = tmp_path_factory.mktemp("jobs-pages")
    build(root)
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for user in ("ann", "sam", "vic", "kat"):
        accounts.set_password(user, PASSWORD)
    with serving(root) as url:
        yield Site(url, catalog.store.db, accounts)


@contextlib.contextmanager
def signed_in(site: Site, user: str) -> Iterator[httpx.Client]:
    with client(site.url) as browser:
        assert sign_in(browser, user).status_code == 303
        yield browser


def test_the_jobs_organisation_and_admins_see_it_everyone_else_gets_404(site: Site) -> None:
    job_id = site.job("sozialamt")
    path = f"/arbeitsbereich/auftraege/{job_id}"
    for user in ("sam", "vic", "ann"):
        with signed_in(site, user) as browser:
            page = browser.get(path)
            assert page.status_code == 200 and "Daten einlesen: pflege" in page.text
            assert "wartet" in page.text and page.headers["cache-control"] == "no-store"
            twin = browser.get(path + ".json")
            assert twin.status_code == 200 and twin.json()["state"] == "queued"
            assert twin.json()["id"] == job_id and "claimed_by" not in twin.json()
    with signed_in(site, "kat") as browser:  # another organisation's editor
        other, unknown = browser.get(path), browser.get("/arbeitsbereich/auftraege/f00")
        assert other.status_code == unknown.status_code == 404
        assert job_id[:40] in other.text and "pflege" not in other.text
        assert other.text.replace(job_id[:40], "X") == unknown.text.replace("f00", "X")
        assert browser.get(path + ".json").status_code == 404
        assert browser.get(path + ".json").json() == {"detail": f"no job {job_id!r}"}
    with client(site.url) as anonymous:
        for asked in (path, "/arbeitsbereich/aufgaben"):
            answer = anonymous.get(asked)
            assert answer.status_code == 303 and answer.headers["location"] == "/anmelden"
        assert anonymous.get(path + ".json").status_code == 401  # the JSON twin: JSON


def test_a_running_job_reloads_without_javascript_and_an_ended_one_does_not(
        site: Site) -> None:
    job_id = site.running("sozialamt", 0.4, "Daten werden gelesen: pflege.csv (1.000 Zeilen)")
    path = f"/arbeitsbereich/auftraege/{job_id}"
    with signed_in(site, "sam") as browser:
        page = browser.get(path).text
        assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
        assert f'<a href="{path}">Aktualisieren</a>' in page
        assert 'value="0.4"' in page and re.search(r">40\s%<", page)  # \s: a no-break space
        assert "pflege.csv (1.000 Zeilen)" in page
        assert "<script>" not in page and '<script src="/static/jobs.js" defer>' in page
        job = queue.get(site.db, job_id)
        queue.fail(site.db, job, "w-test", "Quelle nicht erreichbar: Zeitüberschreitung")
        ended = browser.get(path).text
        assert "http-equiv" not in ended and "Aktualisieren" not in ended
        assert "fehlgeschlagen" in ended and "Quelle nicht erreichbar" in ended


def test_the_to_do_list_shows_the_organisations_items_only(site: Site) -> None:
    with site.db.write() as conn:
        conn.execute(todos.insert().values(
            organization="sozialamt", dataset="pflege-neu", kind="file_due", since=stamp(),
            detail="Pflegeeinrichtungen: neue Datei fällig (monthly)"))
        conn.execute(todos.insert().values(
            organization="kataster-vermessung", dataset="flurstuecke-neu", kind="file_due",
            since=stamp(), detail="Flurstücke: neue Datei fällig (annual)"))
    failed_id = site.running("sozialamt", 0.1, "")
    queue.fail(site.db, queue.get(site.db, failed_id), "w-test", "keine Datenzeilen")
    kataster_job = site.job("kataster-vermessung", dataset="kataster-lauf")
    with signed_in(site, "sam") as browser:
        page = browser.get("/arbeitsbereich/aufgaben")
        assert page.status_code == 200
        text = page.text
        assert "Neue Datei fällig" in text and "pflege-neu" in text
        assert "Lauf fehlgeschlagen" in text and f"/arbeitsbereich/auftraege/{failed_id}" in text
        assert "flurstuecke-neu" not in text and kataster_job not in text
        assert 'href="/arbeitsbereich/aufgaben" aria-current="page"' in text
    with signed_in(site, "ann") as browser:  # the admin sees every organisation's
        text = browser.get("/arbeitsbereich/aufgaben").text
        assert "pflege-neu" in text and "flurstuecke-neu" in text and kataster_job in text


def browser_signed_in(browser: Any, site: Site, width: int) -> Any:
    """A page of a browser signed in as sam (by a session made here: the sign-in form has
    its own tests, and its throttle counts every sign-in of this module)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.add_cookies([{"name": COOKIE, "value": Sessions(site.accounts).start("sam"),
                          "url": site.url}])
    return context.new_page()


def test_the_job_page_follows_the_progress_live_in_a_browser(site: Site, browser: Any) -> None:
    job_id = site.running("sozialamt", 0.2, "Quelle wird abgerufen")
    page = browser_signed_in(browser, site, 1280)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.goto(f"{site.url}/arbeitsbereich/auftraege/{job_id}")
    expect(page.locator("[data-job-message]")).to_have_text("Quelle wird abgerufen")
    job = queue.get(site.db, job_id)
    queue.beat(site.db, job, "w-test", 0.65, "Daten werden gelesen: pflege.csv (2.000 Zeilen)",
               lease=600)
    expect(page.locator("[data-job-message]")).to_have_text(
        "Daten werden gelesen: pflege.csv (2.000 Zeilen)")  # no reload: polled
    assert page.locator("progress").evaluate("bar => bar.value") == pytest.approx(0.65)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "job-running-1280.png"), full_page=True)
    assert axe_problems(page) == []
    queue.finish(site.db, job, "w-test", {"status": "committed", "version": 3,
                                          "rows_read": 2000, "rows_valid": 1990,
                                          "rows_quarantined": 10, "violations": []})
    expect(page.locator(".job-state")).to_have_text("fertig")  # reloaded when it ended
    assert "neue Version 3" in page.content()
    page.screenshot(path=str(ARTIFACTS / "job-done-1280.png"), full_page=True)
    assert axe_problems(page) == []
    assert errors == []
    narrow = browser_signed_in(browser, site, 360)
    narrow.goto(f"{site.url}/arbeitsbereich/auftraege/{job_id}")
    narrow.screenshot(path=str(ARTIFACTS / "job-done-360.png"), full_page=True)
    for width in (1280, 360):
        tasks = browser_signed_in(browser, site, width)
        tasks.goto(f"{site.url}/arbeitsbereich/aufgaben")
        tasks.screenshot(path=str(ARTIFACTS / f"tasks-{width}.png"), full_page=True)
        assert axe_problems(tasks) == []
