"""The `hub` command as a data manager uses it: help, ingest --all, datasets, history,
rollback, quarantine (list and export) and validate (a dry run that writes nothing)."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.store import Store

SCHEMA = {"fields": [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "art", "type": "string", "constraints": {"enum": ["Tagespflege", "Hospiz"]}},
    {"name": "plaetze", "type": "integer", "constraints": {"minimum": 0}},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]},
]}
GOOD = "id;art;plaetze;lon;lat\n1;Tagespflege;12;13,3;51,6\n2;Hospiz;8;13,4;51,7\n"
BAD = GOOD + "3;Kiosk;-1;13,5;51,5\n"

runner = CliRunner()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for sub in ("schemas", "pipelines", "data"):
        (tmp_path / sub).mkdir()
    (tmp_path / "schemas" / "pflege.json").write_text(json.dumps(SCHEMA))
    for name, policy in (("pflege", "quarantine"), ("pflege-streng", "reject")):
        (tmp_path / "pipelines" / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            dataset: {name}
            title: Pflege
            organization: sozialamt
            schema: pflege
            on_error: {policy}
            outside_extent: keep
            source:
              path: ../data/pflege.csv
              geometry: {{lon: lon, lat: lat}}
              crs: EPSG:4326
            """))
    (tmp_path / "data" / "pflege.csv").write_text(GOOD, encoding="utf-8")
    return tmp_path


def hub(root: Path, *args: str):
    store = [] if args[0] == "validate" else ["--store", str(root / "store")]  # writes nothing
    return runner.invoke(app, [*args, "--root", str(root), *store])


@pytest.mark.parametrize("command", [[], ["ingest"], ["validate"], ["datasets"], ["history"],
                                     ["rollback"], ["quarantine"], ["serve"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_ingest_all_datasets_history_rollback(root: Path) -> None:
    first = hub(root, "ingest", "--all")
    assert first.exit_code == 0, first.output
    assert "committed" in first.output and "pflege-streng" in first.output
    (root / "data" / "pflege.csv").write_text(GOOD + "3;Hospiz;4;13,5;51,5\n", encoding="utf-8")
    assert hub(root, "ingest", "pflege").exit_code == 0
    listing = hub(root, "datasets")
    assert listing.exit_code == 0 and "pflege" in listing.output and "v2" in listing.output
    history = hub(root, "history", "pflege")
    assert history.exit_code == 0 and "v1" in history.output and "v2" in history.output
    back = hub(root, "rollback", "pflege", "1")
    assert back.exit_code == 0 and "now serving v1" in back.output
    assert Store(root / "store").current("pflege").rows == 2
    assert "rollback" in hub(root, "history", "pflege").output
    missing = hub(root, "history", "gibt-es-nicht")
    assert missing.exit_code == 1 and "unknown dataset 'gibt-es-nicht'" in missing.output


def test_failed_run_exits_non_zero_and_names_the_problem(root: Path) -> None:
    (root / "data" / "pflege.csv").write_text(BAD, encoding="utf-8")
    result = hub(root, "ingest", "pflege-streng")
    assert result.exit_code == 1
    assert "pflege.csv, row 4, column 'art'" in result.output
    assert "[rule: enum]" in result.output and "[rule: minimum]" in result.output
    assert Store(root / "store").current("pflege-streng") is None


def test_quarantine_lists_and_exports(root: Path, tmp_path: Path) -> None:
    (root / "data" / "pflege.csv").write_text(BAD, encoding="utf-8")
    assert hub(root, "ingest", "pflege").exit_code == 0
    listed = hub(root, "quarantine", "pflege")
    assert listed.exit_code == 0 and "1 rows" in listed.output and "enum" in listed.output
    target = tmp_path / "quarantaene.csv"
    exported = hub(root, "quarantine", "pflege", "--export", str(target))
    assert exported.exit_code == 0
    [row] = list(csv.DictReader(target.open(encoding="utf-8")))
    assert row["_row"] == "4" and row["art"] == "Kiosk" and row["plaetze"] == "-1"
    assert "not one of the allowed values" in row["_errors"]


def test_validate_is_a_dry_run(root: Path) -> None:
    good = root / "data" / "pflege.csv"
    ok = hub(root, "validate", str(good), "--schema", "pflege", "--crs", "EPSG:4326",
             "--lon", "lon", "--lat", "lat")
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.output
    good.write_text(BAD, encoding="utf-8")
    bad = hub(root, "validate", str(good), "--schema", "pflege", "--crs", "EPSG:4326",
              "--lon", "lon", "--lat", "lat")
    assert bad.exit_code == 1 and "row 4" in bad.output
    assert not (root / "store" / "data").exists() or not any((root / "store" / "data").iterdir())
