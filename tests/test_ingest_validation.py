"""Frictionless validation rules through the real `ingest()`: every violation names file, row
(the row as the source shows it), SOURCE column, value and rule; `reject` leaves the store as it
was, `quarantine` commits the valid rows and keeps the others in quarantine.parquet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import Project

FIELDS = [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "name", "type": "string",
     "constraints": {"required": True, "minLength": 2, "maxLength": 12}},
    {"name": "kind", "type": "string", "constraints": {"enum": ["Heim", "Dienst"]}},
    {"name": "places", "type": "integer", "constraints": {"minimum": 0, "maximum": 500}},
    {"name": "share", "type": "number", "constraints": {"minimum": 0, "maximum": 1}},
    {"name": "active", "type": "boolean"},
    {"name": "opened", "type": "date", "format": "%d.%m.%Y"},
    {"name": "checked", "type": "datetime"},
    {"name": "plz", "type": "string", "constraints": {"pattern": "[0-9]{5}"}},
]
# schema field <- source column: violations must name the source column
MAPPING = {"id": "Nr", "name": "Bezeichnung", "kind": "Art", "places": "Plätze",
           "share": "Anteil", "active": "Aktiv", "opened": "Eröffnet", "checked": "Geprüft",
           "plz": "PLZ"}
HEADER = list(MAPPING.values())
GOOD = [
    ["1", "Haus Linde", "Heim", "24", "0,5", "true", "01.02.2020", "2024-03-01T12:30:00Z",
     "03238"],
    ["2", "Pflegedienst", "Dienst", "0", "1", "false", "29.02.2024", "2024-03-02T08:00:00Z",
     "04910"],
    ["3", "Am Park", "Heim", "500", "0", "", "", "", ""],
]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.write_text("\n".join(";".join(r) for r in [HEADER, *rows]) + "\n", encoding="utf-8")


def with_cell(row: int, column: str, value: str) -> list[list[str]]:
    """The good rows with one cell replaced (row: 0-based data row)."""
    rows = [list(r) for r in GOOD]
    rows[row][HEADER.index(column)] = value
    return rows


@pytest.fixture
def rules(ingest_project: Project) -> Project:
    project = ingest_project
    project.schema("rules", FIELDS)
    return project


def make_pipeline(project: Project, on_error: str, **source: object) -> None:
    project.pipeline("ds", "rules", {"path": "data/x.csv", "mapping": MAPPING, **source},
                     on_error=on_error)


def test_good_rows_are_typed(rules: Project) -> None:
    write_csv(rules.data / "x.csv", GOOD)
    make_pipeline(rules, "reject")
    report = rules.ingest("ds")
    assert report.status == "committed", report.error
    rows = rules.rows("ds")
    assert rows[0] == {
        "id": 1, "name": "Haus Linde", "kind": "Heim", "places": 24, "share": 0.5,
        "active": True, "opened": dt.date(2020, 2, 1),
        "checked": dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC), "plz": "03238"}
    assert rows[1]["active"] is False and rows[1]["opened"] == dt.date(2024, 2, 29)
    assert rows[2] == {"id": 3, "name": "Am Park", "kind": "Heim", "places": 500, "share": 0.0,
                       "active": None, "opened": None, "checked": None, "plz": None}
    schema = pq.read_schema(rules.current("ds").data_file)
    assert str(schema.field("opened").type) == "date32[day]"
    assert str(schema.field("checked").type) == "timestamp[us, tz=UTC]"


CASES = [
    ("Nr", "eins", "type"),
    ("Nr", "", "required"),
    ("Nr", "99999999999999999999999", "type"),
    ("Plätze", "12,5", "type"),
    ("Anteil", "viel", "type"),
    ("Aktiv", "vielleicht", "type"),
    ("Eröffnet", "2020-02-01", "type"),
    ("Eröffnet", "30.02.2020", "type"),
    ("Geprüft", "gestern", "type"),
    ("Bezeichnung", "", "required"),
    ("Art", "Kiosk", "enum"),
    ("Plätze", "-1", "minimum"),
    ("Plätze", "501", "maximum"),
    ("Anteil", "-0,1", "minimum"),
    ("Anteil", "1,5", "maximum"),
    ("Bezeichnung", "A", "minLength"),
    ("Bezeichnung", "Ein viel zu langer Name", "maxLength"),
    ("PLZ", "0323", "pattern"),
    ("PLZ", "03238x", "pattern"),
]
CASE_IDS = [f"{rule}-{col}-{val or 'empty'}" for col, val, rule in CASES]


@pytest.mark.parametrize(("column", "value", "rule"), CASES, ids=CASE_IDS)
def test_rule_quarantine(rules: Project, column: str, value: str, rule: str) -> None:
    write_csv(rules.data / "x.csv", with_cell(1, column, value))  # the bad row is line 3
    make_pipeline(rules, "quarantine")
    report = rules.ingest("ds")
    assert report.status == "committed", report.error
    assert [(v.file, v.row, v.column, v.rule) for v in report.violations] == [
        ("x.csv", 3, column, rule)], [str(v) for v in report.violations]
    if value:
        assert report.violations[0].value == value
    assert report.rows_valid == 2 and report.rows_quarantined == 1
    version = rules.current("ds")
    assert version.rows == 2 and version.quarantined == 1
    assert [r["name"] for r in rules.rows("ds")] == [GOOD[0][1], GOOD[2][1]]
    [parked] = rules.quarantine("ds")
    assert parked["_row"] == 3 and parked["_file"] == "x.csv"
    assert f"[{rule}]" in parked["_errors"]


@pytest.mark.parametrize(("column", "value", "rule"), CASES, ids=CASE_IDS)
def test_rule_reject_keeps_previous_version(rules: Project, column: str, value: str,
                                            rule: str) -> None:
    write_csv(rules.data / "x.csv", GOOD)
    make_pipeline(rules, "reject")
    assert rules.ingest("ds").status == "committed"
    before = rules.current("ds")

    write_csv(rules.data / "x.csv", with_cell(1, column, value))
    report = rules.ingest("ds")
    assert report.status == "failed"
    [v] = report.violations
    assert (v.file, v.row, v.column, v.rule) == ("x.csv", 3, column, rule)
    assert "x.csv, row 3" in report.error and repr(column) in report.error
    after = rules.current("ds")
    assert (after.version, after.checksum) == (before.version, before.checksum)
    assert len(rules.store.versions("ds")) == 1
    assert pq.read_table(after.data_file).num_rows == 3


def test_empty_optional_enum_cell_is_not_an_enum_violation(rules: Project) -> None:
    """Constraints other than `required` do not apply to missing values (Frictionless)."""
    write_csv(rules.data / "x.csv", with_cell(2, "Art", ""))
    make_pipeline(rules, "reject")
    report = rules.ingest("ds")
    assert report.status == "committed", report.error
    assert rules.rows("ds")[2]["kind"] is None


def test_several_violations_in_one_row_are_all_reported(rules: Project) -> None:
    rows = with_cell(0, "Plätze", "-5")
    rows[0][HEADER.index("PLZ")] = "abc"
    rows[0][HEADER.index("Art")] = "Bude"
    write_csv(rules.data / "x.csv", rows)
    make_pipeline(rules, "quarantine")
    report = rules.ingest("ds")
    assert report.status == "committed"
    assert sorted((v.row, v.column, v.rule) for v in report.violations) == [
        (2, "Art", "enum"), (2, "PLZ", "pattern"), (2, "Plätze", "minimum")]
    [parked] = rules.quarantine("ds")
    assert parked["_row"] == 2
    for rule in ("enum", "pattern", "minimum"):
        assert f"[{rule}]" in parked["_errors"]
    assert report.rows_quarantined == 1  # one row, three violations


def test_one_bad_datetime_does_not_invalidate_the_good_ones(rules: Project) -> None:
    """The good rows hold zoned timestamps ("…Z"); only the bad cell is a violation."""
    write_csv(rules.data / "x.csv", with_cell(2, "Geprüft", "gestern"))
    make_pipeline(rules, "quarantine")
    report = rules.ingest("ds")
    assert [(v.row, v.column, v.value) for v in report.violations] == [(4, "Geprüft",
                                                                         "gestern")]
    assert [r["id"] for r in rules.rows("ds")] == [1, 2]


def test_datetime_with_offset_and_naive(rules: Project) -> None:
    rows = [list(r) for r in GOOD]
    rows[0][HEADER.index("Geprüft")] = "2024-03-01T12:30:00+01:00"
    rows[1][HEADER.index("Geprüft")] = "2024-03-01T12:30:00"
    write_csv(rules.data / "x.csv", rows)
    make_pipeline(rules, "reject")
    report = rules.ingest("ds")
    assert report.status == "committed", report.error
    checked = [r["checked"] for r in rules.rows("ds")]
    assert checked[0] == dt.datetime(2024, 3, 1, 11, 30, tzinfo=dt.UTC)
    assert checked[1] == dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC)


def test_missing_values_from_schema(ingest_project: Project) -> None:
    project = ingest_project
    project.schema("mv", FIELDS, missingValues=["", "-", "k.A."])
    write_csv(project.data / "x.csv", with_cell(0, "Plätze", "k.A."))
    project.pipeline("ds", "mv", {"path": "data/x.csv", "mapping": MAPPING})
    report = project.ingest("ds")
    assert report.status == "committed", report.error
    assert project.rows("ds")[0]["places"] is None


# -- unique ----------------------------------------------------------------------------------

DUPLICATED = [*GOOD, ["2", "Zweitname", "Heim", "1", "0", "", "", "", ""]]  # line 5 repeats 2


def test_duplicate_keys_reject_names_both_rows(rules: Project) -> None:
    write_csv(rules.data / "x.csv", GOOD)
    make_pipeline(rules, "reject")
    assert rules.ingest("ds").status == "committed"
    before = rules.current("ds")

    write_csv(rules.data / "x.csv", DUPLICATED)
    report = rules.ingest("ds")
    assert report.status == "failed"
    [v] = report.violations
    assert (v.file, v.row, v.rule, v.value) == ("x.csv", 5, "unique", "2")
    assert "row 3" in v.message  # the first occurrence
    assert "row 5" in report.error and "row 3" in report.error
    after = rules.current("ds")
    assert (after.version, after.checksum) == (before.version, before.checksum)
    assert pq.read_table(after.data_file).column("id").to_pylist() == [1, 2, 3]


def test_duplicate_key_column_is_the_source_column(rules: Project) -> None:
    write_csv(rules.data / "x.csv", DUPLICATED)
    make_pipeline(rules, "quarantine")
    report = rules.ingest("ds")
    [v] = report.violations
    assert v.column == "Nr"


def test_duplicate_keys_quarantine_later_duplicate(rules: Project) -> None:
    write_csv(rules.data / "x.csv", DUPLICATED)
    make_pipeline(rules, "quarantine")
    report = rules.ingest("ds")
    assert report.status == "committed", report.error
    assert report.rows_valid == 3 and report.rows_quarantined == 1
    rows = rules.rows("ds")
    assert [(r["id"], r["name"]) for r in rows] == [(1, "Haus Linde"), (2, "Pflegedienst"),
                                                   (3, "Am Park")]
    [parked] = rules.quarantine("ds")
    assert (parked["_row"], parked["_file"]) == (5, "x.csv")
    assert "unique" in parked["_errors"]
    assert parked["name"] == "Zweitname"
    version = rules.current("ds")
    assert version.rows == 3 and version.quarantined == 1


def test_duplicate_keys_across_files(rules: Project) -> None:
    write_csv(rules.data / "a.csv", GOOD[:2])
    write_csv(rules.data / "b.csv", [GOOD[2], ["1", "Nochmal", "Heim", "", "", "", "", "", ""]])
    rules.pipeline("ds", "rules", {"path": "data/*.csv", "mapping": MAPPING},
                   on_error="quarantine")
    report = rules.ingest("ds")
    assert report.status == "committed", report.error
    [v] = report.violations
    assert (v.file, v.row, v.rule) == ("b.csv", 3, "unique")
    assert "a.csv" in v.message or "row 2" in v.message
    [parked] = rules.quarantine("ds")
    assert (parked["_file"], parked["_row"]) == ("b.csv", 3)


def test_composite_primary_key(ingest_project: Project) -> None:
    project = ingest_project
    project.schema("pk", [{"name": "ags", "type": "string"}, {"name": "jahr", "type": "integer"},
                          {"name": "wert", "type": "number"}], primaryKey=["ags", "jahr"])
    (project.data / "x.csv").write_text(
        "ags;jahr;wert\n12062140;2023;1\n12062140;2024;2\n12062141;2023;3\n12062140;2024;4\n",
        encoding="utf-8")
    project.pipeline("ds", "pk", {"path": "data/x.csv"}, on_error="quarantine")
    report = project.ingest("ds")
    assert [(v.row, v.rule) for v in report.violations] == [(5, "unique")]
    assert [r["wert"] for r in project.rows("ds")] == [1, 2, 3]


def test_quarantine_keeps_raw_values_and_errors(rules: Project) -> None:
    rows = with_cell(0, "Anteil", "zwei")
    rows[2][HEADER.index("Eröffnet")] = "1.1.99x"
    write_csv(rules.data / "x.csv", rows)
    make_pipeline(rules, "quarantine")
    report = rules.ingest("ds")
    assert report.status == "committed"
    parked = rules.quarantine("ds")
    assert [(p["_file"], p["_row"]) for p in parked] == [("x.csv", 2), ("x.csv", 4)]
    assert parked[0]["share"] == "zwei" and parked[1]["opened"] == "1.1.99x"
    assert "share" in parked[0]["_errors"] and "[type]" in parked[0]["_errors"]
    assert [r["id"] for r in rules.rows("ds")] == [2]


def test_all_rows_invalid_fails_even_with_quarantine(rules: Project) -> None:
    rows = [[*r] for r in GOOD]
    for r in rows:
        r[HEADER.index("Art")] = "Unbekannt"
    write_csv(rules.data / "x.csv", rows)
    make_pipeline(rules, "quarantine")
    report = rules.ingest("ds")
    assert report.status == "failed"
    assert rules.current("ds") is None
