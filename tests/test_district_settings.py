"""The district's settings (catalog/district.yaml) as a new county writes them: an AGS may be
missing (then records carry no political geocoding) but never malformed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import rdflib
import yaml
from conftest import Project, serving

from hub.catalog import open_catalog
from hub.config import load_settings
from hub.errors import HubError


def project_with(root: Path, district: dict[str, object]) -> Project:
    project = Project(root)
    (root / "catalog" / "district.yaml").write_text(yaml.safe_dump(district), encoding="utf-8")
    records = root / "catalog" / "datasets"
    records.mkdir(parents=True, exist_ok=True)
    (records / "baeume.yaml").write_text(yaml.safe_dump({
        "name": "baeume", "title": "Straßenbäume", "description": "Kataster der Straßenbäume.",
        "publisher": "sozialamt", "license": "dl-by-de/2.0"}), encoding="utf-8")
    assert project.cli("catalog", "load").exit_code == 0
    return project


def test_a_district_without_ags_serves_records_without_geocoding(tmp_path: Path) -> None:
    project_with(tmp_path, {"name": "Testkreis"})
    with serving(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as client:
        shown = client.get("/api/3/action/package_show", params={"id": "baeume"})
        assert shown.status_code == 200, shown.text  # was a 500 (KeyError in the AGS keys)
        extras = {e["key"] for e in shown.json()["result"]["extras"]}
        assert not extras & {"politicalGeocodingURI", "politicalGeocodingLevelURI"}
        feed = client.get("/dataset/baeume.ttl")
        assert feed.status_code == 200, feed.text
        graph = rdflib.Graph().parse(data=feed.text, format="turtle")
        assert not any("politicalGeocoding" in str(p) for p in graph.predicates())


@pytest.mark.parametrize("ags", ["1206", "12062x", "120620920000000"])
def test_a_malformed_district_ags_is_named_with_its_file(tmp_path: Path, ags: str) -> None:
    Project(tmp_path)
    district = tmp_path / "catalog" / "district.yaml"
    district.write_text(yaml.safe_dump({"name": "Testkreis", "ags": ags}), encoding="utf-8")
    with pytest.raises(HubError, match=r"district\.yaml: ags .*2, 3, 5, 8, 9 or 12 digits"):
        open_catalog(load_settings(tmp_path, tmp_path / "store"))
