"""The audit trail, usage and quarterly report pages of the workspace on a real `hub serve`
(tests/ckan_project.py: admin ann, editors sam (sozialamt) and kat (kataster-vermessung),
viewer vic) with a real HTTP client: who sees which page and which counts, what the CLI and
the CKAN API recorded, the CSV exports, and usage counted by the server itself."""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium import ARTIFACTS, Watched, axe_problems
from ckan_project import build
from conftest import HubServer, hub_server

from hub import audit, usage
from hub.access import ADMIN as ADMIN_VIEW
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings

PASSWORD = "Korrekt Pferd Batterie"
YESTERDAY = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def utc_today() -> str:
    """Today in UTC, the day `usage.Tally` counts under (a run may pass midnight)."""
    return dt.datetime.now(dt.UTC).date().isoformat()
# seeded counts: an internal dataset of sozialamt, a restricted one (umweltamt's, seen by
# sozialamt), a public one of kataster-vermessung
SEEDED = {("zuckerwatte-intern", "view"): 7, ("zuckerwatte-intern", "download"): 3,
          ("zuckerwatte-sozial", "api"): 11, ("stadtplan-finsterwalde", "tile"): 40,
          ("stadtplan-finsterwalde", "view"): 5}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("ws-audit")
    tokens = build(root)
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for user in ("ann", "sam", "kat", "vic"):
        accounts.set_password(user, PASSWORD)
    db = catalog.store.db
    usage.save(db, collections.Counter({(YESTERDAY, name, kind): n
                                        for (name, kind), n in SEEDED.items()}))
    with hub_server(root) as server:
        yield {"root": root, "url": server.url, "tokens": tokens, "db": db,
               "catalog": catalog}


@contextlib.contextmanager
def signed_in(url: str, name: str | None) -> Iterator[httpx.Client]:
    """A browser signed in as `name` (None: anonymous)."""
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as client:
        if name is not None:
            form = client.get("/anmelden")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf, form.text[:300]
            done = client.post("/anmelden", data={"name": name, "password": PASSWORD,
                                                  "csrf": csrf.group(1)})
            assert done.status_code == 303, done.text[:300]
        yield client


PAGES = ("/arbeitsbereich/protokoll", "/arbeitsbereich/protokoll.csv",
         "/arbeitsbereich/nutzung", "/arbeitsbereich/nutzung.csv",
         "/arbeitsbereich/bericht", "/arbeitsbereich/bericht.csv")


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_callers_are_sent_to_sign_in(site: dict, path: str) -> None:
    with signed_in(site["url"], None) as client:
        answer = client.get(path)
    assert answer.status_code == 303 and answer.headers["location"] == "/anmelden"


@pytest.mark.parametrize(("user", "allowed"), [
    ("ann", set(PAGES)),
    ("sam", {"/arbeitsbereich/nutzung", "/arbeitsbereich/nutzung.csv"}),
    ("kat", {"/arbeitsbereich/nutzung", "/arbeitsbereich/nutzung.csv"}),
    ("vic", set()),
])
def test_who_sees_which_page(site: dict, user: str, allowed: set[str]) -> None:
    with signed_in(site["url"], user) as client:
        for path in PAGES:
            answer = client.get(path)
            if path in allowed:
                assert answer.status_code == 200, (user, path, answer.text[:300])
                assert answer.headers["cache-control"] == "no-store"
            else:
                assert answer.status_code == 403, (user, path)
                assert "Kein Zugriff" in answer.text
        nav = client.get("/arbeitsbereich").text
        assert ('href="/arbeitsbereich/protokoll"' in nav) == (user == "ann")
        assert ('href="/arbeitsbereich/nutzung"' in nav) == (user != "vic")


