"""Every problem of a row, every time, counted the same by `hub ingest` and `hub validate`.

A row with a bad date, an unknown kind and coordinates in Berlin reports all three; a duplicate
key is reported even when its first occurrence is itself invalid; the dry run counts what the
ingest quarantines; and every run adds up: read = valid + quarantined + skipped (filtered or
outside the district), also with `filter` and `outside_extent: skip`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Project

from hub.ingest.pipeline import load_pipeline
from hub.ingest.run import RunReport, validate_file

FIELDS = [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "kind", "type": "string", "constraints": {"enum": ["Heim", "Dienst"]}},
    {"name": "opened", "type": "date"},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"],
     "constraints": {"required": True}},
]
HEADER = ["Nr", "Art", "Eröffnet", "Land", "lon", "lat"]
HERE = ["13,47", "51,626"]  # in the test district
BERLIN = ["13,405", "52,52"]  # outside it
SOURCE = {"path": "data/x.csv", "crs": "EPSG:4326", "geometry": {"lon": "lon", "lat": "lat"},
          "mapping": {"id": "Nr", "kind": "Art", "opened": "Eröffnet"}}

ROWS = [  # source rows 2..7
    ["1", "Heim", "01.05.2019", "BB", *HERE],
    ["2", "Kiosk", "gestern", "BB", *BERLIN],  # enum + type + extent
    ["3", "Dienst", "31.02.2019", "BB", *BERLIN],  # type + extent
    ["4", "Bude", "2019-05-01", "BB", *BERLIN],  # enum + extent
    ["5", "Heim", "morgen", "SN", *HERE],  # type (a filtered row where a filter applies)
    ["6", "Dienst", "", "SN", *BERLIN],  # extent only
]


def write_csv(path: Path, rows: list[list[str]], extra: str = "") -> None:
    path.write_text("\n".join(";".join(r) for r in [HEADER, *rows]) + "\n" + extra,
                    encoding="utf-8")


@pytest.fixture
def proj(ingest_project: Project) -> Project:
    ingest_project.schema("rows", FIELDS)
    return ingest_project


def problems(report: RunReport) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for v in report.violations:
        out.setdefault(v.row, set()).add(f"{v.column}:{v.rule}")
    return out


def dry_run(project: Project, dataset: str = "ds") -> RunReport:
    settings = project.settings()
    pipeline = load_pipeline(project.root / "pipelines" / f"{dataset}.yaml",
                             settings.schemas_dir)
    return validate_file(pipeline, settings)


def counts(report: RunReport) -> tuple[int, ...]:
    return (report.rows_read, report.rows_valid, report.rows_quarantined, report.rows_filtered,
            report.rows_outside, report.violation_count)


def test_every_problem_of_a_row_is_reported(proj: Project) -> None:
    write_csv(proj.data / "x.csv", ROWS)
    proj.pipeline("ds", "rows", SOURCE, on_error="quarantine")
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    assert problems(report) == {
        3: {"Art:enum", "Eröffnet:type", "lon/lat:extent"},
        4: {"Eröffnet:type", "lon/lat:extent"},
        5: {"Art:enum", "lon/lat:extent"},
        6: {"Eröffnet:type"},
        7: {"lon/lat:extent"},
    }
    parked = {p["_row"]: p["_errors"] for p in proj.quarantine("ds")}
    assert sorted(parked) == [3, 4, 5, 6, 7]
    assert all(f"[{rule}]" in parked[3] for rule in ("enum", "type", "extent"))
    assert "[extent]" in parked[4] and "[type]" in parked[4]
    assert (report.rows_valid, report.rows_quarantined) == (1, 5)
    assert [r["id"] for r in proj.rows("ds")] == [1]


def test_dry_run_reports_the_same_problems(proj: Project) -> None:
    write_csv(proj.data / "x.csv", ROWS)
    proj.pipeline("ds", "rows", SOURCE, on_error="quarantine")
    dry = dry_run(proj)
    ingested = proj.ingest("ds")
    assert problems(dry) == problems(ingested)
    assert counts(dry) == counts(ingested)


DUPLICATES = [
    ["1", "Heim", "gestern", "BB", *HERE],  # row 2: invalid (date), first with key 1
    ["1", "Heim", "01.05.2019", "BB", *HERE],  # row 3: valid, but repeats row 2's key
    ["1", "Kiosk", "01.05.2019", "BB", *HERE],  # row 4: invalid (enum) and repeats the key
    ["2", "Dienst", "02.05.2019", "BB", *HERE],  # row 5: fine
]


def test_duplicate_of_an_invalid_first_occurrence(proj: Project) -> None:
    write_csv(proj.data / "x.csv", DUPLICATES)
    proj.pipeline("ds", "rows", SOURCE, on_error="quarantine")
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    assert problems(report) == {2: {"Eröffnet:type"}, 3: {"Nr:unique"},
                                4: {"Art:enum", "Nr:unique"}}
    assert all("duplicate of row 2" in v.message for v in report.violations
               if v.rule == "unique")
    assert [r["id"] for r in proj.rows("ds")] == [2]
    parked = {p["_row"]: p["_errors"] for p in proj.quarantine("ds")}
    assert sorted(parked) == [2, 3, 4]
    assert "duplicate of row 2 [unique]" in parked[3]
    assert "[enum]" in parked[4] and "duplicate of row 2 [unique]" in parked[4]
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (4, 1, 3)
    assert counts(dry_run(proj)) == counts(report)


def test_duplicate_of_an_invalid_row_fails_a_reject_run(proj: Project) -> None:
    write_csv(proj.data / "x.csv", [DUPLICATES[0], DUPLICATES[1]])
    proj.pipeline("ds", "rows", SOURCE, on_error="reject")
    report = proj.ingest("ds")
    assert report.status == "failed"
    assert problems(report) == {2: {"Eröffnet:type"}, 3: {"Nr:unique"}}
    assert "row 3" in report.error and "duplicate of row 2" in report.error
    assert proj.current("ds") is None


SETUPS: dict[str, tuple[list[list[str]], dict[str, Any], dict[str, Any]]] = {
    "quarantine": (ROWS, {}, {"on_error": "quarantine"}),
    "reject": (ROWS, {}, {"on_error": "reject"}),
    "filter": (ROWS, {"filter": {"Land": ["BB"]}}, {"on_error": "quarantine"}),
    "outside-skip": (ROWS, {}, {"on_error": "quarantine", "outside_extent": "skip"}),
    "filter-and-skip": (ROWS, {"filter": {"Land": "BB"}},
                        {"on_error": "quarantine", "outside_extent": "skip"}),
    "duplicates": (DUPLICATES, {}, {"on_error": "quarantine"}),
    "duplicates-reject": (DUPLICATES, {}, {"on_error": "reject"}),
}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_the_counts_add_up_and_agree(proj: Project, setup: str) -> None:
    rows, source, keys = SETUPS[setup]
    write_csv(proj.data / "x.csv", rows, extra="9;Heim\n")  # plus one malformed row
    proj.pipeline("ds", "rows", {**SOURCE, **source}, **keys)
    dry = dry_run(proj)
    report = proj.ingest("ds")
    assert report.rows_read == len(rows) + 1
    for r in (dry, report):
        assert r.rows_read == (r.rows_valid + r.rows_quarantined + r.rows_filtered
                               + r.rows_outside), counts(r)
    assert counts(dry) == counts(report)
    if report.status == "committed":
        version = proj.current("ds")
        assert (version.rows, version.quarantined) == (report.rows_valid,
                                                       report.rows_quarantined)
        assert len(proj.quarantine("ds")) == report.rows_quarantined


def summary_row(output: str) -> list[str]:
    """The cells of the summary table's one data row."""
    [row] = [line for line in output.splitlines() if line.startswith("│")]
    return [cell.strip() for cell in row.strip("│").split("│")]


