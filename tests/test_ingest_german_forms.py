"""German conventions read by default, through the real `ingest()` and `hub validate`.

Dates `01.05.2019`, booleans `ja`/`nein`, numbers `1.234,5` and integers `1.234` need no cast;
only unambiguous forms are read: `1.234` beside decimal points, a column mixing `1,5` and `1.5`,
and `01/02/2019` are reported with the setting that decides them. Every type error names the
expected form and the `casts` setting.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import Project

from hub.schema import Field, NumberStyle, check_columns

FIELDS = [
    {"name": "nr", "type": "integer"},
    {"name": "einwohner", "type": "integer"},
    {"name": "betrag", "type": "number"},
    {"name": "offen", "type": "boolean"},
    {"name": "seit", "type": "date"},
    {"name": "geprueft", "type": "datetime"},
]
HEADER = ["nr", "einwohner", "betrag", "offen", "seit", "geprueft"]
GERMAN = [
    ["1", "1.234", "1.234,5", "ja", "01.05.2019", "01.05.2019 14:30"],
    ["2", "12.345.678", "12,25", "Nein", "1.5.2019", "1.5.2019 9:05:07"],
    ["3", "7", "-0,5", "J", "2019-05-02", "2019-05-02T08:00:00Z"],
    ["4", "999", "3", "falsch", "29.02.2024", ""],
]


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ";") -> None:
    path.write_text("\n".join(delimiter.join(r) for r in [HEADER, *rows]) + "\n",
                    encoding="utf-8")


@pytest.fixture
def proj(ingest_project: Project) -> Project:
    ingest_project.schema("de", FIELDS)
    return ingest_project


def test_german_forms_need_no_casts(proj: Project) -> None:
    write_csv(proj.data / "x.csv", GERMAN)
    proj.pipeline("ds", "de", {"path": "data/x.csv"})  # on_error: reject, no casts
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    utc = dt.UTC
    assert proj.rows("ds") == [
        {"nr": 1, "einwohner": 1234, "betrag": 1234.5, "offen": True,
         "seit": dt.date(2019, 5, 1), "geprueft": dt.datetime(2019, 5, 1, 14, 30, tzinfo=utc)},
        {"nr": 2, "einwohner": 12345678, "betrag": 12.25, "offen": False,
         "seit": dt.date(2019, 5, 1),
         "geprueft": dt.datetime(2019, 5, 1, 9, 5, 7, tzinfo=utc)},
        {"nr": 3, "einwohner": 7, "betrag": -0.5, "offen": True, "seit": dt.date(2019, 5, 2),
         "geprueft": dt.datetime(2019, 5, 2, 8, 0, tzinfo=utc)},
        {"nr": 4, "einwohner": 999, "betrag": 3.0, "offen": False,
         "seit": dt.date(2024, 2, 29), "geprueft": None},
    ]


def test_decimal_points_still_read(proj: Project) -> None:
    rows = [["1", "5", "0.125", "true", "2019-05-01", ""], ["2", "6", "1234.5", "0", "", ""]]
    write_csv(proj.data / "x.csv", rows, delimiter=",")
    proj.pipeline("ds", "de", {"path": "data/x.csv"})
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    assert [r["betrag"] for r in proj.rows("ds")] == [0.125, 1234.5]


def betrag(values: list[str]) -> list[list[str]]:
    return [[str(i), "1", v, "", "", ""] for i, v in enumerate(values, 1)]


@pytest.mark.parametrize(("values", "reported", "words"), [
    # 1.234 beside decimal points: 1234 or 1.234?
    (["1.5", "2.75", "1.234"], {"1.234"}, ["ambiguous", "groupChar: '.'"]),
    # nothing in the column tells
    (["1.234", "2.500"], {"1.234", "2.500"}, ["ambiguous", "decimalChar"]),
    # mostly decimal commas: the decimal point is the odd one out
    (["1.234,5", "2,5", "1.5"], {"1.5"}, ["mixes decimal commas", "decimalChar: ','"]),
    # as many of each: both sides are reported
    (["1,5", "1.5"], {"1,5", "1.5"}, ["mixes decimal commas"]),
])
def test_ambiguous_numbers_are_reported(proj: Project, values: list[str], reported: set[str],
                                        words: list[str]) -> None:
    write_csv(proj.data / "x.csv", betrag(values))
    proj.pipeline("ds", "de", {"path": "data/x.csv"}, on_error="quarantine")
    report = proj.ingest("ds")
    assert {v.value for v in report.violations} == reported
    assert {(v.column, v.rule) for v in report.violations} == {("betrag", "type")}
    for v in report.violations:
        assert all(w in v.message for w in words), v.message
    assert report.rows_quarantined == len(reported)


def test_three_decimals_that_cannot_be_grouped_settle_the_point(proj: Project) -> None:
    """0.125 shows the column writes three decimals after a point: 1.234 is then 1.234."""
    write_csv(proj.data / "x.csv", betrag(["1.234", "-194.349", "0.125", "2.5"]))
    proj.pipeline("ds", "de", {"path": "data/x.csv"})
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    assert [r["betrag"] for r in proj.rows("ds")] == [1.234, -194.349, 0.125, 2.5]


def test_a_cast_settles_an_ambiguous_column(proj: Project) -> None:
    write_csv(proj.data / "x.csv", betrag(["1.234", "2.500"]))
    proj.pipeline("ds", "de", {"path": "data/x.csv",
                               "casts": {"betrag": {"decimalChar": ",", "groupChar": "."}}})
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    assert [r["betrag"] for r in proj.rows("ds")] == [1234.0, 2500.0]


def test_the_column_decides_not_the_cell_across_batches() -> None:
    """A number column's decimal mark comes from all values read so far, batch after batch."""
    f = Field("betrag", "number")
    styles: dict[str, NumberStyle] = {}

    def batch(values: list[str]) -> tuple[list[Any], list[str]]:
        checked = check_columns({"betrag": pa.array(values)}, [f], ("",), len(values), styles)
        return checked.columns["betrag"].to_pylist(), [p.message for p in checked.problems]

    assert batch(["1.234,5", "2,5"]) == ([1234.5, 2.5], [])
    assert batch(["1.234", "7"]) == ([1234.0, 7.0], [])  # the column has decimal commas
    values, messages = batch(["1.5"])
    assert values == [None] and "mixes decimal commas" in messages[0]
    fresh = check_columns({"betrag": pa.array(["1.234", "7"])}, [f], ("",), 2)
    assert fresh.columns["betrag"].to_pylist() == [None, 7.0]  # alone, 1.234 is ambiguous


