"""Pipeline keys that nothing would use are errors at load, never silently dropped: a
`geometry:` (or `crs:`, `outside_extent:`, `swapped_axes`) for a schema without a geometry
field, mappings, constants and casts aimed at the geometry field, a field given both a column
and a constant, unknown keys of a remote source. Each error names the pipeline file, the
source and the schema; an existing version stays current."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Project

PLAIN = [{"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
         {"name": "name", "type": "string"}]
POINTS = [*PLAIN, {"name": "ort", "type": "geojson", "geometryTypes": ["Point"]}]
CSV = "id;name;lon;lat\n1;a;13,4;51,6\n2;b;13,5;51,7\n"


@pytest.fixture
def proj(ingest_project: Project) -> Project:
    ingest_project.schema("plain", PLAIN)
    ingest_project.schema("points", POINTS)
    (ingest_project.data / "x.csv").write_text(CSV, encoding="utf-8")
    ingest_project.pipeline("ds", "plain", {"path": "data/x.csv"})
    result = ingest_project.cli("ingest", "ds")
    assert result.exit_code == 0, result
    return ingest_project


def refused(proj: Project, schema: str, source: dict[str, Any], *expected: str,
            **keys: Any) -> None:
    proj.pipeline("ds", schema, {"name": "punkte", "path": "data/x.csv", **source}, **keys)
    result = proj.cli("ingest", "ds")
    assert result.exit_code == 1, result
    text = "".join(result.output.split())
    for part in ("ds.yaml", *expected):
        assert "".join(part.split()) in text, (part, result.output)
    current = proj.current("ds")
    assert current.version == 1 and len(proj.store.versions("ds")) == 1


def test_geometry_for_a_schema_without_geometry_is_an_error(proj: Project) -> None:
    """Before, the run said "committed" and the coordinates were gone."""
    refused(proj, "plain", {"geometry": {"lon": "lon", "lat": "lat"}, "crs": "EPSG:4326"},
            "sources[1] (punkte)", "geometry, crs given", "schema 'plain' has no geometry field")


@pytest.mark.parametrize("source", [{"crs": "EPSG:25833"}, {"outside_extent": "skip"},
                                    {"options": {"swapped_axes": "fix"}}],
                         ids=["crs", "outside_extent", "swapped_axes"])
def test_location_keys_for_a_schema_without_geometry_are_errors(
        proj: Project, source: dict[str, Any]) -> None:
    key = next(iter(source)) if "options" not in source else "options.swapped_axes"
    refused(proj, "plain", source, "sources[1] (punkte)", f"{key} given",
            "schema 'plain' has no geometry field")


def test_pipeline_outside_extent_without_geometry_is_an_error(proj: Project) -> None:
    refused(proj, "plain", {}, "outside_extent", "schema 'plain' has no geometry field",
            outside_extent="skip")


@pytest.mark.parametrize("part,value", [("mapping", "lon"), ("constants", "POINT (13 51)"),
                                        ("casts", {"format": "wkt"})])
def test_keys_aimed_at_the_geometry_field_are_errors(proj: Project, part: str,
                                                     value: Any) -> None:
    refused(proj, "points", {"geometry": {"lon": "lon", "lat": "lat"}, "crs": "EPSG:4326",
                             part: {"ort": value}},
            f"sources[1].{part}", "'ort' is the geometry field of schema 'points'", "geometry:")


def test_a_field_with_a_column_and_a_constant_is_an_error(proj: Project) -> None:
    refused(proj, "plain", {"mapping": {"name": "name"}, "constants": {"name": "fest"}},
            "sources[1].constants", "['name'] also mapped")


def test_unknown_mapping_target_names_the_schema_fields(proj: Project) -> None:
    refused(proj, "plain", {"mapping": {"titel": "name"}}, "sources[1].mapping",
            "['titel'] not in schema 'plain'", "its fields: id, name")


@pytest.mark.parametrize("spec,expected", [
    ({"wfs": {"url": "http://127.0.0.1:9/wfs", "typename": "a:b", "pagesize": 10}},
     "unknown key(s) ['pagesize']"),
    ({"oapif": {"url": "http://127.0.0.1:9", "collection": "c", "sort_by": "id"}},
     "unknown key(s) ['sort_by']"),
    ({"wfs": {"url": "http://127.0.0.1:9/wfs", "typename": "a:b", "page_size": 0}},
     "sources[1].wfs.page_size"),
])
def test_unknown_or_bad_remote_source_keys_are_errors(proj: Project, spec: dict[str, Any],
                                                      expected: str) -> None:
    proj.pipeline("ds", "plain", spec)
    result = proj.cli("ingest", "ds")
    assert result.exit_code == 1, result
    text = "".join(result.output.split())
    assert "ds.yaml" in text and "".join(expected.split()) in text, result.output
    assert proj.current("ds").version == 1


def test_geometry_with_a_geometry_schema_still_loads(proj: Project) -> None:
    proj.pipeline("ds", "points", {"path": "data/x.csv", "geometry": {"lon": "lon", "lat": "lat"},
                                   "crs": "EPSG:4326"}, outside_extent="keep")
    report = proj.ingest("ds")
    assert report.status == "committed" and report.rows_valid == 2, report.error
    assert len(proj.geometries("ds")) == 2