def cli(project: Project, *args: str) -> Any:
    from typer.testing import CliRunner

    from hub.cli import app

    return CliRunner().invoke(app, [*args, "--root", str(project.root)],
                              env={"COLUMNS": "400"})


@pytest.mark.parametrize("setup", ["quarantine", "filter-and-skip", "duplicates"])
def test_cli_validate_and_ingest_print_the_same_counts(proj: Project, setup: str) -> None:
    rows, source, keys = SETUPS[setup]
    write_csv(proj.data / "x.csv", rows, extra="9;Heim\n")
    pipeline = proj.pipeline("ds", "rows", {**SOURCE, **source}, **keys)
    checked = cli(proj, "validate", "--pipeline", str(pipeline))
    assert checked.exit_code == 1, checked.output  # invalid rows: exit 1, nothing written
    assert proj.current("ds") is None
    ingested = cli(proj, "ingest", "ds", "--store", str(proj.store_dir))
    assert ingested.exit_code == 0, ingested.output
    # dataset, status, read, valid, quarant., skipped, ...
    dry, real = summary_row(checked.output), summary_row(ingested.output)
    assert (dry[1], real[1]) == ("invalid", "committed")
    assert dry[2:6] == real[2:6], (checked.output, ingested.output)
    read, valid, quarantined, skipped = (int(c.replace(",", "")) for c in real[2:6])
    assert read == valid + quarantined + skipped == len(rows) + 1
    assert quarantined == proj.current("ds").quarantined


def test_a_wrong_geometry_type_is_still_checked_for_the_extent(proj: Project) -> None:
    """A polygon where points are expected, and in Berlin: both are reported."""
    (proj.data / "x.csv").write_text(
        "Nr;Art;wkt\n"
        "1;Heim;POINT (13.47 51.626)\n"
        "2;Heim;POLYGON ((13.4 52.5, 13.41 52.5, 13.41 52.51, 13.4 52.5))\n"
        "3;Heim;POLYGON ((13.47 51.62, 13.48 51.62, 13.48 51.63, 13.47 51.62))\n",
        encoding="utf-8")
    proj.pipeline("ds", "rows", {"path": "data/x.csv", "crs": "EPSG:4326",
                                 "geometry": {"wkt": "wkt"},
                                 "mapping": {"id": "Nr", "kind": "Art"}},
                  on_error="quarantine")
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    assert problems(report) == {3: {"wkt:geometry", "wkt:extent"}, 4: {"wkt:geometry"}}
    assert [r["id"] for r in proj.rows("ds")] == [1]


@pytest.mark.parametrize(("source", "keys", "words"), [
    ({"filter": {"Land": "NRW"}}, {}, ["`filter` keeps none of its 3 rows"]),
    ({}, {"outside_extent": "skip"}, ["of 3 rows read, 1 break the schema and 2 were skipped"]),
])
def test_a_run_without_valid_rows_says_where_they_went(proj: Project, source: dict[str, Any],
                                                       keys: dict[str, Any],
                                                       words: list[str]) -> None:
    rows = [ROWS[4], ROWS[5], ["7", "Heim", "01.05.2019", "BB", *BERLIN]]  # bad date, 2 Berlin
    write_csv(proj.data / "x.csv", rows)
    proj.pipeline("ds", "rows", {**SOURCE, **source}, on_error="quarantine", **keys)
    report = proj.ingest("ds")
    assert report.status == "failed"
    assert all(w in report.error for w in words), report.error
    assert proj.current("ds") is None
