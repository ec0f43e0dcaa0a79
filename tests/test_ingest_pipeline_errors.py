"""Pipeline definition errors, through the CLI: exit != 0, a message naming the file and the key,
and nothing written to the store (an existing version stays current)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Project

from hub.errors import PipelineError
from hub.ingest.pipeline import load_pipeline

FIELDS = [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "name", "type": "string"},
]


@pytest.fixture
def proj(ingest_project: Project) -> Project:
    project = ingest_project
    project.schema("plain", FIELDS)
    (project.data / "x.csv").write_text("id;name\n1;a\n2;b\n", encoding="utf-8")
    return project


def good_version(project: Project) -> Any:
    project.pipeline("ds", "plain", {"path": "data/x.csv"})
    result = project.cli("ingest", "ds")
    assert result.exit_code == 0, result
    return project.current("ds")


def write_raw(project: Project, text: str) -> Path:
    path = project.root / "pipelines" / "ds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def assert_refused(project: Project, before: Any, *expected: str) -> None:
    result = project.cli("ingest", "ds")
    assert result.exit_code != 0, result
    assert isinstance(result.exception, SystemExit), result
    squashed = "".join(result.output.split())
    assert "ds.yaml" in squashed, result.output
    for text in expected:
        assert "".join(text.split()) in squashed, (text, result.output)
    after = project.current("ds")
    if before is None:
        assert after is None
    else:
        assert (after.version, after.checksum) == (before.version, before.checksum)
        assert len(project.store.versions("ds")) == 1


GOOD_HEAD = "title: T\norganization: O\nschema: plain\n"


def test_yaml_syntax_error(proj: Project) -> None:
    before = good_version(proj)
    write_raw(proj, GOOD_HEAD + "source:\n  path: data/x.csv\n   mapping: {id: [\n")
    assert_refused(proj, before, "YAML")


def test_yaml_syntax_error_with_tabs(proj: Project) -> None:
    write_raw(proj, GOOD_HEAD + "source:\n\tpath: data/x.csv\n")
    assert_refused(proj, None, "YAML")


def test_yaml_not_a_mapping(proj: Project) -> None:
    write_raw(proj, "- just\n- a list\n")
    assert_refused(proj, None, "mapping")


def test_unknown_top_level_key(proj: Project) -> None:
    before = good_version(proj)
    proj.pipeline("ds", "plain", {"path": "data/x.csv"}, on_eror="quarantine")
    assert_refused(proj, before, "on_eror", "unknown")


def test_unknown_source_key(proj: Project) -> None:
    before = good_version(proj)
    proj.pipeline("ds", "plain", {"path": "data/x.csv", "mapings": {"id": "Nr"}})
    assert_refused(proj, before, "sources[1]", "mapings")


def test_unknown_schema_name(proj: Project) -> None:
    before = good_version(proj)
    proj.pipeline("ds", "nosuchschema", {"path": "data/x.csv"})
    assert_refused(proj, before, "nosuchschema")


def test_invalid_on_error(proj: Project) -> None:
    before = good_version(proj)
    proj.pipeline("ds", "plain", {"path": "data/x.csv"}, on_error="ignore")
    assert_refused(proj, before, "on_error", "'ignore'", "reject", "quarantine")


def test_invalid_outside_extent(proj: Project) -> None:
    proj.pipeline("ds", "plain", {"path": "data/x.csv"}, outside_extent="drop")
    assert_refused(proj, None, "outside_extent", "'drop'")


def test_mapping_to_field_not_in_schema(proj: Project) -> None:
    before = good_version(proj)
    proj.pipeline("ds", "plain", {"path": "data/x.csv", "mapping": {"identifier": "id"}})
    assert_refused(proj, before, "mapping", "identifier", "plain")


def test_casts_for_field_not_in_schema(proj: Project) -> None:
    proj.pipeline("ds", "plain", {"path": "data/x.csv", "casts": {"datum": {"format": "%d"}}})
    assert_refused(proj, None, "casts", "datum")


def test_unknown_cast_option(proj: Project) -> None:
    proj.pipeline("ds", "plain", {"path": "data/x.csv", "casts": {"id": {"base": 16}}})
    assert_refused(proj, None, "casts", "base")


def test_unknown_format(proj: Project) -> None:
    proj.pipeline("ds", "plain", {"path": "data/x.csv", "format": "excel"})
    assert_refused(proj, None, "format", "excel")


def test_source_without_location(proj: Project) -> None:
    proj.pipeline("ds", "plain", {"format": "csv"})
    assert_refused(proj, None, "sources[1]")


def test_missing_title(proj: Project) -> None:
    write_raw(proj, "organization: O\nschema: plain\nsource:\n  path: data/x.csv\n")
    assert_refused(proj, None, "title")


def test_bad_url_scheme(proj: Project) -> None:
    proj.pipeline("ds", "plain", {"url": "ftp://example.org/x.csv"})
    assert_refused(proj, None, "url", "http")


def test_unknown_csv_option_fails_the_run(proj: Project) -> None:
    before = good_version(proj)
    proj.pipeline("ds", "plain", {"path": "data/x.csv", "options": {"sepparator": ";"}})
    result = proj.cli("ingest", "ds")
    assert result.exit_code != 0
    assert "sepparator" in result.text and "x.csv" in result.text
    assert proj.current("ds").checksum == before.checksum


def test_load_pipeline_errors_name_the_file(proj: Project) -> None:
    path = write_raw(proj, GOOD_HEAD + "source: [unclosed\n")
    with pytest.raises(PipelineError, match=r"ds\.yaml.*YAML syntax error"):
        load_pipeline(path, proj.root / "schemas")


def test_unknown_key_that_looks_like_console_markup(proj: Project) -> None:
    """The message is shown as text: a key such as "[/x]" must not crash the CLI."""
    write_raw(proj, GOOD_HEAD + 'source:\n  path: data/x.csv\n"[/x]": 1\n')
    assert_refused(proj, None, "[/x]", "unknown")
