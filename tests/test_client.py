"""`hub.open` on a local store: reading, SQL, history, records, writes and runs, who sees what,
and the one exception hierarchy for bad input (project: tests/client_site.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from client_site import ARTEN, ClientSite, build

import hub
from hub.client import (
    ClientError,
    InvalidFilter,
    InvalidQuery,
    InvalidRecord,
    NotAHub,
    NotAllowed,
    NotFound,
    VersionRemoved,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> ClientSite:
    return build(tmp_path_factory.mktemp("client") / "project")


@pytest.fixture(scope="module")
def operator(site: ClientSite) -> hub.client.Hub:
    with hub.open(site.root) as opened:
        yield opened


# -- opening ------------------------------------------------------------------------------------

def test_open_accepts_the_project_or_its_store(site: ClientSite) -> None:
    assert hub.open(site.root).names() == hub.open(site.root / "store").names()


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_path_that_is_not_a_hub(site: ClientSite, tmp_path: Path, where: str) -> None:
    path = tmp_path / "nothing-here" if where == "missing" else tmp_path
    with pytest.raises(NotAHub, match="not a hub"):
        hub.open(path)
    assert not (tmp_path / "nothing-here").exists()  # nothing is created on a wrong path


def test_unknown_user_and_bad_token(site: ClientSite) -> None:
    with pytest.raises(NotFound, match="no user named 'niemand'"):
        hub.open(site.root, as_user="niemand")
    with pytest.raises(NotAllowed, match="token"):
        hub.open(site.root, token="hub_not-a-token")
    with pytest.raises(NotAllowed, match="anna"):
        hub.open(site.root, token=site.tokens["edith"], as_user="anna")


# -- who sees what ------------------------------------------------------------------------------

@pytest.mark.parametrize(("user", "seen"), [
    (None, ["geheim", "intern", "orte"]),  # the operator: everything
    ("anna", ["intern", "orte"]),  # staff of the Sozialamt: not the restricted one
    ("bernd", ["geheim", "intern", "orte"]),  # staff of the owner of the restricted one
])
def test_visibility_follows_hub_access(site: ClientSite, user: str | None, seen: list[str]) -> None:
    opened = hub.open(site.root, as_user=user)
    assert opened.names() == seen
    by_token = hub.open(site.root, token=site.tokens[user]) if user else opened
    assert by_token.names() == seen


def test_hidden_is_the_same_error_as_unknown(site: ClientSite) -> None:
    anna = hub.open(site.root, as_user="anna")
    errors = {}
    for name in ("geheim", "gibt-es-nicht"):
        for call in (anna.read, anna.arrow, anna.history, anna.record):
            with pytest.raises(NotFound) as caught:
                call(name)
            errors.setdefault(call.__name__, []).append(str(caught.value).replace(name, "X"))
        with pytest.raises(NotFound) as caught:
            anna.sql(f'SELECT count(*) FROM "{name}@1"')
        errors.setdefault("sql", []).append(str(caught.value).replace(name, "X"))
    for call, (hidden, unknown) in errors.items():
        assert hidden == unknown, call
    with pytest.raises(NotFound):  # SQL over a hidden dataset's name: no view, as unknown
        anna.sql("SELECT count(*) FROM geheim").fetchall()


# -- reading ------------------------------------------------------------------------------------

def test_read_current_and_given_version(operator: hub.client.Hub) -> None:
    current = operator.read("orte")
    assert len(current) == 40 and current.crs.to_string() == "OGC:CRS84"
    assert current.loc[current["id"] == 1, "name"].item() == "Ort 3"  # v3: shifted by 2
    assert operator.read("orte", 2).loc[lambda f: f["id"] == 1, "name"].item() == "Ort 2"
    assert "bbox" not in current.columns
    first = current.sort_values("id").geometry.iloc[0]
    assert isinstance(first, shapely.Point)


def test_read_is_what_geopandas_reads_from_the_version_file(operator: hub.client.Hub) -> None:
    """The same frame as `geopandas.read_parquet` (points decoded from their coordinates;
    other layers and nulls: tests/test_client_frames.py)."""
    import geopandas
    from geopandas.testing import assert_geodataframe_equal

    ours = operator.read("orte")
    theirs = geopandas.read_parquet(operator._source("orte", None))
    assert_geodataframe_equal(ours, theirs, check_less_precise=False)
    assert list(ours.dtypes) == list(theirs.dtypes)
    assert list(shapely.to_wkb(ours.geometry.array)) == list(shapely.to_wkb(theirs.geometry.array))


def test_removed_and_unknown_versions(operator: hub.client.Hub) -> None:
    with pytest.raises(VersionRemoved, match="version 1 of 'orte' was removed"):
        operator.read("orte", 1)
    with pytest.raises(NotFound, match="no version 7"):
        operator.read("orte", 7)
    assert isinstance(VersionRemoved("x"), NotFound)  # `except NotFound` covers both
    history = operator.history("orte")
    assert [(v.version, v.current, v.removed) for v in history] == [
        (3, True, False), (2, False, False), (1, False, True)]


def test_bbox_and_filter_select_like_the_ogc_api(operator: hub.client.Hub) -> None:
    every = operator.read("orte")
    x0 = every.geometry.x.min()
    box = (x0 - 0.001, 51.0, x0 + 0.095, 52.0)  # the first ten points (0.01° apart)
    boxed = operator.read("orte", bbox=box)
    assert sorted(boxed["id"]) == list(range(1, 11))
    hospize = operator.read("orte", filter="art = 'Hospiz' AND plaetze >= 20")
    expected = every[(every["art"] == "Hospiz") & (every["plaetze"] >= 20)]
    assert sorted(hospize["id"]) == sorted(expected["id"]) and len(expected) > 0
    both = operator.read("orte", bbox=box, filter=f"art = '{ARTEN[0]}'")
    assert sorted(both["id"]) == sorted(set(boxed["id"]) & set(every.loc[
        every["art"] == ARTEN[0], "id"]))
    corners = ", ".join(map(str, box))
    spatial = operator.read("orte", filter=f"S_INTERSECTS(geometry, BBOX({corners}))")
    assert sorted(spatial["id"]) == sorted(boxed["id"])
    older = operator.read("orte", 2, filter="id = 1")
    assert list(older["name"]) == ["Ort 2"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"filter": "gibtsnicht = 1"}, "unknown property 'gibtsnicht'"),
    ({"filter": "plaetze > 'viele'"}, "filter: at character"),
    ({"filter": "art = "}, "filter: at character"),
    ({"bbox": (1, 2, 3)}, "four numbers"),
    ({"bbox": ("a", 2, 3, 4)}, "four numbers"),
    ({"bbox": (13.0, 52.0, 14.0, 51.0)}, "greater than the upper one"),
])
def test_invalid_filters(operator: hub.client.Hub, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidFilter, match=message):
        operator.read("orte", **kwargs)


def test_arrow_has_geoparquet_metadata(operator: hub.client.Hub) -> None:
    for table in (operator.arrow("orte"), operator.arrow("orte", filter="id < 5")):
        geo = json.loads(table.schema.metadata[b"geo"])
        assert geo["primary_column"] == "geometry" and "covering" not in geo["columns"][
            "geometry"]
        assert "bbox" not in table.column_names


def test_relation_has_geometry_and_spatial_functions(operator: hub.client.Hub) -> None:
    whole = operator.relation("orte")
    assert dict(zip(whole.columns, whole.types, strict=True))["geometry"].id == "geometry"
    assert whole.aggregate("count(*)").fetchone()[0] == 40
    some = operator.relation("orte", filter="id <= 3")
    assert some.project("ST_X(geometry)").fetchall() == sorted(
        some.project("ST_X(geometry)").fetchall())
    assert some.aggregate("count(*)").fetchone()[0] == 3


def test_sql_over_datasets_and_versions(operator: hub.client.Hub) -> None:
    changed = operator.sql('SELECT count(*) FROM orte JOIN "orte@2" USING (id) '
                           'WHERE orte.name <> "orte@2".name').fetchone()[0]
    assert changed == 40
    near = operator.sql("SELECT count(*) FROM orte o, intern i WHERE o.id = i.id AND "
                        "ST_DWithin(o.geometry, i.geometry, 0.5)").fetchone()[0]
    assert near == 40
    with pytest.raises(VersionRemoved):
        operator.sql('SELECT * FROM "orte@1"')
    with pytest.raises(InvalidQuery, match="SQL: Parser Error"):
        operator.sql("SELEKT 1")
    with pytest.raises(InvalidQuery, match="SQL: Binder Error"):
        operator.sql("SELECT nichtda FROM orte")


# -- the catalog --------------------------------------------------------------------------------

def test_records_and_search_as_the_ckan_api_shows_them(site: ClientSite,
                                                       operator: hub.client.Hub) -> None:
    record = operator.record("orte")
    assert record["name"] == "orte" and record["organization"]["name"] == "sozialamt"
    assert {r["name"] for r in operator.search("Test", rows=50)["results"]} == {"orte"}
    found = operator.search("Test", rows=50, include_private=True)  # as in CKAN
    assert {"orte", "intern", "geheim"} <= {r["name"] for r in found["results"]}
    anna = hub.open(site.root, as_user="anna").search("Test", rows=50, include_private=True)
    assert "geheim" not in {r["name"] for r in anna["results"]}
    with pytest.raises(InvalidQuery, match="Search Query"):
        operator.search(fq="name:[")


def test_register_and_update_need_the_right_role(site: ClientSite) -> None:
    record = {"name": "neu-aus-python", "title": "Neu aus Python", "publisher": "sozialamt",
              "description": "Ein Eintrag, registriert mit hub.open.", "access": "public",
              "license": "dl-by-de/2.0", "frequency": "ANNUAL", "data_held": False,
              "access_note": "Beim Sozialamt.",  # so it passes the publication checklist
              "contact": {"name": "Sozialamt", "email": "daten@example.org"}}
    with pytest.raises(NotAllowed):
        hub.open(site.root, as_user="anna").register(record)  # a viewer
    with pytest.raises(NotAllowed):
        hub.open(site.root, as_user="edith").register({**record, "publisher": "kaemmerei"})
    edith = hub.open(site.root, as_user="edith")
    created = edith.register(record)
    assert created["name"] == "neu-aus-python" and created["title"] == "Neu aus Python"
    changed = edith.update("neu-aus-python", {"title": "Neuer Titel"})
    assert changed["title"] == "Neuer Titel"
    assert hub.open(site.root).record("neu-aus-python")["title"] == "Neuer Titel"
    with pytest.raises(InvalidRecord, match=r"already|taken|in use"):
        edith.register(record)
    with pytest.raises(InvalidRecord, match="license"):
        edith.update("neu-aus-python", {"license": "gibt-es-nicht"})
    with pytest.raises(NotFound):
        edith.update("geheim", {"title": "x"})  # hidden: as unknown


def test_run_a_pipeline_needs_an_editor_of_its_owner(site: ClientSite) -> None:
    edith = hub.open(site.root, as_user="edith")
    report = edith.run("intern")
    assert report.status == "unchanged" and report.dataset == "intern"
    with pytest.raises(NotAllowed, match="run its pipeline"):
        hub.open(site.root, as_user="anna").run("intern")  # a viewer of the owner
    with pytest.raises(NotAllowed, match="run its pipeline"):
        edith.run("geheim")  # another organisation's
    with pytest.raises(NotFound, match="no pipeline"):
        edith.run("gibt-es-nicht")


def test_every_error_is_a_client_error() -> None:
    for error in (NotAHub, NotFound, VersionRemoved, InvalidQuery, InvalidFilter, InvalidRecord,
                  NotAllowed):
        assert issubclass(error, ClientError) and issubclass(error, hub.errors.HubError)
    assert hub.NotFound is NotFound and hub.open is hub.client.open
