"""The validation report says each problem in the page's language (hub.web.workspace.problems):
every code a run can report (hub.problem_codes) has its German sentence, translated into Lower
Sorbian and English; the producers in hub.schema and hub.ingest emit only registered codes; a
bad file uploaded, mapped and run through the workspace shows German sentences with the value,
row and column (English with ?lang=en), the problems' CSV has German headers and messages and
no formulas, the JSON and CLI keep the English message; old runs stored without codes show
their English message; the page read in chromium at 1280 and 360 px (screenshots in
tests/browser/artifacts/workspace-pruefbericht-*.png)."""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from chromium import ARTIFACTS, Watched, looked_at
from ckan_project import build, run_hub
from conftest import hub_worker, serving
from test_workspace_daten import PASSWORD, csrf_of, finished, mapping_form

from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.intake import runs
from hub.intake.runs import Run
from hub.jobs import Job
from hub.problem_codes import CODES, FAILURES, rule_of
from hub.store.versions import QUARANTINE, Store
from hub.web.portal.i18n import LANGUAGES, language
from hub.web.workspace.problems import (
    ADDED,
    FAILURE_TEXTS,
    TEXTS,
    _variant,
    csv_of,
    failure,
    message,
    row_problems,
)

REPO = Path(__file__).resolve().parents[1]
PRODUCERS = [REPO / "hub" / "schema.py", *sorted((REPO / "hub" / "ingest").glob("*.py")),
             *sorted((REPO / "hub" / "intake").glob("*.py"))]
# a plausible value for each parameter name of hub.problem_codes.CODES
SAMPLE = {"allowed": ["Tagespflege", "Hospiz", "Kurzzeitpflege"], "limit": 1000,
          "pattern": "[0-9]{5}", "crs": "EPSG:25833", "example": "01/05/2019",
          "column": "Hochwert", "decimal": ",", "group": ".", "first_row": 2,
          "first_file": "alt.csv", "file": "pflege.csv", "field": "name",
          "files": ["a.csv", "b.csv"], "rows": 1200, "count": 3, "read": 1200,
          "quarantined": 1100, "skipped": 100, "size": 3_328_599_654, "formats": ["CSV", "XLSX"],
          "format": "gpkg", "options": ["blatt"], "offset": 1234, "row": 1234,
          "encoding": "utf-8", "expected": 12, "found": 13, "header_row": 40, "last": 30,
          "sheet": "Tabelle9", "sheets": ["Hinweise", "Einrichtungen"], "layer": "wege",
          "layers": ["stellen", "wege"], "member": "x.shp", "outside": 40, "share": 91.7,
          "max_share": 50.0, "current": 1300, "schemas": ["pflege", "ladepunkte"],
          "value": "kreis", "host": "daten.example", "address": "10.0.0.7",
          "url": "https://daten.example/pflege.csv", "seconds": 30.0, "status": 404,
          "resource": "res-1", "page": 3, "returned": 100, "matched": 1300, "id": "p.17",
          "first_page": 2, "source": "wfs https://daten.example/wfs", "received": 1200,
          "pages": 13,
          "reasons": [{"code": "guard.quarantined", "params": {
              "quarantined": 1100, "read": 1200, "outside": 40, "share": 91.7,
              "max_share": 50.0}}, {"code": "guard.shrink", "params": {
                  "rows": 100, "current": 1300, "share": 92.3, "max_share": 50.0}}]}
ENGLISH = "the stored English message"


# parameters a code may come without (another sentence then), left out one after the other
OPTIONAL = {"type.number": ("group", "decimal"), "type.date": ("example",),
            "type.datetime": ("example",), "unique": ("first_file",), "no-column": ("field",),
            "read.fields": ("row",), "read.quote": ("row",), "read.csv": ("row",),
            "read.options": ("allowed",),
            "upload.too-large": ("file",), "guard.quarantined": ("outside",),
            "mapping.schema": ("schemas",)}


