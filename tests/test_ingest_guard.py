"""The guard against near-empty versions, with the real inputs that slipped through before:
the BKG VG5000 districts of Brandenburg and Saxony and the BNetzA charging register, ingested by
a pipeline left at its defaults in the demo district. Such a run fails with a message that says
why, with the numbers and the setting that applies; the store keeps its current version, the
failed run is in the history, and `hub ingest --force` commits it anyway."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

pytestmark = pytest.mark.guard

REAL_DATA = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "real"

KREISE = REAL_DATA / "bkg-vg5000-2021" / "vg5000_kreise_bb_sn.geojson"
GEMEINDEN = REAL_DATA / "bkg-vg5000-2021" / "vg5000_gemeinden_bb.geojson"
REGISTER = (REAL_DATA / "bnetza-ladesaeulenregister-2019"
            / "ladesaeulenregister_2019-07-19_brandenburg_sachsen.csv")
#: the test district's extent, catalog/district.yaml bbox plus 5 km (see conftest.DISTRICT_BBOX)
EXTENT_TEXT = "[12.977, 51.323, 13.963, 51.929]"

AREAS = [{"name": "ars", "type": "string", "constraints": {"required": True, "unique": True}},
         {"name": "name", "type": "string"},
         {"name": "geometry", "type": "geojson", "geometryTypes": ["Polygon", "MultiPolygon"]}]
STATIONS = [{"name": "betreiber", "type": "string"},
            {"name": "adresse", "type": "string"},
            {"name": "ladepunkte", "type": "integer"},
            {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]
REGISTER_SOURCE = {"path": "data/register.csv", "geometry": {"lon": "Längengrad [DG]",
                                                              "lat": "Breitengrad [DG]"},
                   "crs": "EPSG:4326",
                   "mapping": {"betreiber": "Betreiber", "adresse": "Adresse",
                               "ladepunkte": "Anzahl Ladepunkte"}}


@pytest.fixture
def proj(ingest_project: Project) -> Project:
    ingest_project.schema("areas", AREAS)
    ingest_project.schema("stations", STATIONS)
    shutil.copy(KREISE, ingest_project.data / "kreise.geojson")
    shutil.copy(GEMEINDEN, ingest_project.data / "gemeinden.geojson")
    shutil.copy(REGISTER, ingest_project.data / "register.csv")
    return ingest_project


def areas(proj: Project, file: str, **keys: Any) -> None:
    proj.pipeline("ds", "areas", {"path": f"data/{file}", "mapping": {"ars": "ARS", "name": "GEN"}},
                  **keys)


def flat(text: str | None) -> str:
    return " ".join((text or "").split())


def assert_refused(proj: Project, report: Any, before: int | None) -> str:
    """The run failed, the store kept its current version, the history has the failed run."""
    assert report.status == "failed", report
    current = proj.current("ds")
    assert (current.version if current else None) == before
    failed = [e for e in proj.store.events("ds") if e["kind"] == "failed"]
    assert failed and flat(failed[0]["detail"]) == flat(report.error)
    message = flat(report.error)
    assert "ds.yaml" in message and "--force" in message and "HUB_MAX_" in message
    return message


def test_all_districts_at_defaults_fail_naming_outside_extent_and_the_extent(
        proj: Project) -> None:
    """The 31 districts of Brandenburg and Saxony, quarantine on, everything else default:
    all but the district and its neighbours are outside the extent."""
    areas(proj, "kreise.geojson", on_error="quarantine")
    report = proj.ingest("ds")
    message = assert_refused(proj, report, None)
    assert report.rows_read == 31 and 0 < report.rows_valid < 10
    quarantined = report.rows_quarantined
    assert f"{quarantined} of 31 rows read were quarantined" in message
    assert f"({round(quarantined / 31 * 100, 1)} %)" in message
    assert "max_quarantined_share: 0.1 (10 %, default)" in message
    assert f"{quarantined} of them lie outside the district's extent" in message
    assert "outside_extent: error" in message and EXTENT_TEXT in message
    assert "catalog/district.yaml" in message


def test_all_districts_skipped_outside_fail_naming_the_setting(proj: Project) -> None:
    areas(proj, "kreise.geojson", outside_extent="skip")
    report = proj.ingest("ds")
    message = assert_refused(proj, report, None)
    assert report.rows_outside > 20 and report.rows_quarantined == 0
    assert (f"{report.rows_outside} of 31 rows read were skipped as outside the district "
            "(outside_extent: skip)") in message
    assert "max_outside_share: 0.1 (10 %, default)" in message and EXTENT_TEXT in message


def test_full_charging_register_fails_and_force_commits(proj: Project) -> None:
    """All 455 stations of Brandenburg and Saxony into a district: a few are inside."""
    proj.pipeline("ds", "stations", REGISTER_SOURCE, outside_extent="skip")
    report = proj.ingest("ds")
    message = assert_refused(proj, report, None)
    assert report.rows_read == 455 and report.rows_valid + report.rows_outside == 455
    assert report.rows_valid < 45
    assert f"{report.rows_outside} of 455 rows read were skipped" in message
    assert "max_outside_share" in message

    result = proj.cli("ingest", "ds")
    assert result.exit_code == 1 and "max_outside_share" in result.text
    assert proj.current("ds") is None

    forced = proj.cli("ingest", "ds", "--force")
    assert forced.exit_code == 0, forced
    version = proj.current("ds")
    assert version.version == 1 and version.rows == report.rows_valid
    assert any("--force" in note and "max_outside_share" in note
               for note in version.report["notes"])


def test_full_register_with_quarantine_fails_on_the_quarantined_share(proj: Project) -> None:
    proj.pipeline("ds", "stations", REGISTER_SOURCE, on_error="quarantine")
    message = assert_refused(proj, proj.ingest("ds"), None)
    assert "max_quarantined_share" in message and "outside_extent: error" in message


def test_a_pipeline_setting_allows_what_it_names(proj: Project) -> None:
    proj.pipeline("ds", "stations", REGISTER_SOURCE, outside_extent="skip",
                  max_outside_share=1)
    report = proj.ingest("ds")
    assert report.status == "committed", report.error
    proj.pipeline("ds", "stations", REGISTER_SOURCE, on_error="quarantine",
                  max_outside_share=1)  # the other limit stays at its default
    message = assert_refused(proj, proj.ingest("ds"), 1)
    assert "max_quarantined_share: 0.1 (10 %, default)" in message


def test_environment_sets_the_default_and_is_named(proj: Project,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    proj.pipeline("ds", "stations", REGISTER_SOURCE, outside_extent="skip")
    monkeypatch.setenv("HUB_MAX_OUTSIDE_SHARE", "0.5")
    message = assert_refused(proj, proj.ingest("ds"), None)
    assert "max_outside_share: 0.5 (50 %, HUB_MAX_OUTSIDE_SHARE)" in message
    monkeypatch.setenv("HUB_MAX_OUTSIDE_SHARE", "1")
    assert proj.ingest("ds").status == "committed"


def test_shrinking_against_the_current_version_fails(proj: Project) -> None:
    """All Brandenburg municipalities first, then a run that keeps only the district's 33."""
    proj.pipeline("ds", "areas", {"path": "data/gemeinden.geojson",
                                  "mapping": {"ars": "ARS", "name": "GEN"}},
                  outside_extent="keep")
    assert proj.ingest("ds").status == "committed"
    district_only = {"path": "data/gemeinden.geojson", "mapping": {"ars": "ARS", "name": "GEN"},
                     "filter": {"SN_L": "12", "SN_K": "62"}}
    proj.pipeline("ds", "areas", district_only, outside_extent="keep")
    report = proj.ingest("ds")
    message = assert_refused(proj, report, 1)
    assert report.rows_valid == 33
    assert ("the new version would have 33 rows, 383 fewer than the 416 of the current "
            "version 1 (92.1 %), more than max_shrink_share: 0.5 (50 %, default)") in message
    proj.pipeline("ds", "areas", district_only, outside_extent="keep", max_shrink_share=1)
    report = proj.ingest("ds")
    assert report.status == "committed" and proj.current("ds").rows == 33


@pytest.mark.parametrize("value", [1.5, -0.1, "10 %", True])
def test_limits_in_a_pipeline_are_checked(proj: Project, value: Any) -> None:
    areas(proj, "kreise.geojson", max_quarantined_share=value)
    result = proj.cli("ingest", "ds")
    assert result.exit_code != 0 and "max_quarantined_share" in result.text
    assert "between 0 and 1" in result.text


def test_bad_environment_limit_is_a_clear_error(proj: Project,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    areas(proj, "kreise.geojson")
    monkeypatch.setenv("HUB_MAX_SHRINK_SHARE", "half")
    result = proj.cli("ingest", "ds")
    assert result.exit_code != 0 and "HUB_MAX_SHRINK_SHARE='half'" in result.text


def test_guard_does_not_touch_a_good_run(proj: Project) -> None:
    """The district's own municipalities: nothing lost, committed at the defaults."""
    proj.pipeline("ds", "areas", {"path": "data/gemeinden.geojson",
                                  "mapping": {"ars": "ARS", "name": "GEN"},
                                  "filter": {"SN_L": "12", "SN_K": "62"}})
    report = proj.ingest("ds")
    assert report.status == "committed" and report.rows_valid == 33, report.error
    assert not any("--force" in n for n in report.notes)
