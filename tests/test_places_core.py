"""The places core without a server: Lower Sorbian names, slugs that collide, the
`answers:` configuration and its errors, topics whose dataset is missing or hidden (the
places themselves too), and where answers are computed (on the loop or off it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
import yaml
from conftest import DISTRICT_BBOX, Project
from test_places import build

from hub.access import ANONYMOUS, DataAccess, Viewer
from hub.api.ogc.work import LOOP_COST, UNBOUNDED
from hub.errors import HubError
from hub.ingest.geometry import Extent
from hub.places import Answers, Gazetteer, OutsideDistrict, PlaceNotFound, Places, load_answers
from hub.places.tables import Table, representative_points

STAFF = Viewer(staff=True, organization="sozialamt")


def boundaries(names: list[str]) -> Table:
    """A boundaries table of squares side by side, one per name."""
    shapes = np.array([shapely.box(13.1 + 0.1 * i, 51.4, 13.19 + 0.1 * i, 51.49)
                       for i in range(len(names))], dtype=object)
    lon, lat, kinds = representative_points(shapes)
    rows = [{"ags": f"1206{i:04d}", "name": n, "bez": "Gemeinde"} for i, n in enumerate(names)]
    return Table("orte", 1, "x", rows, shapes, lon, lat, kinds)


SORBIAN = ["Chóśebuz", "Wětošow", "Picnjo", "Žylow", "Błota", "Łukojce"]


@pytest.mark.parametrize(("q", "expected"), [
    ("Chosebuz", "Chóśebuz"), ("chóśe", "Chóśebuz"), ("CHOSE", "Chóśebuz"),
    ("Wetosow", "Wětošow"), ("zylow", "Žylow"), ("Blota", "Błota"), ("lukojce", "Łukojce")])
def test_lower_sorbian_names_are_found_without_their_marks(q: str, expected: str) -> None:
    found = Gazetteer(boundaries(SORBIAN), [], 5).search(q)
    assert [m.place.name for m in found] == [expected]


def test_slugs_are_transliterated_and_unique() -> None:
    gazetteer = Gazetteer(boundaries(["Chóśebuz", "Mühlberg/Elbe", "Mühlberg Elbe", "Suche"]),
                          [], 5)
    assert sorted(gazetteer.by_slug) == ["chosebuz", "muehlberg-elbe", "muehlberg-elbe-12060002",
                                         "suche-12060003"]


def test_a_point_between_places_belongs_to_the_nearest_within_the_buffer() -> None:
    gazetteer = Gazetteer(boundaries(["Aue", "Bruch"]), [], 5)
    assert gazetteer.at(13.15, 51.45).name == "Aue"
    assert gazetteer.at(13.195, 51.45).name == "Aue"  # in the gap between the squares
    assert gazetteer.at(13.15, 51.52).name == "Aue"  # about 3.3 km north of it
    assert gazetteer.at(13.15, 51.6) is None  # about 12 km


def write_district(root: Path, answers: object) -> None:
    (root / "catalog").mkdir(parents=True, exist_ok=True)
    (root / "catalog" / "district.yaml").write_text(yaml.safe_dump(
        {"name": "Testkreis", "bbox": DISTRICT_BBOX, "answers": answers}), encoding="utf-8")


def test_the_answers_section(tmp_path: Path) -> None:
    write_district(tmp_path, {"boundaries": "gemeinden", "care": "pflege"})
    assert load_answers(tmp_path) == Answers(boundaries="gemeinden", care="pflege")
    assert load_answers(tmp_path).datasets() == {"boundaries": "gemeinden", "care": "pflege"}
    assert load_answers(tmp_path / "nowhere") == Answers()


@pytest.mark.parametrize(("answers", "message"), [
    ({"schools": "schulen"}, "unknown topic(s) schools"),
    ({"care": "Pflege Daten"}, "care: 'Pflege Daten' is not a dataset name"),
    ({"care": ["pflege"]}, "care:"),
    (["pflege"], "a mapping of topic to dataset name"),
])
def test_a_bad_answers_section_names_the_file_and_key(tmp_path: Path, answers: object,
                                                      message: str) -> None:
    write_district(tmp_path, answers)
    with pytest.raises(HubError, match=r"district\.yaml: answers: ") as caught:
        load_answers(tmp_path)
    assert message in str(caught.value)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return build(tmp_path_factory.mktemp("core") / "project")[0]


def places(project: Project, **answers: str) -> Places:
    settings = project.settings()
    return Places(project.store, Answers(**answers), DataAccess(None), lambda name: None,
                  settings.extent)


def anywhere(cost: float) -> None:
    """`need` of a caller that may do any work (a worker thread)."""


def test_a_topic_whose_dataset_is_missing_is_absent(project: Project) -> None:
    hub = places(project, boundaries="gemeinden", care="fehlt", mobility="mobilitaet")
    sources = hub.sources(ANONYMOUS)
    assert set(sources.versions) == {"boundaries", "mobility"}
    answer = hub.place(sources, "crinitz", anywhere)
    assert set(answer["answers"]) == {"mobility"}


def test_hidden_boundaries_hide_the_places_but_points_are_answered(project: Project) -> None:
    """The boundaries dataset as the care data (internal): anonymous callers get no places
    and no names, staff get them all; a point is still answered (without its place)."""
    hub = places(project, boundaries="pflege", mobility="mobilitaet")
    anonymous = hub.sources(ANONYMOUS)
    assert hub.listing(anonymous, anywhere) == []
    with pytest.raises(PlaceNotFound) as caught:
        hub.place(anonymous, "tagespflege-crinitz-0", anywhere)
    assert caught.value.suggestions == []
    point = hub.point(anonymous, 13.5, 51.6, anywhere)
    assert point["place"] is None and set(point["answers"]) == {"mobility"}
    assert len(hub.listing(hub.sources(STAFF), anywhere)) == 66  # names of the care rows


def test_a_point_outside_the_district(project: Project) -> None:
    hub = places(project, boundaries="gemeinden")
    with pytest.raises(OutsideDistrict, match="outside the district"):
        hub.point(hub.sources(ANONYMOUS), 12.0, 51.6, anywhere)
    inside_box = Extent(*DISTRICT_BBOX)  # the box's corner lies outside every municipality
    hub.extent = inside_box
    with pytest.raises(OutsideDistrict, match="municipalities"):
        hub.point(hub.sources(ANONYMOUS), DISTRICT_BBOX[2] - 0.001, DISTRICT_BBOX[1] + 0.001,
                  anywhere)


def test_reading_a_version_is_announced_as_work_that_grows_with_the_data(
        project: Project) -> None:
    """On the event loop a read is refused (the route then runs it in the pool); once the
    versions are in memory, an answer costs their rows only."""
    hub = places(project, boundaries="gemeinden", mobility="mobilitaet")
    sources = hub.sources(ANONYMOUS)
    announced: list[float] = []
    hub.place(sources, "crinitz", announced.append)
    assert UNBOUNDED in announced
    announced.clear()
    hub.point(sources, 13.5, 51.6, announced.append)
    assert announced and max(announced) < LOOP_COST


def test_a_sources_catalog_facts_follow_the_catalog(project: Project,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A source's title comes from the catalog record (kept a few seconds, here none)."""
    from hub.api.ogc.features import About
    from hub.places import service

    monkeypatch.setattr(service, "SOURCE_SECONDS", 1e-9)
    titles = {"mobilitaet": "Erster Titel"}
    hub = Places(project.store, Answers(boundaries="gemeinden", mobility="mobilitaet"),
                 DataAccess(None), lambda name: About(title=titles[name],
                                                      page_url=f"/datasets/{name}")
                 if name in titles else None, project.settings().extent)
    sources = hub.sources(ANONYMOUS)
    first = hub.place(sources, "crinitz", anywhere)["answers"]["mobility"]["source"]
    assert first["title"] == "Erster Titel" and first["links"]["dataset"] == "/datasets/mobilitaet"
    titles["mobilitaet"] = "Neuer Titel"
    again = hub.place(sources, "crinitz", anywhere)["answers"]["mobility"]["source"]
    assert again["title"] == "Neuer Titel"