def variants(code: str) -> list[dict[str, Any]]:
    """The parameters a code comes with: all given, then fewer and fewer optional ones."""
    found = [{name: SAMPLE[name] for name in {**CODES, **FAILURES}[code]}]
    for name in OPTIONAL.get(code, ()):
        found.append({k: v for k, v in found[-1].items() if k != name})
    return found


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_has_a_sentence_in_every_language(code: str) -> None:
    assert code in TEXTS, f"{code}: no German sentence in hub/web/workspace/problems.py"
    for params in variants(code):
        problem = {"value": "Pflegeheim", "rule": rule_of(code), "message": ENGLISH,
                   "code": code, "params": params}
        said = {lang: message(language(lang), problem) for lang in LANGUAGES}
        for lang, text in said.items():
            assert text != ENGLISH and "%(" not in text and text.endswith((".", "?")), (lang,
                                                                                        text)
            if "%(value)s" in str(TEXTS[_variant(code, params)]):
                assert "Pflegeheim" in text
        assert said["de"] != said["en"] and said["de"] != said["dsb"], said
    assert "der erlaubten Werte: Tagespflege, Hospiz oder Kurzzeitpflege" in message(
        language("de"), {"value": "x", "code": "enum", "params": {"allowed": SAMPLE["allowed"]}})


def failed_run(code: str, params: dict[str, Any]) -> Run:
    return Run(Job(id="j1", kind="ingest", params={}, organization="sozialamt",
                   dataset="pflege", submitted_by="sam", state="failed", progress=1.0,
                   message="", error=ENGLISH, result={
                       "status": "failed", "error": ENGLISH, "error_code": code,
                       "error_params": params}, attempts=1, max_attempts=1, claimed_by=None,
                   heartbeat=None, lease_expires=None, created="2026-01-01", started=None,
                   finished=None))


@pytest.mark.parametrize("code", sorted(FAILURES))
def test_every_failure_code_has_a_sentence_in_every_language(code: str) -> None:
    assert code in FAILURE_TEXTS, f"{code}: no German sentence in hub/web/workspace/problems.py"
    for params in variants(code):
        said = {lang: failure(language(lang), failed_run(code, params)) for lang in LANGUAGES}
        for lang, text in said.items():
            assert text != ENGLISH and "%(" not in text and text.endswith((".", "?")), (
                lang, text)
        assert said["de"] != said["en"] and said["de"] != said["dsb"], said
        if "file" in params:
            assert all("pflege.csv" in text for text in said.values()), said
        if "row" in params:
            assert all("1234" in text for text in said.values()), said
    assert failure(language("de"), failed_run("no-rows", {"files": ["a.csv", "b.csv"]})) == \
        "a.csv, b.csv enthält keine Datenzeilen (nur eine Kopfzeile oder gar nichts)."
    assert failure(language("de"), failed_run("", {})) == ENGLISH  # an error without a code
    other = failed_run("read.encoding", {"file": "a.csv", "row": 7, "column": "ort",
                                         "encoding": "cp1252"})
    assert failure(language("de"), other) == (
        "Die Datei a.csv enthält in Zeile 7, Spalte „ort“ Zeichen, die in der Kodierung cp1252 "
        "ungültig sind: Bitte die Kodierung der Datei prüfen.")


def test_numbers_and_plurals_follow_the_language() -> None:
    over = {"value": "5000", "code": "maximum", "params": {"limit": 1000}}
    assert message(language("de"), over) == \
        "„5000“ ist größer als der größte erlaubte Wert 1.000."
    assert message(language("en"), over).endswith("allowed value 1,000.")
    long = {"value": "x" * 90, "code": "maxLength", "params": {"limit": 80}}
    assert message(language("de"), long) == "Text ist länger als 80 Zeichen."
    one = {**long, "params": {"limit": 1}}
    assert message(language("en"), one) == "Text is longer than 1 character."
    assert message(language("dsb"), one).endswith("1 znamuško.")


def test_sizes_follow_the_language_and_old_runs_keep_their_text() -> None:
    """Sizes are stored in bytes and said as the page's language writes numbers; runs stored
    before, with the size as English text, still say it."""
    big = {"file": "a.csv", "size": 3_328_599_654, "limit": 2 << 30}
    assert failure(language("de"), failed_run("read.too-large", big)) == \
        "Die Datei a.csv ist mit 3,1\u00a0GiB größer als die erlaubten 2,0\u00a0GiB."
    assert "3.1\u00a0GiB" in failure(language("en"), failed_run("read.too-large", big))
    assert "3,1\u00a0GiB" in failure(language("dsb"), failed_run("read.too-large", big))
    old = {"file": "a.csv", "size": "3.1 GiB", "limit": "2.0 GiB"}
    assert "mit 3.1 GiB größer als die erlaubten 2.0 GiB" in \
        failure(language("de"), failed_run("read.too-large", old))
    de = language("de")
    assert [de.size(n) for n in (0, 1023, 1024, 1536, 2 << 20, 5 << 40, 3 << 50)] == [
        "0\u00a0B", "1.023\u00a0B", "1,0\u00a0KiB", "1,5\u00a0KiB", "2,0\u00a0MiB",
        "5,0\u00a0TiB", "3.072,0\u00a0TiB"]


