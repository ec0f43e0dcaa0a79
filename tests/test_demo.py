"""The bundled demo district, as `make demo` builds it: every pipeline ingests, nothing internal
is served (the notebooks run against it in tests/test_notebooks.py)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from conftest import serving

from hub.config import load_settings
from hub.ingest.pipeline import discover
from hub.ingest.run import ingest
from hub.store import Store

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.guard  # the demo passes the guard against near-empty versions as is


@pytest.fixture(scope="module")
def demo(demo_district: Path) -> Path:
    """The demo project with generated data, every pipeline ingested once (tests/conftest.py)."""
    return demo_district


def test_every_demo_pipeline_commits_a_version(demo: Path) -> None:
    store = Store(demo / "store")
    names = {d.name for d in store.datasets()}
    assert {"gemeinden", "breitband", "pflege", "mobilitaet"} <= names
    for name in names:
        version = store.current(name)
        assert version is not None and version.rows > 0, name
        assert version.bbox is not None, name
    assert store.current("gemeinden").rows >= 30  # Elbe-Elster has 33 municipalities
    assert "EPSG:25833" in store.current("breitband").source_crs


def test_second_run_makes_no_new_versions(demo: Path) -> None:
    settings = load_settings(demo, demo / "store")
    store = Store(settings.store)
    for pipeline in discover(settings.pipelines_dir):
        assert ingest(pipeline, store, settings).status == "unchanged", pipeline.dataset


def test_server_shows_public_and_hides_internal_data(demo: Path) -> None:
    store = Store(demo / "store")
    with serving(demo) as url, httpx.Client(base_url=url, timeout=60) as client:
        listed = {d["name"] for d in client.get("/api/datasets").json()}
        internal = {d.name: d.title for d in store.datasets() if d.access != "public"}
        public = {d.name for d in store.datasets() if d.access == "public"}
        assert listed == public and internal  # broadband at address level is internal
        start = client.get("/").text
        for name, title in internal.items():
            assert client.get(f"/api/datasets/{name}").status_code == 404
            assert client.get(f"/ogc/collections/{name}/items").status_code == 404
            # neither its title nor a link to it ("/karten/breitband" is the public map of
            # the public aggregate "breitband-gemeinden", not the internal dataset)
            assert title not in start
            assert not re.search(rf"/(datasets|collections|downloads)/{re.escape(name)}\b(?!-)",
                                 start)
        page = client.get("/")
        assert page.status_code == 200 and 'lang="de"' in page.text
        assert "© GeoBasis-DE / BKG 2021 (Daten verändert)" in page.text  # required by dl-de/by-2.0
        assert "Bundesnetzagentur.de" in page.text
        features = client.get("/ogc/collections/pflege/items", params={"limit": 5}).json()
        assert len(features["features"]) == 5
        assert features["features"][0]["geometry"]["type"] == "Point"