@pytest.mark.parametrize("value", ["01/02/2019", "1/2/2019"])
def test_slashed_dates_are_ambiguous(proj: Project, value: str) -> None:
    rows = [list(r) for r in GERMAN]
    rows[1][HEADER.index("seit")] = value
    write_csv(proj.data / "x.csv", rows)
    proj.pipeline("ds", "de", {"path": "data/x.csv"}, on_error="quarantine")
    report = proj.ingest("ds")
    [v] = report.violations
    assert (v.row, v.column, v.rule, v.value) == (3, "seit", "type", value)
    assert "ambiguous" in v.message and "casts: {seit: {format: '%d/%m/%Y'}}" in v.message


TYPE_ERRORS = [  # column, bad value, what the message must show
    ("nr", "sieben", ["1234", "1.234", "casts: {nr: {missingValues"]),
    ("betrag", "viel", ["1234.5", "1.234,5", "casts: {betrag: {decimalChar: ','"]),
    ("offen", "vielleicht", ["ja", "nein", "casts: {offen: {trueValues"]),
    ("seit", "31.02.2019", ["2019-05-01", "01.05.2019", "casts: {seit: {format:"]),
    ("geprueft", "morgen früh", ["01.05.2019 14:30", "casts: {geprueft: {format:"]),
]


@pytest.mark.parametrize(("column", "value", "shown"), TYPE_ERRORS,
                         ids=[c for c, _, _ in TYPE_ERRORS])
def test_type_errors_name_the_form_and_the_setting(proj: Project, column: str, value: str,
                                                  shown: list[str]) -> None:
    rows = [list(r) for r in GERMAN]
    rows[0][HEADER.index(column)] = value
    write_csv(proj.data / "x.csv", rows)
    proj.pipeline("ds", "de", {"path": "data/x.csv"})
    report = proj.ingest("ds")
    assert report.status == "failed"
    [v] = report.violations
    assert (v.row, v.column, v.rule, v.value) == (2, column, "type", value)
    assert all(s in v.message for s in shown), v.message
    assert "in the pipeline" in v.message


