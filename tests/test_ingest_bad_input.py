"""Bad and hostile input through the real CLI (`hub ingest`), each with a good version already in
the store: the run must fail with a message that names file, row and column where they apply,
and leave the previous version current, unchanged (same checksum) and readable."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow.parquet as pq
import pytest
import shapely
from conftest import CENTRE, CliResult, Project

FIELDS = [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "name", "type": "string", "constraints": {"required": True}},
    {"name": "value", "type": "number"},
    {"name": "since", "type": "date"},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"],
     "constraints": {"required": True}},
]
HEADER = ["id", "name", "value", "since", "lon", "lat"]
GOOD_ROWS = [
    ["1", "Bahnhof", "1,5", "2024-01-31", "13,47", "51,626"],
    ["2", "Markt", "2", "2023-12-01", "13,483", "51,619"],
    ["3", "Schule", "", "", "13,496", "51,612"],
]
CSV_SOURCE = {"path": "data/x.csv", "crs": "EPSG:4326", "geometry": {"lon": "lon", "lat": "lat"}}


def csv_text(rows: list[list[str]], header: list[str] = HEADER) -> str:
    return "\n".join(";".join(r) for r in [header, *rows]) + "\n"


def with_cell(row: int, column: str, value: str) -> list[list[str]]:
    rows = [list(r) for r in GOOD_ROWS]
    rows[row][HEADER.index(column)] = value
    return rows


@pytest.fixture
def proj(ingest_project: Project) -> Project:
    project = ingest_project
    project.schema("points", FIELDS)
    return project


def good_csv_version(project: Project, source: dict[str, Any] | None = None) -> Any:
    (project.data / "x.csv").write_text(csv_text(GOOD_ROWS), encoding="utf-8")
    project.pipeline("ds", "points", source or CSV_SOURCE)
    return committed(project)


def committed(project: Project) -> Any:
    result = project.cli("ingest", "ds")
    assert result.exit_code == 0, result
    version = project.current("ds")
    assert version is not None
    return version


def assert_failed_intact(project: Project, result: CliResult, before: Any,
                         *expected: str) -> None:
    """Exit != 0 with a message (no crash), each `expected` text in it, store untouched."""
    assert result.exit_code != 0, result
    assert isinstance(result.exception, SystemExit), result  # a message, not a traceback
    assert "failed" in result.text or "Error" in result.text, result
    for text in expected:
        assert text in result.text, (text, result.output)
    after = project.current("ds")
    assert (after.version, after.checksum) == (before.version, before.checksum)
    assert len(project.store.versions("ds")) == 1
    with open(after.data_file, "rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == before.checksum
    assert pq.read_table(after.data_file).num_rows == before.rows
    assert not list((project.store_dir / "staging").iterdir())


def replace_and_ingest(project: Project, name: str, data: bytes | str) -> CliResult:
    path = project.data / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return project.cli("ingest", "ds")


# -- empty and truncated files ----------------------------------------------------------------

def test_empty_file(proj: Project) -> None:
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", b"")
    assert_failed_intact(proj, result, before, "x.csv", "empty")


def test_header_only_file(proj: Project) -> None:
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", csv_text([]))
    assert_failed_intact(proj, result, before, "no data rows")


def test_header_only_message_names_the_file(proj: Project) -> None:
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", csv_text([]))
    assert_failed_intact(proj, result, before, "x.csv")


def test_blank_lines_only(proj: Project) -> None:
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", "\n\n  \n")
    assert_failed_intact(proj, result, before, "x.csv")


def shapefile_zip(target: Path, prj: bool = True, crs: str = "EPSG:25833") -> Path:
    folder = target.parent / (target.stem + "_shp")
    folder.mkdir(exist_ok=True)
    frame = gpd.GeoDataFrame(
        {"id": [1, 2, 3], "name": ["A", "B", "C"], "value": [1.0, 2.0, 3.0]},
        geometry=[shapely.Point(CENTRE[0] + 0.01 * i, CENTRE[1]) for i in range(3)],
        crs="EPSG:4326").to_crs(crs)
    frame.to_file(folder / "stellen.shp", driver="ESRI Shapefile")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            if prj or f.suffix != ".prj":
                zf.write(f, f.name)
    return target


def test_truncated_zip(proj: Project) -> None:
    path = shapefile_zip(proj.data / "stellen.zip")
    proj.pipeline("ds", "points", {"path": "data/stellen.zip"})
    before = committed(proj)
    data = path.read_bytes()
    result = replace_and_ingest(proj, "stellen.zip", data[: len(data) // 2])
    assert_failed_intact(proj, result, before, "stellen.zip", "zip")


def test_shapefile_without_prj(proj: Project) -> None:
    shapefile_zip(proj.data / "stellen.zip")
    proj.pipeline("ds", "points", {"path": "data/stellen.zip"})
    before = committed(proj)
    shapefile_zip(proj.data / "stellen.zip", prj=False)
    result = proj.cli("ingest", "ds")
    assert_failed_intact(proj, result, before, "stellen.zip", ".prj", "crs")


def test_unknown_crs(proj: Project) -> None:
    before = good_csv_version(proj)
    proj.pipeline("ds", "points", {**CSV_SOURCE, "crs": "EPSG:999999"})
    result = proj.cli("ingest", "ds")
    assert_failed_intact(proj, result, before, "EPSG:999999")


# -- encoding, header, types ------------------------------------------------------------------

def test_wrong_encoding_declared_utf8(proj: Project) -> None:
    before = good_csv_version(proj, {**CSV_SOURCE, "options": {"encoding": "utf-8"}})
    data = csv_text(with_cell(2, "name", "Großräschener Straße")).encode("cp1252")
    result = replace_and_ingest(proj, "x.csv", data)
    assert_failed_intact(proj, result, before, "x.csv", "row 4", "'name'", "cp1252")


def test_header_missing_required_column(proj: Project) -> None:
    before = good_csv_version(proj)
    header = ["id", "bezeichnung", "value", "since", "lon", "lat"]
    result = replace_and_ingest(proj, "x.csv", csv_text(GOOD_ROWS, header))
    assert_failed_intact(proj, result, before, "x.csv", "'name'",
                         "id, bezeichnung, value, since, lon, lat")


def test_duplicate_keys(proj: Project) -> None:
    before = good_csv_version(proj)
    rows = [*GOOD_ROWS, ["2", "Kirche", "", "", "13,5", "51,6"]]
    result = replace_and_ingest(proj, "x.csv", csv_text(rows))
    assert_failed_intact(proj, result, before, "x.csv", "row 5", "'id'", "duplicate of row 3")


@pytest.mark.parametrize(("column", "value"), [
    ("value", "zwölf"), ("value", "1,2,3"), ("value", "1.5e"), ("id", "7a"),
    ("id", "99999999999999999999999"), ("since", "31.02.2024"), ("since", "2024-02-30"),
    ("since", "morgen"), ("since", "01/02/2024"), ("since", "1.2.24"),
])
def test_unparseable_numbers_and_dates(proj: Project, column: str, value: str) -> None:
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", csv_text(with_cell(1, column, value)))
    assert_failed_intact(proj, result, before, "x.csv", "row 3", repr(column), repr(value))


@pytest.mark.parametrize("value", ["52,5 N", "51°37'N", "fünfzig"])
def test_coordinates_as_text(proj: Project, value: str) -> None:
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", csv_text(with_cell(0, "lat", value)))
    assert_failed_intact(proj, result, before, "x.csv", "row 2", "lat", value,
                         "decimal mark ','", "options: {decimal: MARK}")


def test_mixed_geometry_types(proj: Project) -> None:
    def collection(line: bool) -> str:
        x, y = CENTRE
        geoms = [{"type": "Point", "coordinates": [x, y]},
                 ({"type": "LineString", "coordinates": [[x, y], [x + 0.01, y]]} if line
                  else {"type": "Point", "coordinates": [x + 0.01, y]})]
        return json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": i + 1, "name": f"S{i}"}, "geometry": g}
            for i, g in enumerate(geoms)]})

    (proj.data / "p.geojson").write_text(collection(False))
    proj.pipeline("ds", "points", {"path": "data/p.geojson"})
    before = committed(proj)
    result = replace_and_ingest(proj, "p.geojson", collection(True))
    assert_failed_intact(proj, result, before, "p.geojson", "row 2",
                         "LineString", "geometry type not allowed")


# -- size limits --------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(60)  # a hang guard (a 2 GB sparse file must not be read whole), no timing
def test_two_gigabyte_binary_file_fails_fast(proj: Project) -> None:
    (proj.data / "data.csv").write_text(csv_text(GOOD_ROWS), encoding="utf-8")
    proj.pipeline("ds", "points", {**CSV_SOURCE, "path": "data/data.csv"})
    before = committed(proj)
    with open(proj.data / "data.csv", "r+b") as f:  # sparse: no disk space used
        f.truncate(0)
        f.truncate(2 * 1024**3)
    result = proj.cli("ingest", "ds")
    assert_failed_intact(proj, result, before, "data.csv", "NUL")


def test_size_limit_from_environment(proj: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    before = good_csv_version(proj)
    monkeypatch.setenv("HUB_MAX_SOURCE_BYTES", "100")
    rows = [*GOOD_ROWS, ["4", "Weiterer Eintrag mit längerem Namen", "4", "", "13,5", "51,6"]]
    result = replace_and_ingest(proj, "x.csv", csv_text(rows))
    assert_failed_intact(proj, result, before, "x.csv", "limit")


def test_size_limit_message_states_sizes(proj: Project, monkeypatch: pytest.MonkeyPatch,
                                         ) -> None:
    """A small limit is not shown as "0.0 GiB is more than the limit of 0.0 GiB"."""
    before = good_csv_version(proj)
    monkeypatch.setenv("HUB_MAX_SOURCE_BYTES", "100")
    result = proj.cli("ingest", "ds")
    assert_failed_intact(proj, result, before, "x.csv", "limit")
    assert "0.0 GiB is more than the limit of 0.0 GiB" not in result.text


def test_size_limit_allows_files_below_it(proj: Project,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_MAX_SOURCE_BYTES", "100000")
    good_csv_version(proj)


# -- URLs ---------------------------------------------------------------------------------------

GOOD_CSV = csv_text(GOOD_ROWS).encode()


class Server:
    """A real HTTP server on 127.0.0.1; `mode` decides how it answers."""

    def __init__(self) -> None:
        self.mode = "csv"
        self.body = GOOD_CSV
        self.etag = '"v1"'
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.answer(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/daten.csv") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def answer(self, h: http.server.BaseHTTPRequestHandler) -> None:
        if self.mode == "sleep":
            time.sleep(4)
            return
        if self.mode == "404":
            h.send_error(404, "Not Found")
            return
        if self.mode == "csv" and h.headers.get("If-None-Match") == self.etag:
            h.send_response(304)
            h.send_header("ETag", self.etag)
            h.end_headers()
            return
        html = b"<!DOCTYPE html><html><head><title>Portal</title></head><body>Login</body>"
        body, kind = {"csv": (self.body, "text/csv; charset=utf-8"),
                      "stall": (self.body * 100, "text/csv"),
                      "html": (html, "text/html; charset=utf-8"),
                      "html-as-csv": (html, "text/csv")}[self.mode]
        h.send_response(200)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        if self.mode == "csv":
            h.send_header("ETag", self.etag)
        h.end_headers()
        if self.mode == "stall":
            h.wfile.write(body[:100])
            h.wfile.flush()
            time.sleep(4)
            return
        h.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def good_url_version(project: Project, server: Server) -> Any:
    project.pipeline("ds", "points", {"url": server.url(), "crs": "EPSG:4326",
                                      "geometry": {"lon": "lon", "lat": "lat"}})
    return committed(project)


@pytest.mark.timeout(60)  # a hang guard, not a timing; the failure must name the timeout
@pytest.mark.parametrize("mode", ["sleep", "stall"])
def test_url_timeout(proj: Project, server: Server, monkeypatch: pytest.MonkeyPatch,
                     mode: str) -> None:
    before = good_url_version(proj, server)
    monkeypatch.setenv("HUB_HTTP_TIMEOUT", "1")
    server.mode, server.etag = mode, '"v2"'
    result = proj.cli("ingest", "ds")
    assert_failed_intact(proj, result, before, server.url(), "timeout")


@pytest.mark.parametrize("mode", ["html", "html-as-csv"])
def test_url_returns_html(proj: Project, server: Server, mode: str) -> None:
    before = good_url_version(proj, server)
    server.mode = mode
    result = proj.cli("ingest", "ds")
    assert_failed_intact(proj, result, before, server.url(), "HTML")


def test_url_404(proj: Project, server: Server) -> None:
    before = good_url_version(proj, server)
    server.mode = "404"
    result = proj.cli("ingest", "ds")
    assert_failed_intact(proj, result, before, server.url(), "404")


def test_url_etag_not_modified(proj: Project, server: Server) -> None:
    proj.pipeline("ds", "points", {"url": server.url(), "crs": "EPSG:4326",
                                   "geometry": {"lon": "lon", "lat": "lat"}})
    first = proj.ingest("ds")
    assert first.status == "committed", first.error
    before = proj.current("ds")
    second = proj.ingest("ds")
    assert second.status == "unchanged", second.error
    assert second.version == before.version
    assert server.requests[-1].get("If-None-Match") == '"v1"'
    assert len(proj.store.versions("ds")) == 1
    assert proj.current("ds").checksum == before.checksum
    # a new ETag and body make a new version
    server.etag, server.body = '"v2"', csv_text(GOOD_ROWS[:2]).encode()
    third = proj.ingest("ds")
    assert third.status == "committed" and third.version == before.version + 1
    assert proj.current("ds").rows == 2


def test_url_unchanged_through_cli(proj: Project, server: Server) -> None:
    good_url_version(proj, server)
    result = proj.cli("ingest", "ds")
    assert result.exit_code == 0, result
    assert "unchanged" in result.text
    assert len(proj.store.versions("ds")) == 1


# -- hostile input ------------------------------------------------------------------------------

def test_one_megabyte_cell_is_stored(proj: Project) -> None:
    good_csv_version(proj)
    huge = "ä" + "x" * (1 << 20)
    replace_and_ingest(proj, "x.csv", csv_text(with_cell(1, "name", huge)))
    rows = proj.rows("ds")
    assert rows[1]["name"] == huge
    assert proj.current("ds").version == 2


def test_one_megabyte_cell_in_message_is_shortened(proj: Project) -> None:
    before = good_csv_version(proj)
    huge = "9" * (1 << 20) + "x"
    result = replace_and_ingest(proj, "x.csv", csv_text(with_cell(1, "id", huge)))
    assert_failed_intact(proj, result, before, "x.csv", "row 3", "'id'")
    assert len(result.output) < 20_000


def test_header_with_2000_columns(proj: Project) -> None:
    good_csv_version(proj)
    extra = [f"spalte_{i}" for i in range(2000)]
    header = [*extra[:1000], *HEADER, *extra[1000:]]
    rows = [[*(["x"] * 1000), *r, *(["y"] * 1000)] for r in GOOD_ROWS]
    result = replace_and_ingest(proj, "x.csv", csv_text(rows, header))
    assert result.exit_code == 0, result
    assert proj.current("ds").version == 2
    assert [r["name"] for r in proj.rows("ds")] == ["Bahnhof", "Markt", "Schule"]


def test_header_with_2000_columns_missing_one(proj: Project) -> None:
    before = good_csv_version(proj)
    header = [f"spalte_{i}" for i in range(2000)] + ["id", "value", "since", "lon", "lat"]
    rows = [[*(["x"] * 2000), r[0], *r[2:]] for r in GOOD_ROWS]
    result = replace_and_ingest(proj, "x.csv", csv_text(rows, header))
    assert_failed_intact(proj, result, before, "x.csv", "'name'", "spalte_0")
    assert len(result.output) < 5_000  # the header is listed, but not all 2,000 names


def test_row_with_extra_fields(proj: Project) -> None:
    proj.pipeline("ds", "points", CSV_SOURCE, on_error="quarantine")
    rows = [GOOD_ROWS[0], [*GOOD_ROWS[1], "überzählig"], GOOD_ROWS[2]]
    (proj.data / "x.csv").write_text(csv_text(rows), encoding="utf-8")
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    [v] = report.violations
    assert (v.file, v.rule) == ("x.csv", "row-structure")
    assert v.row == 3  # the line of the malformed row
    assert [q["_row"] for q in proj.quarantine("ds")] == [3]
    assert [r["id"] for r in proj.rows("ds")] == [1, 3]


def test_row_after_a_malformed_row_keeps_its_line_number(proj: Project) -> None:
    proj.pipeline("ds", "points", CSV_SOURCE, on_error="quarantine")
    rows = [GOOD_ROWS[0], [*GOOD_ROWS[1], "überzählig"], with_cell(2, "value", "kaputt")[2]]
    (proj.data / "x.csv").write_text(csv_text(rows), encoding="utf-8")
    report = proj.ingest("ds")
    by_rule = {v.rule: v for v in report.violations}
    assert by_rule["type"].row == 4  # "3;Schule;kaputt;…" is line 4


def test_row_with_extra_fields_through_cli(proj: Project) -> None:
    before = good_csv_version(proj)
    rows = [GOOD_ROWS[0], [*GOOD_ROWS[1], "überzählig"], GOOD_ROWS[2]]
    result = replace_and_ingest(proj, "x.csv", csv_text(rows))
    assert_failed_intact(proj, result, before, "x.csv", "row 3", "different number of fields")


CONTROL = ["A\x01B", "Glocke\x07", "Esc\x1b[31mrot", "DEL\x7f", "Rück\x08schritt"]
# characters that str.splitlines() treats as line ends, but CSV does not
LINE_LIKE = ["Form\x0cfeed", "Vertikal\x0bTab", "Datei\x1cTrenner", "Absatz\u2028Zeile",
             "Nächste\x85Zeile"]


@pytest.mark.parametrize("names", [CONTROL, LINE_LIKE, CONTROL + LINE_LIKE],
                         ids=["control", "line-separators", "both"])
def test_control_characters_are_kept(proj: Project, names: list[str]) -> None:
    good_csv_version(proj)
    rows = [[str(i + 1), name, "", "", "13,47", "51,626"] for i, name in enumerate(names)]
    result = replace_and_ingest(proj, "x.csv", csv_text(rows))
    assert result.exit_code == 0, result
    assert [r["name"] for r in proj.rows("ds")] == names


def test_control_characters_in_banner_do_not_shift_the_header(proj: Project) -> None:
    good_csv_version(proj)
    text = "Bericht\x0cSeite 1\n\n" + csv_text(GOOD_ROWS)
    result = replace_and_ingest(proj, "x.csv", text)
    assert result.exit_code == 0, result
    assert [r["id"] for r in proj.rows("ds")] == [1, 2, 3]


def test_nul_byte_in_a_cell(proj: Project) -> None:
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", csv_text(with_cell(1, "name", "a\x00b")))
    assert_failed_intact(proj, result, before, "x.csv", "NUL")


@pytest.mark.parametrize("value", ["[/x]", "[bold]", "[/]"])
def test_markup_like_value_in_message(proj: Project, value: str) -> None:
    """Values are data: a cell that looks like console markup is shown, not interpreted."""
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", csv_text(with_cell(1, "id", value)))
    assert_failed_intact(proj, result, before, "x.csv", "row 3", "'id'", value)


def test_cli_error_message_keeps_rule_names(proj: Project) -> None:
    before = good_csv_version(proj)
    result = replace_and_ingest(proj, "x.csv", csv_text(with_cell(1, "id", "zwei")))
    assert_failed_intact(proj, result, before, "x.csv", "row 3", "'id'", "zwei")
    assert "rule: type" in result.text
