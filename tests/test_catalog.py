"""The metadata catalog: validation, idempotent loading, the inventory import, German search
with access filtering inside counts and facets, the live link to the store, quality."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import textwrap
import time
from pathlib import Path

import openpyxl
import pytest
import yaml

from hub.access import ANONYMOUS, Viewer
from hub.catalog import open_catalog
from hub.catalog.index import Query
from hub.catalog.load import load_yaml_records, read_inventory, sync
from hub.catalog.model import RecordInvalid, validate
from hub.catalog.quality import assess
from hub.config import load_settings
from hub.errors import HubError, PipelineError
from hub.ingest.pipeline import load_pipeline
from hub.ingest.run import ingest
from hub.store import Store

REPO = Path(__file__).resolve().parents[1]
STAFF = Viewer(staff=True, organization="sozialamt")
GOOD = {"name": "radwege", "title": "Radwege im Landkreis",
        "description": "Alle ausgeschilderten Radwege mit Belag und Breite.",
        "publisher": "kataster-vermessung", "license": "dl-by-de/2.0", "themes": ["TRAN"],
        "frequency": "jährlich", "keywords": ["Radverkehr"]}


@pytest.fixture
def root(tmp_path: Path, backend: str) -> Path:
    shutil.copytree(REPO / "catalog", tmp_path / "catalog")
    return tmp_path


@pytest.fixture
def opened(root: Path):
    return open_catalog(load_settings(root, root / "store"))


def test_codes_are_normalised_from_what_people_write(opened) -> None:
    _, vocab, _ = opened
    record = validate({**GOOD, "license": "Datenlizenz Deutschland Namensnennung 2.0",
                       "frequency": "monatlich", "access": "öffentlich",
                       "themes": ["Verkehr"]}, vocab)
    assert (record.license, record.frequency, record.access, record.themes) == (
        "dl-by-de/2.0", "MONTHLY", "public", ["TRAN"])
    assert record.attribution  # dl-by requires naming the source: defaults to the publisher
    assert validate(GOOD, vocab).id == validate(GOOD, vocab).id  # stable id from the slug


def test_a_theme_or_keyword_named_twice_is_kept_once(opened) -> None:
    """An inventory row "Bildung; EDUC" names one theme (it came out as [EDUC, EDUC])."""
    _, vocab, _ = opened
    record = validate({**GOOD, "themes": ["Bildung", "EDUC", "Verkehr"],
                       "keywords": ["Schule", "Schule", "Sport"]}, vocab)
    assert (record.themes, record.keywords) == (["EDUC", "TRAN"], ["Schule", "Sport"])


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"license": "Freeware-ish"}, "license", "unknown license 'Freeware-ish'"),
    ({"themes": ["Kochen"]}, "themes", "unknown theme 'Kochen'"),
    ({"frequency": "alle Jubeljahre"}, "frequency", "unknown frequency"),
    ({"title": ""}, "title", "is required"),
    ({"publisher": ""}, "publisher", "is required"),
    ({"publisher": "Amt für Träume"}, "publisher", "unknown organisation"),
    ({"name": "Radwege Neu"}, "name", "must be a slug"),
    ({"access": "restricted"}, "restricted_to", "name the organisations"),
    ({"data_held": False}, "access_note", "who holds the data"),
    ({"issued": "31.12.2020"}, "issued", "is not a date"),
    ({"spatial_ags": ["1206"]}, "spatial_ags", "AGS"),
    ({"colour": "blue"}, "record", "unknown field(s) colour"),
])
def test_invalid_records_name_the_field(opened, change, field, message) -> None:
    _, vocab, _ = opened
    with pytest.raises(RecordInvalid) as caught:
        validate({**GOOD, **change}, vocab, "radwege.yaml")
    assert message in caught.value.errors[field]
    assert str(caught.value).startswith("radwege.yaml: ")


def test_yaml_loading_is_idempotent_and_errors_name_the_file(root: Path, opened) -> None:
    catalog, vocab, _ = opened
    folder = root / "catalog" / "datasets"
    first = sync(catalog, load_yaml_records(folder, vocab), vocab)
    assert len(first.created) == len(list(folder.glob("*.yaml"))) >= 4
    again = sync(catalog, load_yaml_records(folder, vocab), vocab)
    assert (again.created, again.updated, again.conflicts) == ([], [], [])
    assert sorted(again.unchanged) == sorted(first.created)
    (folder / "kaputt.yaml").write_text("title: [unclosed\n", encoding="utf-8")
    with pytest.raises(PipelineError, match=r"kaputt\.yaml: YAML syntax error"):
        load_yaml_records(folder, vocab)
    (folder / "kaputt.yaml").write_text(yaml.safe_dump({**GOOD, "name": "pflege"}))
    with pytest.raises(RecordInvalid,
                       match=r"pflege\.yaml: name: 'pflege' is also used by kaputt\.yaml"):
        load_yaml_records(folder, vocab)


def write_inventory(path: Path, rows: list[list[str]], title_rows: int = 2,
                    sheet: str = "Inventar") -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(["Dateninventur Landkreis Elbe-Elster"])
    for _ in range(title_rows - 1):
        ws.append([])
    ws.append(["Bezeichnung", "Themenfeld", "Abteilung", "Beschreibung", "Zugriff",
               "Aktualisierung", "Ansprechpartner", "Bemerkung intern"])
    for row in rows:
        ws.append(row)
    ws.merge_cells(start_row=title_rows + 2, start_column=3, end_row=title_rows + 3,
                   end_column=3)
    book.save(path)


def test_inventory_preview_reports_rows_and_writes_nothing(root: Path, opened) -> None:
    catalog, vocab, district = opened
    path = root / "inventar.xlsx"
    write_inventory(path, [
        ["Spielplätze", "Bildung", "Schulverwaltungsamt", "Alle Spielplätze.", "öffentlich",
         "jährlich", "Eva Muster, eva@lkee.example.org", "x"],
        ["Friedhöfe", "Regionen und Städte", None, "Friedhöfe mit Grabfeldern.", "intern",
         "bei Bedarf", "", ""],  # merged Abteilung cell: empty in the second row
        [None] * 8,
        ["", "Umwelt", "Umweltamt", "Ohne Titel.", "öffentlich", "jährlich", "", ""],
        ["Lärmkarte", "Wetter", "Umweltamt", "Lärm.", "geheim", "stündlich-ish", "", ""],
    ])
    inventory = read_inventory(path, vocab, None, district.default_license, {})
    assert [r.row for r in inventory.rows] == [4, 5, 7, 8]  # sheet rows; the blank row is skipped
    assert inventory.rows[0].record is not None
    assert inventory.rows[0].record.contact["email"] == "eva@lkee.example.org"
    assert inventory.rows[1].errors == {"publisher": "is required"}
    assert set(inventory.rows[2].errors) == {"title"}
    assert set(inventory.rows[3].errors) == {"themes", "access", "frequency"}
    assert inventory.ignored_columns == ["Bemerkung intern"]
    assert catalog.names() == []  # a preview writes nothing
    with pytest.raises(HubError, match=r"no sheet 'Falsch'.*'Inventar'"):
        read_inventory(path, vocab, "Falsch", district.default_license, {})


def test_inventory_without_required_columns_names_them(root: Path, opened) -> None:
    _, vocab, district = opened
    path = root / "liste.csv"
    path.write_text("Name;Farbe\nA;rot\n", encoding="utf-8")
    with pytest.raises(HubError, match=r"no column Abteilung, Beschreibung.*Name, Farbe"):
        read_inventory(path, vocab, None, district.default_license, {})


def test_shipped_inventory_imports_and_reimports_unchanged(opened) -> None:
    catalog, vocab, district = opened
    inventory = read_inventory(REPO / "catalog" / "inventory" / "dateninventur.csv", vocab,
                               None, district.default_license, catalog.origins())
    assert len(inventory.valid) >= 60 and not inventory.invalid
    sync(catalog, inventory.incoming, vocab)
    again = read_inventory(REPO / "catalog" / "inventory" / "dateninventur.csv", vocab, None,
                           district.default_license, catalog.origins())
    assert len(sync(catalog, again.incoming, vocab).unchanged) == len(inventory.valid)
    held = [r for r in inventory.valid if not r.data_held]
    assert held and all("Anfragen" in r.access_note for r in held)


@pytest.fixture
def filled(opened):
    catalog, vocab, district = opened
    sync(catalog, read_inventory(REPO / "catalog" / "inventory" / "dateninventur.csv", vocab,
                                 None, district.default_license, {}).incoming, vocab)
    catalog.upsert_many([
        validate({**GOOD, "name": "ladesaeulen", "title": "Ladesäulen",
                  "description": "Öffentliche Ladesäulen für Elektroautos.",
                  "bbox": [13.2, 51.5, 13.3, 51.6]}, vocab),
        validate({**GOOD, "name": "pflegegeld-faelle", "title": "Pflegegeld – Einzelfälle",
                  "access": "restricted", "restricted_to": ["sozialamt"],
                  "personal_data": True}, vocab),
        validate({**GOOD, "name": "pflege-intern", "title": "Pflegeplanung intern",
                  "access": "internal"}, vocab)])
    return catalog


@pytest.mark.parametrize(("q", "expected"), [
    ("Ladesaeule", "ladesaeulen"), ("ladesäule", "ladesaeulen"), ("LADESÄULEN", "ladesaeulen"),
    ("Pflege", "pflegegeld-faelle"), ("Einzelfaelle", "pflegegeld-faelle"),
    ("Elektroauto", "ladesaeulen"),
])
def test_german_matching(filled, q: str, expected: str) -> None:
    names = [r.name for r in filled.search(Query(q=q, rows=100), Viewer(admin=True)).records]
    assert expected in names


def test_access_filtering_inside_counts_and_facets(filled) -> None:
    public = filled.search(Query(q="pflege", rows=100), ANONYMOUS)
    staff = filled.search(Query(q="pflege", rows=100), STAFF)
    other = filled.search(Query(q="pflege", rows=100), Viewer(staff=True, organization="umweltamt"))
    public_names = {r.name for r in public.records}
    assert "pflegegeld-faelle" not in public_names and "pflege-intern" not in public_names
    assert {"pflegegeld-faelle", "pflege-intern"} <= {r.name for r in staff.records}
    assert "pflegegeld-faelle" not in {r.name for r in other.records}
    assert public.count == len(public.records) < staff.count
    assert dict(public.facets["access"]) == {"public": public.count}
    assert filled.get("pflegegeld-faelle", ANONYMOUS) is None
    assert filled.get("pflegegeld-faelle", STAFF) is not None


def test_facets_filters_bbox_sort_and_paging(filled) -> None:
    everything = filled.search(Query(rows=0), ANONYMOUS)
    themes = dict(everything.facets["theme"])
    assert themes["TRAN"] >= 1
    transport = filled.search(Query(filters={"theme": ["TRAN"]}, rows=500), ANONYMOUS)
    assert transport.count == themes["TRAN"]
    assert all("TRAN" in r.themes for r in transport.records)
    boxed = filled.search(Query(bbox=(13.25, 51.55, 13.26, 51.56), rows=50), ANONYMOUS)
    assert [r.name for r in boxed.records] == ["ladesaeulen"]
    by_title = filled.search(Query(sort="title", rows=500), ANONYMOUS).records
    assert [r.title.lower() for r in by_title][:5] == sorted(r.title.lower()
                                                             for r in by_title)[:5]
    page1 = filled.search(Query(sort="title", rows=10), ANONYMOUS).records
    page2 = filled.search(Query(sort="title", rows=10, start=10), ANONYMOUS).records
    assert not {r.name for r in page1} & {r.name for r in page2}
    assert filled.search(Query(q='"; DROP TABLE catalog_records; --'), ANONYMOUS).count == 0


def test_record_follows_the_store(root: Path, opened) -> None:
    catalog, vocab, _ = opened
    (root / "schemas").mkdir()
    (root / "pipelines").mkdir()
    (root / "schemas" / "pts.json").write_text(json.dumps({"fields": [
        {"name": "id", "type": "integer"},
        {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]}))
    (root / "pipelines" / "radwege.yaml").write_text(textwrap.dedent("""\
        dataset: radwege
        title: Radwege
        organization: kataster-vermessung
        access: public
        schema: pts
        outside_extent: keep
        source: {path: ../pts.csv, geometry: {lon: x, lat: y}, crs: EPSG:4326}
        """))
    (root / "pts.csv").write_text("id,x,y\n1,13.3,51.6\n2,13.4,51.7\n")
    catalog.upsert(validate(GOOD, vocab))
    assert catalog.get("radwege", ANONYMOUS).version is None
    settings = load_settings(root, root / "store")
    pipeline = load_pipeline(root / "pipelines" / "radwege.yaml")
    store = Store(settings.store, settings.database())
    assert ingest(pipeline, store, settings).status == "committed"
    record = catalog.get("radwege", ANONYMOUS)
    assert (record.version, record.rows) == (1, 2)
    assert record.bbox == [13.3, 51.6, 13.4, 51.7] and record.schema["fields"][0]["name"] == "id"
    assert record.last_modified == record.store_modified
    found = catalog.search(Query(bbox=(13.35, 51.65, 13.45, 51.75)), ANONYMOUS)
    assert "radwege" in [r.name for r in found.records]


def test_quality_and_staleness(opened) -> None:
    _, vocab, _ = opened
    bare = validate({k: GOOD[k] for k in ("name", "title", "description", "publisher",
                                            "license")}, vocab)
    full = validate({**GOOD, "frequency": "MONTHLY", "modified": "2026-10-01",
                     "issued": "2020-01-01", "spatial_ags": ["12062"],
                     "temporal": {"start": "2020-01-01"}, "conforms_to": "radwege",
                     "contact": {"email": "radwege@lkee.example.org"},
                     "description": GOOD["description"] * 3,
                     "distributions": [{"url": "https://example.org/r.csv", "format": "CSV"}]},
                    vocab)
    today = dt.date(2026, 11, 23)
    weak, strong = assess(bare, vocab, today), assess(full, vocab, today)
    assert weak.score < 50 < strong.score == 100
    assert "Auffindbarkeit: Schlagwörter" in weak.missing
    assert not weak.stale  # UNKNOWN frequency never goes stale
    assert strong.stale and strong.age_days == 53 and strong.allowed_days == 31
    assert "Kataster" in strong.owner


def test_search_sees_writes_of_other_connections_at_once(root: Path, opened) -> None:
    """The in-memory search snapshot is rebuilt whenever the database changed."""
    catalog, vocab, _ = opened
    assert catalog.search(Query(q="Radwege"), ANONYMOUS).count == 0
    other, _, _ = open_catalog(load_settings(root, root / "store"))  # e.g. another process
    other.upsert(validate(GOOD, vocab))
    assert [r.name for r in catalog.search(Query(q="Radwege"), ANONYMOUS).records] == ["radwege"]
    other.upsert(validate({**GOOD, "access": "internal"}, vocab))
    assert catalog.search(Query(q="Radwege"), ANONYMOUS).count == 0
    assert other.delete("radwege")
    assert catalog.search(Query(q="Radwege"), STAFF).count == 0



def test_search_expressions(filled) -> None:
    from hub.catalog.expr import All, And, Exists, Match, Not, Or, Range, Text

    def names(expr, viewer=ANONYMOUS) -> set[str]:
        return {r.name for r in filled.search(Query(where=expr, rows=1000), viewer).records}

    everything = names(All())
    assert names(Match("name", "ladesaeulen")) == {"ladesaeulen"}
    assert names(Match("name", "LADESAEULEN")) == {"ladesaeulen"}  # keyword match folds case
    assert names(Match("name", "ladesae", prefix=True)) == {"ladesaeulen"}
    assert names(Not(Match("name", "ladesaeulen"))) == everything - {"ladesaeulen"}
    transport = names(Match("theme", "tran"))
    assert "ladesaeulen" in transport and transport == names(Match("theme", "TRAN"))
    assert names(Or((Match("name", "ladesaeulen"), Match("theme", "TRAN")))) == transport
    charging = names(And((Match("theme", "TRAN"), Text("title", ("ladesäule",)))))
    assert "ladesaeulen" in charging and charging <= transport
    assert "ladesaeulen" in names(Text("description", ("Elektroautos",)))
    assert "ladesaeulen" not in names(Text("title", ("Elektroautos",)))  # in the description
    assert "ladesaeulen" in names(Text(None, ("öffentliche", "ladesäulen"), phrase=True))
    assert "ladesaeulen" not in names(Text(None, ("ladesäulen", "öffentliche"), phrase=True))
    assert names(Exists("keyword")) >= {"ladesaeulen"}
    assert names(Range("changed", "2000-01-01T00:00:00", None)) == everything
    assert names(Range("changed", None, "2000-01-01T00:00:00.000001")) == set()
    # hidden records stay hidden whatever the expression says
    assert "pflege-intern" not in names(Match("name", "pflege-intern"))
    assert names(Match("name", "pflege-intern"), Viewer(admin=True)) == {"pflege-intern"}


def test_sort_keys_and_states(opened) -> None:
    catalog, vocab, _ = opened
    for name, title in (("b-set", "Alpha"), ("a-set", "Beta"), ("c-set", "Gamma")):
        catalog.upsert(validate({**GOOD, "name": name, "title": title}, vocab))
        time.sleep(0.002)  # change stamps have millisecond resolution
    by = [r.name for r in catalog.search(Query(sort=(("name", True),)), ANONYMOUS).records]
    assert by == ["c-set", "b-set", "a-set"]
    by = [r.name for r in catalog.search(Query(sort=(("changed", True),)), ANONYMOUS).records]
    assert by == ["c-set", "a-set", "b-set"]
    editor = Viewer(staff=True, editor=True, organization="kataster-vermessung")
    catalog.upsert(validate({**GOOD, "name": "a-set", "title": "Beta", "state": "deleted"},
                            vocab))
    assert catalog.get("a-set", ANONYMOUS) is None
    assert catalog.get("a-set", editor) is None  # deleted: only when asked for
    assert catalog.get("a-set", editor, states=("deleted",)).state == "deleted"
    assert catalog.get("a-set", Viewer(staff=True, editor=True, organization="sozialamt"),
                       states=("deleted",)) is None  # not theirs to edit
    assert catalog.search(Query(), editor).count == 2
    assert catalog.search(Query(states=("active", "deleted")), editor).count == 3
    assert catalog.search(Query(states=("active", "deleted")), ANONYMOUS).count == 2


def test_rename_keeps_the_id_and_names_stay_unique(opened) -> None:
    from hub.catalog.index import NameTaken

    catalog, vocab, _ = opened
    first = validate({**GOOD, "name": "alt"}, vocab)
    catalog.upsert(first)
    catalog.upsert(validate({**GOOD, "name": "other"}, vocab))
    assert catalog.upsert(validate({**GOOD, "name": "neu", "id": first.id}, vocab)) == "updated"
    assert catalog.get("alt", ANONYMOUS) is None and catalog.get(first.id, ANONYMOUS).name == "neu"
    with pytest.raises(NameTaken):
        catalog.upsert(validate({**GOOD, "name": "other", "id": first.id}, vocab))
    assert catalog.get("neu", ANONYMOUS) is not None


def test_registered_organisations_join_the_vocabulary(opened) -> None:
    from hub.catalog.vocab import Organization

    catalog, vocab, _ = opened
    with pytest.raises(RecordInvalid, match="publisher"):
        validate({**GOOD, "publisher": "zweckverband-wasser"}, vocab)
    catalog.add_organization(Organization("zweckverband-wasser", "Zweckverband Wasser",
                                          "external"))
    assert validate({**GOOD, "publisher": "zweckverband-wasser"}, vocab).publisher == \
        "zweckverband-wasser"
    assert vocab.organization("Zweckverband Wasser").id == "zweckverband-wasser"


def test_access_in_force_is_the_stricter_level() -> None:
    from hub.access import access_in_force

    assert access_in_force("public", None) == ("public", [])
    assert access_in_force("public", ("internal", [])) == ("internal", [])
    assert access_in_force("internal", ("public", [])) == ("internal", [])
    assert access_in_force("internal", ("restricted", ["sozialamt"])) == (
        "restricted", ["sozialamt"])
    assert access_in_force("restricted", ("public", [])) == ("restricted", [])