def test_explicit_format_error_names_its_format(proj: Project) -> None:
    proj.schema("fmt", [{"name": "seit", "type": "date", "format": "%Y%m%d"}])
    (proj.data / "x.csv").write_text("seit\n20190501\n01.05.2019\n", encoding="utf-8")
    proj.pipeline("ds", "fmt", {"path": "data/x.csv"})
    [v] = proj.ingest("ds").violations
    assert "'%Y%m%d'" in v.message and "20190501" in v.message and "casts" in v.message


def cli(project: Project, *args: str) -> Any:
    from typer.testing import CliRunner

    from hub.cli import app

    return CliRunner().invoke(app, [*args, "--root", str(project.root)],
                              env={"COLUMNS": "400"})


def test_validate_uses_the_pipelines_casts(proj: Project) -> None:
    """`hub validate --pipeline` reads the file as `hub ingest` would: with its casts."""
    rows = [list(r) for r in GERMAN]
    rows[1][HEADER.index("seit")] = "01/05/2019"
    rows[1][HEADER.index("offen")] = "x"
    other = proj.root / "elsewhere.csv"
    write_csv(other, rows)
    plain = proj.pipeline("plain", "de", {"path": "data/x.csv"})
    bad = cli(proj, "validate", str(other), "--pipeline", str(plain))
    assert bad.exit_code == 1, bad.output
    assert "ambiguous date" in bad.output and "'x'" in bad.output

    proj.pipeline("cast", "de", {"path": "data/x.csv", "casts": {
        "seit": {"format": "%d/%m/%Y"}, "offen": {"trueValues": ["x", "ja"],
                                                  "falseValues": ["nein", "Nein", "falsch"]}}})
    rows = [list(r) for r in GERMAN]
    for r in rows:
        r[HEADER.index("seit")] = "01/05/2019"
    rows[2][HEADER.index("offen")] = "x"
    write_csv(other, rows)
    good = cli(proj, "validate", str(other), "--pipeline", "cast")  # a dataset name works too
    assert good.exit_code == 0, good.output
    assert "valid" in good.output and "elsewhere.csv" in good.output
    assert proj.current("cast") is None  # a dry run writes nothing


def test_validate_refuses_unclear_arguments(proj: Project) -> None:
    write_csv(proj.data / "x.csv", GERMAN)
    path = proj.pipeline("ds", "de", {"path": "data/x.csv"})
    assert cli(proj, "validate", "--pipeline", str(path)).exit_code == 0
    both = cli(proj, "validate", str(proj.data / "x.csv"), "--pipeline", str(path),
               "--schema", "de")
    assert both.exit_code == 1 and "--pipeline" in both.output
    crs = cli(proj, "validate", "--pipeline", str(path), "--crs", "EPSG:25833")
    assert crs.exit_code == 1 and "the pipeline sets" in crs.output
    two = proj.pipeline("two", "de", sources=[{"path": "data/x.csv"}, {"path": "data/x.csv"}])
    many = cli(proj, "validate", str(proj.data / "x.csv"), "--pipeline", str(two))
    assert many.exit_code == 1 and "2 sources" in many.output


@pytest.mark.parametrize("source", [
    {"options": {"decimal": ","}},  # the reader option, for every number field
    {"casts": {"betrag": {"decimalChar": ","}}},
])
def test_a_stated_decimal_comma_does_not_read_points(proj: Project,
                                                     source: dict[str, Any]) -> None:
    """With only a decimal comma stated, 1.234 is neither 1234 nor 1.234: it is reported."""
    write_csv(proj.data / "x.csv", betrag(["1,5", "1.234", "2"]))
    proj.pipeline("ds", "de", {"path": "data/x.csv", **source}, on_error="quarantine")
    report = proj.ingest("ds")
    [v] = report.violations
    assert (v.row, v.column, v.value, v.rule) == (3, "betrag", "1.234", "type")
    assert "decimal mark ','" in v.message
    assert [r["betrag"] for r in proj.rows("ds")] == [1.5, 2.0]