def test_problems_stored_without_a_code_show_their_english_message() -> None:
    old = {"file": "a.csv", "row": 3, "column": "plz", "value": "XY", "rule": "pattern",
           "message": "does not match the pattern '[0-9]{5}'"}
    assert message(language("de"), old) == old["message"]
    assert message(language("de"), {**old, "code": "pattern.neu", "params": {}}) == \
        old["message"]
    assert message(language("de"), {**old, "code": "pattern", "params": {}}) == old["message"]


def code_argument(call: ast.Call) -> tuple[ast.expr | None, dict[str, Any]]:
    """The code a Problem(column, code, ...), Failure(message, rows, code),
    Violation(file, row, column, value, rule, message, code, ...) or failing(exc, code, ...)
    is made with, and the codes it must be one of."""
    name = call.func.id if isinstance(call.func, ast.Name) else ""
    position = {"Problem": 1, "Failure": 2, "Violation": 6, "failing": 1}.get(name)
    registry = FAILURES if name == "failing" else CODES
    if position is None:
        return None, registry
    for keyword in call.keywords:
        if keyword.arg == "code":
            return keyword.value, registry
    return (call.args[position] if len(call.args) > position else None), registry


def test_the_producers_emit_only_registered_codes() -> None:
    seen = set()
    for path in PRODUCERS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            arg, registry = code_argument(node) if isinstance(node, ast.Call) else (None, {})
            if isinstance(arg, ast.Constant):
                assert arg.value in registry, (path.name, arg.value)
                seen.add(arg.value)
            elif isinstance(arg, ast.JoinedStr):  # f"type.{f.type}": a registered prefix
                head = arg.values[0]
                assert isinstance(head, ast.Constant), (path.name, ast.unparse(arg))
                assert any(c.startswith(head.value) for c in registry), (path.name,
                                                                         ast.unparse(arg))
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
                for element in node.value.elts:  # code, message = "geometry.wkt", "…"
                    if isinstance(element, ast.Constant) and element.value in CODES:
                        seen.add(element.value)
    assert {"required", "unique", "extent", "crs", "row-structure", "no-column",
            "unknown-crs"} <= seen
    reading = {code for code in FAILURES if code.startswith(("read.", "upload."))}
    assert reading <= seen, sorted(reading - seen)  # every file-level code has its producer


# ----------------------------- a bad file through the workspace -----------------------------

DATASET = "pflege-pruefung"
PAGE = f"/arbeitsbereich/datensaetze/{DATASET}"
READ_DATASET = "pflege-lesefehler"  # files that cannot be read at all
READ_PAGE = f"/arbeitsbereich/datensaetze/{READ_DATASET}"
HEADER = "id,name,art,traeger,strasse,hausnummer,plz,ort,ags,plaetze,lon,lat\n"
GOOD = "PF-{n},Haus {n},Tagespflege,Diakonie,Markt,1,04910,Elsterwerda,12062124,12,13.52,51.46\n"
ROWS = [  # (row as the file shows it, column, value, German sentence)
    (3, "art", "Pflegeheim", "„Pflegeheim“ ist keiner der erlaubten Werte: ambulanter "
     "Pflegedienst, vollstationäre Pflege, Tagespflege, Kurzzeitpflege, Pflegestützpunkt, "
     "Hospiz oder betreutes Wohnen."),
    (4, "plz", "0491", "„0491“ hat nicht die erwartete Form (Muster: [0-9]{5})."),
    (5, "name", "", "Pflichtfeld ist leer."),
    (6, "plaetze", "viele", "„viele“ ist keine ganze Zahl (erwartet wird z. B. 1234 oder "
     "1.234)."),
    (7, "plaetze", "5000", "„5000“ ist größer als der größte erlaubte Wert 1.000."),
    (8, "hausnummer", "12345678901", "Text ist länger als 10 Zeichen."),
    (9, "lon/lat", "11.58 48.14", "Der Ort liegt außerhalb des Landkreises."),
    (10, "id", "PF-1", "Doppelt: Derselbe Wert steht schon in Zeile 2."),
    (11, "art", "=SUMME(A1:A9)", "„=SUMME(A1:A9)“ ist keiner der erlaubten Werte: ambulanter "
     "Pflegedienst, vollstationäre Pflege, Tagespflege, Kurzzeitpflege, Pflegestützpunkt, "
     "Hospiz oder betreutes Wohnen."),
]