def usage_rows(page: str) -> dict[str, list[int]]:
    """dataset title -> the counts of the page's per-dataset table."""
    table = page.split('class="usage"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        title = re.search(r'<a href="[^"]*datensatz=[^"]*">([^<]+)</a>', row)
        if title:
            rows[title.group(1)] = [int(n.replace(".", "")) for n in
                                    re.findall(r'<td class="num">([\d.]+)</td>', row)]
    return rows


def test_each_sees_the_counts_of_the_own_organisation_only(site: dict) -> None:
    with signed_in(site["url"], "sam") as sam:
        page = sam.get("/arbeitsbereich/nutzung").text
        rows = usage_rows(page)
        # internal, sozialamt's: views, downloads, api, tiles, sum
        assert rows["Zuckerwatte Verkaufsstände (intern)"] == [7, 3, 0, 0, 10]
        assert "Stadtplan Finsterwalde" not in rows  # another organisation's
        assert "Zuckerwatte Hilfeempfänger" not in rows  # sees it, but it is umweltamt's
        assert '<svg viewBox="0 0 720.0 260.0" role="img"' in page
        assert "<title>" in page and "Werte als Tabelle" in page
        one = sam.get("/arbeitsbereich/nutzung", params={"datensatz": "zuckerwatte-intern"})
        assert one.status_code == 200 and f'datetime="{YESTERDAY}"' in one.text
        exported = sam.get("/arbeitsbereich/nutzung.csv",
                           params={"datensatz": "zuckerwatte-intern"})
        assert list(csv.reader(io.StringIO(exported.text))) == [
            ["dataset", "title", "day", "view", "download", "api", "tile"],
            ["zuckerwatte-intern", "Zuckerwatte Verkaufsstände (intern)", YESTERDAY,
             "7", "3", "0", "0"]]
    with signed_in(site["url"], "kat") as kat:
        page = kat.get("/arbeitsbereich/nutzung").text
        rows = usage_rows(page)
        assert rows["Stadtplan Finsterwalde"] == [5, 0, 0, 40, 45]
        assert "Zuckerwatte" not in page  # no title, no count of the hidden datasets
        for name in ("zuckerwatte-intern", "zuckerwatte-sozial", "gibt-es-nicht"):
            hidden = kat.get("/arbeitsbereich/nutzung", params={"datensatz": name})
            assert hidden.status_code == 404 and "Zuckerwatte" not in hidden.text
            assert kat.get("/arbeitsbereich/nutzung.csv",
                           params={"datensatz": name}).status_code == 404
        exported = kat.get("/arbeitsbereich/nutzung.csv").text
        assert "zuckerwatte" not in exported and "stadtplan-finsterwalde" in exported
    with signed_in(site["url"], "ann") as ann:
        rows = usage_rows(ann.get("/arbeitsbereich/nutzung").text)
        assert rows["Zuckerwatte Hilfeempfänger"] == [0, 0, 11, 0, 11]
        assert next(iter(rows)) == "Stadtplan Finsterwalde"  # the most used first
        bad = ann.get("/arbeitsbereich/nutzung", params={"von": "gestern"})
        assert bad.status_code == 400 and "JJJJ-MM-TT" in bad.text
        assert ann.get("/arbeitsbereich/nutzung", params={
            "von": "2020-01-01", "bis": "2026-01-01"}).status_code == 400


def test_the_trail_holds_what_the_cli_and_the_ckan_api_did(site: dict) -> None:
    import ckanapi

    sam = ckanapi.RemoteCKAN(site["url"], apikey=site["tokens"]["sam"])
    sam.action.package_patch(id="zuckerwatte-intern", title="Zuckerwatte (intern, neu)")
    sam.action.package_create(name="entwurf-sam", title="Ein Entwurf", owner_org="sozialamt",
                              notes="Noch nicht fertig.",
                              private=True, state="draft", license_id="dl-by-de/2.0")
    with signed_in(site["url"], "ann") as ann:
        added = ann.get("/arbeitsbereich/protokoll", params={"aktion": "user.add"}).text
        assert "4 Einträge" in added and added.count("<td>cli</td>") == 4
        patched = ann.get("/arbeitsbereich/protokoll",
                          params={"wer": "sam", "gegenstand": "zuckerwatte"}).text
        assert "record.update" in patched
        assert "Zuckerwatte Verkaufsstände (intern) → Zuckerwatte (intern, neu)" in patched
        draft = ann.get("/arbeitsbereich/protokoll", params={"gegenstand": "entwurf-sam"})
        assert "record.create" in draft.text  # a private draft is recorded too
        exported = ann.get("/arbeitsbereich/protokoll.csv", params={"wer": "sam"})
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(r["action"], r["subject"]) for r in rows] == [
            ("record.update", "zuckerwatte-intern"), ("record.create", "entwurf-sam")]
        everything = ann.get("/arbeitsbereich/protokoll.csv").text
        for secret in site["tokens"].values():
            assert secret not in everything and secret[4:] not in everything
        paged = ann.get("/arbeitsbereich/protokoll", params={"seite": "2"}).text
        assert 'rel="prev"' in paged
        assert ann.get("/arbeitsbereich/protokoll",
                       params={"von": "1.12.2026"}).status_code == 400
    found = audit.verify(site["db"])
    assert found.entries == audit.count(site["db"]) > 90


