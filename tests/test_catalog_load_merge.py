"""`hub catalog load` and `hub catalog import` never overwrite an edit made elsewhere: a file
change is applied only where the catalog still holds what was last loaded, an edit made
through the CKAN API or `hub catalog edit` stays, and a field changed on both sides is a
conflict that is reported (exit code 1) until the file agrees or `--force` lets it win."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import pytest
import yaml
from conftest import hub_cli, serving
from typer.testing import CliRunner

from hub.access import ADMIN
from hub.catalog import open_catalog
from hub.catalog.model import ALL_STATES, Record
from hub.cli import app
from hub.config import load_settings
from hub.ingest.pipeline import load_pipeline
from hub.ingest.run import ingest
from hub.store import Store

REPO = Path(__file__).resolve().parents[1]
PFLEGE_TITLE = "Pflegeangebote im Landkreis Elbe-Elster"
RECORDS = len(list((REPO / "catalog" / "datasets").glob("*.yaml")))  # the repository's records


def make_root(root: Path) -> Path:
    shutil.copytree(REPO / "catalog", root / "catalog")
    (root / "pipelines").mkdir()
    (root / "schemas").mkdir()
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


class Cli:
    def __init__(self, root: Path):
        self.root = root

    def __call__(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, [*args, "--root", str(self.root), "--store",
                                          str(self.root / "store")], env={"COLUMNS": "400"})
        assert result.exception is None or isinstance(result.exception, SystemExit), result
        return result.exit_code, " ".join(result.output.split())

    def record(self, name: str) -> Record | None:
        catalog, _, _ = open_catalog(load_settings(self.root, self.root / "store"))
        return catalog.get(name, ADMIN, ALL_STATES)


def edit_yaml(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del data[key]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return hub_cli(root, *args)
    except subprocess.CalledProcessError as exc:
        return subprocess.CompletedProcess(exc.cmd, exc.returncode, exc.stdout, exc.stderr)


def said(result: subprocess.CompletedProcess) -> str:
    return " ".join((result.stdout + result.stderr).split())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ckanapi.RemoteCKAN]]:
    root = make_root(tmp_path_factory.mktemp("merge"))
    hub_cli(root, "catalog", "load")
    hub_cli(root, "user", "add", "admin", "--org", "landkreis-elbe-elster", "--role", "admin")
    token = hub_cli(root, "token", "create", "admin").stdout.strip().splitlines()[-1]
    with serving(root) as url:
        yield root, ckanapi.RemoteCKAN(url, apikey=token)


def test_package_patch_survives_catalog_load_and_conflicts_are_reported(served) -> None:
    root, ckan = served
    yaml_file = root / "catalog" / "datasets" / "pflege.yaml"
    ckan.action.package_patch(id="pflege", title="Pflege im Kreis (über die API)")
    loaded = run(root, "catalog", "load")
    assert loaded.returncode == 0, said(loaded)
    assert f"0 updated, {RECORDS} unchanged" in said(loaded)
    assert ckan.action.package_show(id="pflege")["title"] == "Pflege im Kreis (über die API)"

    edit_yaml(yaml_file, description="Neu beschrieben in der YAML-Datei.")
    loaded = run(root, "catalog", "load")
    assert loaded.returncode == 0 and "1 updated" in said(loaded), said(loaded)
    shown = ckan.action.package_show(id="pflege")
    assert shown["notes"] == "Neu beschrieben in der YAML-Datei."  # the file's change applied
    assert shown["title"] == "Pflege im Kreis (über die API)"  # the API's edit kept

    edit_yaml(yaml_file, title="Pflegeangebote (YAML)")
    for _ in range(2):  # reported on every load until resolved
        loaded = run(root, "catalog", "load")
        assert loaded.returncode == 1, said(loaded)
        assert (f"{yaml_file}: pflege: title: the file says \"Pflegeangebote (YAML)\", the "
                "catalog has \"Pflege im Kreis (über die API)\"") in said(loaded)
        assert "1 conflict(s)" in said(loaded) and "--force" in said(loaded)
        assert ckan.action.package_show(id="pflege")["title"] == "Pflege im Kreis (über die API)"

    forced = run(root, "catalog", "load", "--force")
    assert forced.returncode == 0 and "1 updated" in said(forced), said(forced)
    assert ckan.action.package_show(id="pflege")["title"] == "Pflegeangebote (YAML)"
    again = run(root, "catalog", "load")
    assert again.returncode == 0 and f"0 updated, {RECORDS} unchanged" in said(again), said(again)


def test_a_deleted_or_renamed_record_stays_so(served) -> None:
    root, ckan = served
    ckan.action.package_patch(id="breitband", name="breitband-ausbau")
    ckan.action.package_delete(id="mobilitaet")
    loaded = run(root, "catalog", "load")
    assert loaded.returncode == 0, said(loaded)
    assert ckan.action.package_show(id="breitband-ausbau")["name"] == "breitband-ausbau"
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id="breitband")
    assert ckan.action.package_show(id="mobilitaet")["state"] == "deleted"


def test_minimal_pipeline_records_never_overwrite_edits(root: Path) -> None:
    cli = Cli(root)
    (root / "schemas" / "pts.json").write_text(json.dumps({"fields": [
        {"name": "id", "type": "integer"},
        {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]}))
    (root / "pipelines" / "radwege.yaml").write_text(yaml.safe_dump({
        "dataset": "radwege", "title": "Radwege", "organization": "kataster-vermessung",
        "schema": "pts", "source": {"path": "../pts.csv", "geometry": {"lon": "x", "lat": "y"},
                                    "crs": "EPSG:4326"}}))
    assert cli("catalog", "load")[0] == 0
    assert cli.record("radwege").origin == "pipeline"
    assert cli("catalog", "edit", "radwege", "--set", "name=radwege-kreis",
               "--set", "title=Radwege im Kreis (kuratiert)")[0] == 0
    code, text = cli("catalog", "load")
    assert code == 0, text
    assert cli.record("radwege") is None  # not re-created beside the renamed one
    assert cli.record("radwege-kreis").title == "Radwege im Kreis (kuratiert)"

    # curated later in a YAML file: what the file changes is applied, edits are kept or
    # reported
    (root / "catalog" / "datasets" / "radwege.yaml").write_text(yaml.safe_dump({
        "name": "radwege", "title": "Radwege im Landkreis", "publisher": "kataster-vermessung",
        "description": "Alle ausgeschilderten Radwege.", "license": "dl-zero-de/2.0",
        "themes": ["TRAN"]}, allow_unicode=True))
    code, text = cli("catalog", "load")
    assert code == 1 and "radwege.yaml: radwege-kreis: title: the file says \"Radwege im " \
        "Landkreis\", the catalog has \"Radwege im Kreis (kuratiert)\"" in text, text
    record = cli.record("radwege-kreis")
    assert (record.title, record.description, record.themes) == (
        "Radwege im Kreis (kuratiert)", "Alle ausgeschilderten Radwege.", ["TRAN"])


def test_inventory_reimport_keeps_edits_and_reports_conflicts(root: Path) -> None:
    cli = Cli(root)
    sheet = root / "inventar.csv"

    def write(description: str) -> None:
        sheet.write_text("Bezeichnung;Abteilung;Beschreibung;Zugriff\n"
                         f"Spielplätze;Schulverwaltungsamt;{description};öffentlich\n",
                         encoding="utf-8")

    write("Alle Spielplätze.")
    assert cli("catalog", "import", str(sheet), "--apply")[0] == 0
    assert cli("catalog", "edit", "spielplaetze", "--set", "keywords=Spielplatz,Kinder")[0] == 0
    code, text = cli("catalog", "import", str(sheet), "--apply")
    assert code == 0 and "1 unchanged" in text, text
    assert cli.record("spielplaetze").keywords == ["Spielplatz", "Kinder"]
    assert cli("catalog", "edit", "spielplaetze", "--set", "description=Geprüft.")[0] == 0
    write("Alle öffentlichen Spielplätze.")
    code, text = cli("catalog", "import", str(sheet), "--apply")
    assert code == 1 and "inventar.csv, row 2: spielplaetze: description: the file says " \
        "\"Alle öffentlichen Spielplätze.\", the catalog has \"Geprüft.\"" in text, text
    assert cli.record("spielplaetze").description == "Geprüft."
    code, text = cli("catalog", "import", str(sheet), "--apply", "--force")
    assert code == 0, text
    record = cli.record("spielplaetze")
    assert (record.description, record.keywords) == ("Alle öffentlichen Spielplätze.",
                                                     ["Spielplatz", "Kinder"])


def test_a_store_without_load_history_reports_instead_of_overwriting(root: Path) -> None:
    """A store written by a hub from before the load history: records that agree with their
    files are adopted silently, a record edited since is reported, not overwritten."""
    cli = Cli(root)
    assert cli("catalog", "load")[0] == 0
    assert cli("catalog", "edit", "pflege", "--set", "title=Pflege (bearbeitet)")[0] == 0
    with sqlite3.connect(root / "store" / "hub.sqlite") as db:
        db.execute("DROP TABLE catalog_loads")
        db.execute("DROP TABLE alembic_version")  # made before migrations (hub.db.migrate)
    code, text = cli("catalog", "load")
    assert code == 1 and f"0 updated, {RECORDS} unchanged, 1 conflict(s)" in text, text
    assert f"pflege: title: the file says \"{PFLEGE_TITLE}\", the catalog has \"Pflege " \
        "(bearbeitet)\"" in text
    assert cli.record("pflege").title == "Pflege (bearbeitet)"
    assert cli("catalog", "load", "--force")[0] == 0
    assert cli.record("pflege").title == PFLEGE_TITLE


def test_a_merge_that_breaks_a_rule_writes_nothing(root: Path) -> None:
    cli = Cli(root)
    folder = root / "catalog" / "datasets"
    edit_yaml(folder / "pflege.yaml", access_note="Anfragen an das Sozialamt.")
    assert cli("catalog", "load")[0] == 0
    assert cli("catalog", "edit", "pflege", "--set", "data_held=false")[0] == 0
    edit_yaml(folder / "pflege.yaml", access_note=None)  # fine alone, not with the edit
    edit_yaml(folder / "breitband.yaml", description="Geändert im selben Lauf.")
    code, text = cli("catalog", "load")
    assert code == 1 and "pflege.yaml: access_note: a metadata-only record must say who " \
        "holds the data" in text, text
    record = cli.record("pflege")
    assert (record.data_held, record.access_note) == (False, "Anfragen an das Sozialamt.")
    assert cli.record("breitband").description != "Geändert im selben Lauf."  # all or nothing


def test_the_extent_of_the_data_stays_the_datas(root: Path) -> None:
    """A record without its own bbox shows its data's extent; loading keeps it that way (the
    extent is a fact of the store, never merged into the record)."""
    cli = Cli(root)
    (root / "schemas" / "pts.json").write_text(json.dumps({"fields": [
        {"name": "id", "type": "integer"},
        {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]}))
    (root / "pipelines" / "radwege.yaml").write_text(yaml.safe_dump({
        "dataset": "radwege", "title": "Radwege", "organization": "kataster-vermessung",
        "access": "public", "schema": "pts", "outside_extent": "keep",
        "source": {"path": "../pts.csv", "geometry": {"lon": "x", "lat": "y"},
                   "crs": "EPSG:4326"}}))
    (root / "catalog" / "datasets" / "radwege.yaml").write_text(yaml.safe_dump({
        "name": "radwege", "title": "Radwege im Landkreis", "publisher": "kataster-vermessung",
        "description": "Alle ausgeschilderten Radwege.", "license": "dl-zero-de/2.0"}))
    settings = load_settings(root, root / "store")
    pipeline = load_pipeline(root / "pipelines" / "radwege.yaml", settings.schemas_dir)
    for rows in ("1,13.3,51.6\n2,13.4,51.7\n", "1,13.2,51.5\n2,13.5,51.8\n"):
        (root / "pts.csv").write_text("id,x,y\n" + rows)
        assert ingest(pipeline, Store(settings.store), settings).status == "committed"
        for _ in range(2):
            code, text = cli("catalog", "load")
            assert code == 0, text
        assert f"0 updated, {RECORDS + 1} unchanged" in text, text
    assert cli.record("radwege").bbox == [13.2, 51.5, 13.5, 51.8]


def test_an_edit_between_the_merge_and_its_write_refuses_the_load(root: Path) -> None:
    """The merge reads each record, then writes all in one transaction: an edit landing in
    between (here made at the last moment before the write) refuses the whole load with a
    conflict instead of being overwritten — the revisions the merge read are checked."""
    from hub.catalog.load import load_yaml_records, sync
    from hub.errors import Conflict

    cli = Cli(root)
    assert cli("catalog", "load")[0] == 0
    edit_yaml(root / "catalog" / "datasets" / "pflege.yaml", description="Neu aus der Datei.")
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    incoming = load_yaml_records(root / "catalog" / "datasets", vocab)
    write = catalog.upsert_many

    def edited_first(records: list[Record], *args: object, **kwargs: object) -> list[str]:
        other = catalog.get("pflege", ADMIN, ALL_STATES)
        other.title = "Titel aus der API"
        write([other])  # someone's edit, between the merge's read and its write
        return write(records, *args, **kwargs)

    catalog.upsert_many = edited_first  # type: ignore[method-assign]
    with pytest.raises(Conflict, match="'pflege' was changed meanwhile"):
        sync(catalog, incoming, vocab)
    kept = cli.record("pflege")
    assert kept is not None and kept.title == "Titel aus der API"  # the edit stays
    assert kept.description != "Neu aus der Datei."  # and the load wrote nothing
    code, text = cli("catalog", "load")  # a new load merges both
    assert code == 0, text
    merged = cli.record("pflege")
    assert (merged.title, merged.description) == ("Titel aus der API", "Neu aus der Datei.")


def test_a_restricted_pipeline_without_a_record_gets_one_for_its_owner(root: Path) -> None:
    """The minimal record of restricted data names its owner (the whole load was refused:
    'name the organisations that may see a restricted dataset')."""
    cli = Cli(root)
    (root / "schemas" / "akten.json").write_text(json.dumps({"fields": [
        {"name": "nr", "type": "string"}]}))
    (root / "pipelines" / "akten.yaml").write_text(yaml.safe_dump({
        "dataset": "akten", "title": "Akten", "organization": "sozialamt",
        "access": "restricted", "schema": "akten", "source": {"path": "../akten.csv"}}))
    code, text = cli("catalog", "load")
    assert code == 0, text
    made = cli.record("akten")
    assert made is not None and (made.access, made.restricted_to) == ("restricted",
                                                                       ["sozialamt"])