def bad_file() -> bytes:
    lines = [HEADER, GOOD.format(n=1)]
    for row, column, value, _ in ROWS:
        line = GOOD.format(n=row)
        cells = line.rstrip("\n").split(",")
        names = HEADER.strip().split(",")
        if column == "lon/lat":
            cells[-2:] = value.split()
        elif column == "id":
            cells[0] = value
        else:
            cells[names.index(column)] = value
        lines.append(",".join(cells) + "\n")
    # enough good rows for the guard (at most 10 % quarantined)
    lines += [GOOD.format(n=n) for n in range(len(lines) + 1, len(lines) + 101)]
    return "".join(lines).encode("utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root: Path = tmp_path_factory.mktemp("pruefung")
    build(root)
    for name, title in ((DATASET, "Pflegeangebote (Prüfung)"),
                        (READ_DATASET, "Pflegeangebote (Lesefehler)")):
        record = root / "record.yaml"
        record.write_text(yaml.safe_dump({
            "name": name, "title": title, "publisher": "sozialamt",
            "description": "Zum Prüfen.", "license": "dl-by-de/2.0", "frequency": "QUARTERLY",
            "access": "internal"}, allow_unicode=True), encoding="utf-8")
        run_hub(root, "catalog", "add", str(record))
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    Accounts(catalog.store, vocab).set_password("sam", PASSWORD)
    return root


@pytest.fixture(scope="module")
def site(project: Path) -> Iterator[str]:
    with serving(project) as url, hub_worker(project):
        yield url


@contextlib.contextmanager
def signed_in(site: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site, timeout=60, follow_redirects=False) as browser:
        token = csrf_of(browser.get("/anmelden").text)
        assert browser.post("/anmelden", data={"name": "sam", "password": PASSWORD,
                                                "csrf": token}).status_code == 303
        yield browser


def save_mapping(browser: httpx.Client, content: bytes, dataset: str = DATASET) -> str:
    """Upload `content` as pflege.csv, save its mapping as proposed (WGS 84 coordinates);
    the CSRF token."""
    page = f"/arbeitsbereich/datensaetze/{dataset}"
    token = csrf_of(browser.get(page + "/daten").text)
    done = browser.post(page + "/daten/dateien", data={"csrf": token},
                        files=[("dateien", ("pflege.csv", content))])
    assert done.status_code == 303, done.text[:500]
    form = mapping_form(browser.get(page + "/daten").text)
    assert form["schema"] == "pflege", form
    form.update(geometry="lonlat", lon="lon", lat="lat", crs="EPSG:4326")
    if "name" in content.decode().split("\n", 1)[0].split(","):
        form["map.name"] = "name"
    saved = browser.post(page + "/daten/pipeline", data=form)
    assert saved.status_code == 303, saved.text[:800]
    return form["csrf"]


def run_file(browser: httpx.Client, content: bytes, state: str) -> None:
    """Upload `content` as pflege.csv, map it as proposed (WGS 84 coordinates), run it."""
    token = save_mapping(browser, content)
    assert browser.post(PAGE + "/daten/lauf", data={"csrf": token}).status_code == 303
    assert finished(browser, DATASET)["state"] == state


@pytest.fixture(scope="module")
def ran(site: str) -> str:
    """A file without the required name column run first (its failed report is returned),
    then the bad file, mapped as proposed (WGS 84 coordinates) and run."""
    with signed_in(site) as browser:
        run_file(browser, bad_file().replace(b",name,", b",bezeichnung,", 1), "failed")
        failed = browser.get(PAGE + "/pruefbericht").text
        run_file(browser, bad_file(), "committed")
    return failed


def test_a_failed_run_says_why_in_german(ran: str) -> None:
    assert "Der Lauf ist gescheitert" in ran
    assert "Dem Pflichtfeld „name“ ist keine Spalte zugeordnet: Die Datei pflege.csv hat keine "\
        "Spalte „name“." in ran
    assert "needed for the required field" not in ran




def table_of(page: str) -> list[tuple[str, str, str, str, str]]:
    """The report's rows: row, column, value, rule, sentence."""
    found = re.findall(r"<tr><td[^>]*>[^<]*</td><td[^>]*>(\d*)</td><td[^>]*>([^<]*)</td>"
                       r"<td[^>]*>([^<]*)</td><td[^>]*><code>([^<]+)</code></td>"
                       r"<td[^>]*>([^<]*)</td></tr>", page)
    return [tuple(unescape(cell) for cell in row) for row in found]


def test_the_report_says_each_problem_in_german_with_value_row_and_column(
        site: str, ran: str) -> None:
    with signed_in(site) as browser:
        page = browser.get(PAGE + "/pruefbericht").text
        english = browser.get(PAGE + "/pruefbericht?lang=en").text
        table = table_of(page)
        for row, column, value, sentence in ROWS:
            assert (str(row), column, value, sentence) in [(*r[:3], r[4]) for r in table], (
                row, table)
        said = {r[0]: r[4] for r in table_of(english)}
        assert said["5"] == "Required field is empty."
        assert said["7"] == "“5000” is greater than the largest allowed value 1,000."
        assert said["8"] == "Text is longer than 10 characters."

        download = browser.get(PAGE + "/pruefbericht/probleme.csv?lang=de")  # en remembered
        assert download.status_code == 200
        rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert rows[0] == ["Datei", "Zeile", "Spalte", "Wert", "Regel", "Meldung"]
        assert ["pflege.csv", "7", "plaetze", "5000", "maximum",
                "„5000“ ist größer als der größte erlaubte Wert 1.000."] in rows
        formula = next(r for r in rows if r[1] == "11")
        assert formula[3] == "'=SUMME(A1:A9)"  # no formula for the spreadsheet
        in_english = list(csv.reader(io.StringIO(browser.get(
            PAGE + "/pruefbericht/probleme.csv?lang=en").content.decode("utf-8-sig"))))
        assert in_english[0] == ["File", "Row", "Column", "Value", "Rule", "Message"]

        state = browser.get(PAGE + "/daten/lauf.json").json()
        job = browser.get(f"/arbeitsbereich/auftraege/{state['id']}.json")
    assert job.status_code == 200  # the job's JSON keeps the English message, beside the code
    problems = job.json()["result"]["problems"]
    assert {"file": "pflege.csv", "row": 7, "column": "plaetze", "value": "5000",
            "rule": "maximum", "message": "above the maximum 1000", "code": "maximum",
            "params": {"limit": 1000}} in problems


def test_the_csv_of_an_old_run_keeps_its_english_messages() -> None:
    job = Job(id="j1", kind="ingest", params={}, organization="sozialamt", dataset="pflege",
              submitted_by="sam", state="done", progress=1.0, message="", error=None,
              result={"status": "committed", "problems": [
                  {"file": "a.csv", "row": 3, "column": "plz", "value": "XY",
                   "rule": "pattern", "message": "-does not match"}]},
              attempts=1, max_attempts=1, claimed_by=None, heartbeat=None,
              lease_expires=None, created="2026-01-01", started=None, finished=None)
    rows = list(csv.reader(io.StringIO(csv_of(Run(job), language("de")).decode("utf-8-sig"))))
    assert rows == [["Datei", "Zeile", "Spalte", "Wert", "Regel", "Meldung"],
                    ["a.csv", "3", "plz", "XY", "pattern", "'-does not match"]]


def test_the_report_in_chromium_on_a_desk_and_a_phone(site: str, ran: str,
                                                      browser: Any) -> None:
    watched = Watched(browser)
    try:
        page = watched.page
        page.goto(f"{site}/anmelden")
        page.fill("#name", "sam")
        page.fill("#password", PASSWORD)
        page.click("form.account-form button[type=submit]")
        page.wait_for_url(f"{site}/konto")
        page.goto(f"{site}{PAGE}/pruefbericht")
        assert "„Pflegeheim“ ist keiner der erlaubten Werte" in page.inner_text("main")
        problems: dict[str, list[str]] = {}
        looked_at(page, "workspace-pruefbericht", problems)
        assert not problems, problems
        page.set_viewport_size({"width": 360, "height": 900})  # one problem, as a phone shows it
        enum = page.locator(".intake-problems tbody tr").nth(1)
        enum.screenshot(path=str(ARTIFACTS / "workspace-pruefbericht-360-problem.png"))
        sentence = enum.locator("td").last.bounding_box()
        assert sentence is not None and sentence["width"] >= 300  # the sentence: the full width
        assert watched.errors == [] and watched.outside == []
    finally:
        watched.close()


# -------------------- files that cannot be read at all, and the quarantine --------------------

def notices(page: str) -> str:
    """The text of the page's error notices."""
    return unescape(" ".join(re.findall(r'<p class="error notice"[^>]*>(.*?)</p>', page, re.S)))


def kept(project: Path) -> list[str]:
    """The files kept for the dataset, and those in staging."""
    store = project / "store" / "uploads"
    return sorted([p.name for p in (store / "workspace" / READ_DATASET).glob("*")]
                  + [f"staging/{p.name}" for p in (store / ".staging").glob("*")])


def workbook() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(HEADER.strip().split(","))
    book.active.append(GOOD.strip().format(n=1).split(","))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_truncated_workbook_is_refused_in_the_pages_language(site: str,
                                                               project: Path) -> None:
    cut = workbook()[:1500]  # the zip's central directory is gone
    before = kept(project)
    with signed_in(site) as browser:
        token = csrf_of(browser.get(READ_PAGE + "/daten").text)
        said = {}
        for lang in ("de", "en"):
            answer = browser.post(f"{READ_PAGE}/daten/dateien?lang={lang}", data={"csrf": token},
                                  files=[("dateien", ("Pflege.xlsx", cut))])
            assert answer.status_code == 400, answer.text[:500]
            said[lang] = notices(answer.text)
    assert said["de"] == ("Der Inhalt von Pflege.xlsx passt nicht zum Namen: Die Datei ist kein "
                          "vollständiges ZIP-Archiv, wie es .xlsx- und .zip-Dateien sind "
                          "(abgeschnitten oder beschädigt?).")
    assert said["en"].startswith("The content of Pflege.xlsx does not match its name")
    assert kept(project) == before


def two_shapefiles() -> bytes:
    import geopandas as gpd
    from shapely.geometry import Point

    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(buf, "w") as zf:
        for stem in ("stellen", "wege"):
            gpd.GeoDataFrame({"name": ["A"]}, geometry=[Point(13.5, 51.4)],
                             crs="EPSG:4326").to_file(Path(folder) / f"{stem}.shp")
        for member in sorted(Path(folder).iterdir()):
            zf.write(member, member.name)
    return buf.getvalue()


def rows(*lines: str) -> bytes:
    return (HEADER + "".join(lines)).encode("utf-8")


LONG = "".join(GOOD.format(n=n) for n in range(1, 3200))  # past the 256 KiB sniffed
UNREADABLE = [  # (file, its content, German and English sentence of the preview)
    ("pflege.csv", (HEADER + LONG).encode()
     + GOOD.format(n=9999).replace("Markt", "Straße").encode("cp1252"),
     "Die Datei pflege.csv enthält in Zeile 3201, Spalte „strasse“ Zeichen, die kein gültiges "
     "UTF-8 sind: Wahrscheinlich ist sie in Windows-1252 gespeichert; bitte als „CSV UTF-8“ "
     "speichern.",
     "The file pflege.csv has characters in row 3201, column “strasse” that are not valid "
     "UTF-8: it is probably saved as Windows-1252; please save it as “CSV UTF-8”."),
    ("pflege.csv", rows(GOOD.format(n=1), GOOD.format(n=2).replace("Haus 2", '"Haus 2'),
                        *(GOOD.format(n=n) for n in range(3, 20))),
     "In der Datei pflege.csv öffnet Zeile 3 ein Anführungszeichen, das nicht wieder "
     "geschlossen wird: Bitte es dort entfernen oder schließen.",
     "In the file pflege.csv, row 3 opens a quotation mark that is never closed: please "
     "remove or close it there."),
    ("pflege.csv", rows(GOOD.format(n=1), GOOD.format(n=2), GOOD.format(n=3).replace(
        "Haus 3", "Haus 3,Nebengebäude")),
     "In der Datei pflege.csv hat Zeile 4 eine andere Anzahl Felder als die Kopfzeile "
     "(13 statt 12): Fehlt dort ein Trennzeichen, oder ist eines zu viel?",
     "In the file pflege.csv, row 4 has another number of fields than the header (13 instead "
     "of 12): is a delimiter missing there, or one too many?"),
    ("orte.zip", two_shapefiles(),
     "Die Datei orte.zip enthält mehrere Ebenen (stellen, wege), gelesen wird aber nur eine: "
     "Bitte je Datei eine Ebene hochladen (ein Shapefile je ZIP-Archiv).",
     "The file orte.zip holds several layers (stellen, wege), but only one is read: please "
     "upload one layer per file (one Shapefile per ZIP archive)."),
    ("karte.gpkg", b"SQLite format 3\x00" + bytes(52) + b"GPKG" + bytes(4096),
     "Die Datei karte.gpkg lässt sich nicht als GeoPackage lesen (beschädigt oder ein anderes "
     "Format?).",
     "The file karte.gpkg cannot be read as GeoPackage (damaged or another format?)."),
    ("orte.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feature", ',
     "Die Datei orte.geojson lässt sich nicht als GeoJSON lesen (beschädigt oder ein anderes "
     "Format?).",
     "The file orte.geojson cannot be read as GeoJSON (damaged or another format?)."),
]


@pytest.mark.parametrize(("name", "content", "german", "english"), UNREADABLE,
                         ids=["bad-utf8", "stray-quote", "ragged-row", "two-shapefiles",
                              "broken-gpkg", "broken-geojson"])
def test_the_preview_says_why_a_file_cannot_be_read(site: str, name: str, content: bytes,
                                                    german: str, english: str) -> None:
    with signed_in(site) as browser:
        token = csrf_of(browser.get(READ_PAGE + "/daten").text)
        done = browser.post(READ_PAGE + "/daten/dateien", data={"csrf": token},
                            files=[("dateien", (name, content))])
        assert done.status_code == 303, notices(done.text)  # taken: the content is what it says
        page = browser.get(READ_PAGE + "/daten?lang=de")
        in_english = browser.get(READ_PAGE + "/daten?lang=en")
    assert page.status_code == in_english.status_code == 200
    assert notices(page.text) == german
    assert notices(in_english.text) == english


@pytest.mark.parametrize("case", [0, 1], ids=["bad-utf8", "stray-quote"])
def test_a_run_of_an_unreadable_file_fails_with_its_reason_and_stores_nothing(
        site: str, project: Path, case: int) -> None:
    """The mapping saved for a good file; then the file replaced by one that cannot be read:
    the run fails, its report says why in the page's language, no version is made."""
    _, content, german, english = UNREADABLE[case]
    store = Store(load_settings(project, project / "store").store)
    with signed_in(site) as browser:
        token = save_mapping(browser, rows(GOOD.format(n=1), GOOD.format(n=2)), READ_DATASET)
        browser.post(READ_PAGE + "/daten/dateien", data={"csrf": token},
                     files=[("dateien", ("pflege.csv", content))])
        assert browser.post(READ_PAGE + "/daten/lauf", data={"csrf": token}).status_code == 303
        state = finished(browser, READ_DATASET)
        report = browser.get(READ_PAGE + "/pruefbericht?lang=de")
        in_english = browser.get(READ_PAGE + "/pruefbericht?lang=en")
        job = browser.get(f"/arbeitsbereich/auftraege/{state['id']}.json").json()
    assert state["state"] == "failed"
    assert report.status_code == in_english.status_code == 200
    assert notices(report.text) == "Der Lauf ist gescheitert; die bisherigen Daten bleiben " \
        "unverändert.<br>" + german
    assert notices(in_english.text).endswith(english)
    assert job["result"]["error"].startswith("pflege.csv, row ")  # the English, as before
    assert store.current(READ_DATASET) is None


def quarantine(browser: httpx.Client, lang: str) -> list[dict[str, str]]:
    answer = browser.get(PAGE + f"/pruefbericht/quarantaene.csv?lang={lang}")
    assert answer.status_code == 200
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"), newline="")))


def test_the_quarantined_rows_download_in_the_pages_language(site: str, ran: str,
                                                             project: Path) -> None:
    with signed_in(site) as browser:
        german, english = quarantine(browser, "de"), quarantine(browser, "en")
    assert list(german[0])[:4] == ["_datei", "_zeile", "_fehler", "_rohtext"]
    assert list(english[0])[:4] == ["_file", "_row", "_errors", "_raw"]
    assert "_codes" not in german[0] and "_geometrie" in german[0]
    said = {int(r["_zeile"]): r["_fehler"] for r in german}
    assert said[7] == "plaetze: „5000“ ist größer als der größte erlaubte Wert 1.000."
    assert said[10] == "id: Doppelt: Derselbe Wert steht schon in Zeile 2."
    assert said[5] == "name: Pflichtfeld ist leer."
    formula = next(r for r in german if r["_zeile"] == "11")
    assert formula["art"] == "'=SUMME(A1:A9)"  # no formula for the spreadsheet
    assert formula["_fehler"].startswith("art: „=SUMME(A1:A9)“ ist keiner der erlaubten")
    assert {int(r["_row"]): r["_errors"] for r in english}[7] == \
        "plaetze: “5000” is greater than the largest allowed value 1,000."
    # the stored file and the CLI keep the English `_errors`
    current = Store(load_settings(project, project / "store").store).current(DATASET)
    stored = pq.read_table(current.source(QUARANTINE)).to_pylist()
    assert {r["_row"]: r["_errors"] for r in stored}[7] == \
        "plaetze: above the maximum 1000 [maximum]"
    assert json.loads({r["_row"]: r["_codes"] for r in stored}[7]) == [
        {"column": "plaetze", "code": "maximum", "params": {"limit": 1000}, "value": "5000"}]
    run_hub(project, "quarantine", DATASET, "--export", str(project / "q.csv"))
    exported = list(csv.DictReader(io.StringIO((project / "q.csv").read_text("utf-8"))))
    assert "_codes" not in exported[0] and exported[0]["_errors"].endswith("]")


def test_an_older_quarantine_without_codes_keeps_its_english_errors(tmp_path: Path) -> None:
    path = tmp_path / "quarantine.parquet"
    pq.write_table(pa.table({"_file": ["a.csv"], "_row": [3], "_errors": ["-plz: no [pattern]"],
                             "_raw": pa.array([None], pa.string()), "plz": ["XY"]}), path)
    lang = language("de")
    table = list(csv.reader(io.StringIO(b"".join(runs._csv(
        pq.ParquetFile(path), {k: lang.gettext(v) for k, v in ADDED.items()},
        lambda codes, english: row_problems(lang, codes, english))).decode("utf-8-sig"))))
    assert table == [["_datei", "_zeile", "_fehler", "_rohtext", "plz"],
                     ["a.csv", "3", "'-plz: no [pattern]", "", "XY"]]
    unknown = json.dumps([{"column": "plz", "code": "pattern.neu", "params": {}, "value": "XY"}])
    assert row_problems(lang, unknown, "the English") == "the English"


def test_a_run_the_guard_refuses_says_why_in_the_pages_language(site: str,
                                                                 project: Path) -> None:
    """Most rows with a problem: the guard refuses the run; the report says how many and the
    limit in the page's language, names no file of the server, and no version is made."""
    bad = GOOD.replace(",12,13.52", ",viele,13.52")  # plaetze: not a whole number
    content = rows(GOOD.format(n=1), *(bad.format(n=n) for n in range(2, 12)))
    store = Store(load_settings(project, project / "store").store)
    before = store.current(READ_DATASET)
    with signed_in(site) as browser:
        token = save_mapping(browser, content, READ_DATASET)
        assert browser.post(READ_PAGE + "/daten/lauf", data={"csrf": token}).status_code == 303
        state = finished(browser, READ_DATASET)
        report = notices(browser.get(READ_PAGE + "/pruefbericht?lang=de").text)
        in_english = notices(browser.get(READ_PAGE + "/pruefbericht?lang=en").text)
        job = browser.get(f"/arbeitsbereich/auftraege/{state['id']}.json").json()
        job_page = browser.get(f"/arbeitsbereich/auftraege/{state['id']}?lang=de").text
    assert state["state"] == "failed"
    shown = unescape(re.search(r'<p class="job-error"[^>]*>(.*?)</p>', job_page, re.S)[1])
    assert shown.startswith("Die Prüfung vor dem Speichern hat den Lauf abgelehnt. 10 von 11")
    assert "Die Prüfung vor dem Speichern hat den Lauf abgelehnt. 10 von 11 gelesenen Zeilen " \
        "haben Probleme (90,9\xa0%, erlaubt sind höchstens 10\xa0%). Bitte Datei und " \
        "Zuordnung prüfen" in report, report
    assert "10 of 11 rows read have problems (90.9%; at most 10% are allowed)" in in_english
    assert str(project) not in report + in_english and "pipeline.yaml" not in report
    assert job["result"]["error"].startswith("refused, the current data stays as it is")
    assert store.current(READ_DATASET) == before  # the guard kept what was there


def test_a_mapping_that_cannot_be_saved_says_why_in_the_pages_language(site: str) -> None:
    """Coordinates chosen without the latitude's column, then without a CRS: 400, the
    sentence in the page's language, the saved pipeline kept."""
    with signed_in(site) as browser:
        save_mapping(browser, rows(GOOD.format(n=1), GOOD.format(n=2)), READ_DATASET)
        saved = browser.get(READ_PAGE + "/pipeline.yaml").text
        form = mapping_form(browser.get(READ_PAGE + "/daten").text)
        no_lat = browser.post(READ_PAGE + "/daten/pipeline?lang=de", data={**form, "lat": ""})
        no_crs = browser.post(READ_PAGE + "/daten/pipeline?lang=en", data={**form, "crs": ""})
        assert browser.get(READ_PAGE + "/pipeline.yaml").text == saved
    assert no_lat.status_code == no_crs.status_code == 400
    assert "Bitte die Spalten beider Koordinaten wählen (Länge und Breite)." in \
        notices(no_lat.text)
    assert "Please give the coordinate reference system, e.g. EPSG:25833." in \
        notices(no_crs.text)