def test_the_quarterly_report(site: dict) -> None:
    today = utc_today()
    quarter = f"{today[:4]}-Q{(int(today[5:7]) - 1) // 3 + 1}"
    with signed_in(site["url"], "ann") as ann:
        page = ann.get("/arbeitsbereich/bericht")
        assert page.status_code == 200 and f"Quartalsbericht {quarter}" in page.text
        exported = ann.get("/arbeitsbereich/bericht.csv", params={"quartal": quarter})
        assert exported.headers["content-disposition"].endswith(f'bericht-{quarter}.csv"')
        rows = {(r["section"], r["key"]): int(r["value"])
                for r in csv.DictReader(io.StringIO(exported.text))}
        earlier = ann.get("/arbeitsbereich/bericht.csv", params={"quartal": "2001-Q1"})
        before = {(r["section"], r["key"]): int(r["value"])
                  for r in csv.DictReader(io.StringIO(earlier.text))}
        assert ann.get("/arbeitsbereich/bericht", params={"quartal": "2026-5"}
                       ).status_code == 400
    records = [r for r in (site["catalog"].get(n, ADMIN_VIEW, ("active", "draft"))
                           for n in site["catalog"].names()) if r is not None]
    assert rows[("datasets", "added")] == len(records)  # all registered this quarter
    assert rows[("access", "public")] == sum(1 for r in records if r.state == "active"
                                             and r.access == "public")
    assert rows[("datasets", "new_versions")] >= 1  # gemeinden
    assert rows[("theme_tile", "REGI")] == 40  # Stadtplan Finsterwalde's tiles, yesterday
    assert before[("datasets", "added")] == 0 and ("theme_tile", "REGI") in before


def test_the_server_counts_requests_and_saves_them_when_it_stops(site: dict,
                                                                 tmp_path: Path) -> None:
    """A second server on the same store: anonymous views of a public dataset page and the
    OGC items of held data are counted, a hidden dataset's refused page is not."""
    db = site["db"]
    names: dict[str, list[str]] = {"stadtplan-finsterwalde": [], "gemeinden": [],
                                   "zuckerwatte-intern": []}
    since = utc_today()  # counts are saved under the day they were made: maybe tomorrow
    before = usage.of(db, names, since, "9999-12-31")
    server = HubServer(site["root"], log=tmp_path / "serve.log")
    with server, httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(3):
            assert client.get("/datasets/stadtplan-finsterwalde").status_code == 200
        assert client.get("/ogc/collections/gemeinden/items",
                          params={"limit": 1}).status_code == 200
        assert client.get("/datasets/zuckerwatte-intern").status_code == 404
        server.stop()  # SIGTERM: the counts are saved on the way out
    assert server.process is not None and server.process.returncode == 0, server.output()
    after = usage.of(db, names, since, "9999-12-31")
    assert after["stadtplan-finsterwalde"].totals["view"] == before[
        "stadtplan-finsterwalde"].totals["view"] + 3, server.output()[-3000:]
    assert after["gemeinden"].totals["api"] == before["gemeinden"].totals["api"] + 1
    assert after["zuckerwatte-intern"].total == before["zuckerwatte-intern"].total


# -- in a real browser ----------------------------------------------------------------------------

BROWSER_PAGES = {"protocol": "/arbeitsbereich/protokoll",
                 "protocol-filtered": "/arbeitsbereich/protokoll?aktion=record.update",
                 "usage": "/arbeitsbereich/nutzung",
                 "usage-dataset": "/arbeitsbereich/nutzung?datensatz=stadtplan-finsterwalde",
                 "report": "/arbeitsbereich/bericht"}


def test_the_pages_in_a_browser_are_accessible(site: dict, browser: Any) -> None:
    """Signed in as the admin through the sign-in form: each page at 1280 and 360 px without
    console errors, requests leaving 127.0.0.1, serious or critical axe-core violations or
    horizontal scrolling on a phone; screenshots in tests/browser/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    for width in (1280, 360):
        watched = Watched(browser, width)
        try:
            page = watched.page
            page.goto(f"{site['url']}/anmelden")
            page.fill("#name", "ann")
            page.fill("#password", PASSWORD)
            page.locator("main form button[type=submit]").click()
            page.wait_for_url("**/konto")
            for kind, path in BROWSER_PAGES.items():
                response = page.goto(site["url"] + path)
                assert response.status == 200, (kind, response.status)
                if kind.startswith("usage"):
                    assert page.locator("figure.chart svg[role=img]").count() == 1
                    page.locator("details.chart-table summary").click()  # the table opens
                    assert page.locator("details.chart-table table").is_visible()
                if width == 1280 and (found := axe_problems(page)):
                    problems[kind] = found
                page.screenshot(path=str(ARTIFACTS / f"workspace-{kind}-{width}.png"),
                                full_page=True)
                page.screenshot(path=str(ARTIFACTS / f"workspace-{kind}-{width}-top.png"))
                assert page.evaluate(
                    "document.documentElement.scrollWidth <= window.innerWidth + 1"), (kind, width)
            page.emulate_media(media="print")  # the report prints without the site's chrome
            page.goto(site["url"] + "/arbeitsbereich/bericht")
            assert not page.locator("nav.workspace-nav").is_visible()
            assert page.locator("h1").is_visible()
            assert not watched.errors, watched.errors
            assert not watched.outside, watched.outside
        finally:
            watched.close()
    assert not problems, problems
