"""The one access rule (hub.access) on every face: who sees held data, who may bind a catalog
record to it, optimistic concurrency, and access that fails closed when the catalog is broken.

Real `hub serve` processes on 127.0.0.1, ckanapi for the CKAN API, httpx for downloads and the
OGC API. Org A (sozialamt) owns the held datasets; org B (kataster-vermessung) is the neighbour.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ckanapi
import httpx
import pytest
import yaml
from conftest import CENTRE, DISTRICT_BBOX, Project, free_port, hub_server

from hub.access import ANONYMOUS, OPERATOR, Viewer, access_in_force
from hub.catalog import open_catalog
from hub.catalog.editing import Editing
from hub.catalog.index import Query
from hub.errors import Conflict, Forbidden

A, B = "sozialamt", "kataster-vermessung"
FIELDS = [{"name": "nr", "type": "string"}, {"name": "geometry", "type": "geojson"}]
HELD = {"geheim": "restricted", "akte": "restricted", "fremd": "restricted",
        "offen": "public", "zweifel": "public"}


def record(name: str, publisher: str = A, **fields: object) -> dict[str, object]:
    """A record that passes the publication checklist once its data is held."""
    return {"name": name, "title": f"Titel {name}", "description": "Test",
            "publisher": publisher, "license": "dl-by-de/2.0", "frequency": "ANNUAL",
            "contact": {"name": "Team", "email": "team@example.org"}, **fields}


def held_project(root: Path) -> Project:
    """Held datasets of org A; records of some (registered by the operator, not loaded, so
    `geheim` stays without one)."""
    project = Project(root)
    (root / "catalog" / "district.yaml").write_text(yaml.safe_dump({
        "name": "Testkreis", "ags": "12062", "bbox": DISTRICT_BBOX,
        "default_license": "dl-by-de/2.0"}), encoding="utf-8")
    project.schema("punkte", FIELDS)
    for name, access in HELD.items():
        rows = "\n".join(f"{name}-{i},{CENTRE[0] + i / 1000},{CENTRE[1]}" for i in range(3))
        (project.data / f"{name}.csv").write_text(f"nr,lon,lat\n{rows}\n", encoding="utf-8")
        project.pipeline(name, "punkte", {"path": f"data/{name}.csv", "crs": "EPSG:4326",
                                          "geometry": {"lon": "lon", "lat": "lat"}},
                         organization=A, access=access)
        assert project.ingest(name).status == "committed"
    files = root / "records"
    files.mkdir()
    for data in (record("akte", access="restricted", restricted_to=[A]),
                 # an admin gave org B a record of A's data, restricted to B
                 record("fremd", B, access="restricted", restricted_to=[B]),
                 record("offen"), record("zweifel", access="internal")):
        path = files / f"{data['name']}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        assert project.cli("catalog", "add", str(path)).exit_code == 0
    return project


def token(project: Project, user: str, org: str, role: str) -> str:
    added = project.cli("user", "add", user, "--org", org, "--role", role)
    assert added.exit_code == 0, added
    return project.cli("token", "create", user).output.strip().splitlines()[-1]


@dataclass
class Site:
    url: str
    project: Project
    tokens: dict[str, str]

    def ckan(self, user: str | None = None) -> ckanapi.RemoteCKAN:
        return ckanapi.RemoteCKAN(self.url, apikey=self.tokens.get(user or ""))

    def data(self, user: str | None, name: str) -> dict[str, int]:
        """Status of the dataset's data through the downloads and the OGC API."""
        headers = {"Authorization": self.tokens[user]} if user else {}
        return {path: httpx.get(self.url + path, headers=headers, timeout=30).status_code
                for path in (f"/downloads/{name}/latest.csv",
                             f"/ogc/collections/{name}/items", f"/api/datasets/{name}")}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    project = held_project(tmp_path_factory.mktemp("access") / "project")
    tokens = {"a_editor": token(project, "anna", A, "editor"),
              "a_viewer": token(project, "arno", A, "viewer"),
              "b_editor": token(project, "bert", B, "editor"),
              "b_viewer": token(project, "berta", B, "viewer"),
              "admin": token(project, "root", "landkreis-elbe-elster", "admin")}
    with hub_server(project.root, project.store_dir) as server:
        yield Site(server.url, project, tokens)


def hidden_from_b(site: Site, name: str) -> None:
    for user in ("b_editor", "b_viewer", None):
        assert set(site.data(user, name).values()) == {404}, (user, name)


# -- defect 1: restricted data cannot be claimed through its catalog name ----------------------

def test_editor_of_another_org_cannot_create_a_record_for_held_data(site: Site) -> None:
    hidden_from_b(site, "geheim")
    with pytest.raises(ckanapi.NotAuthorized, match="holds data under the name 'geheim'"):
        site.ckan("b_editor").action.package_create(
            name="geheim", title="Meins", notes="x", owner_org=B, license_id="dl-by-de/2.0",
            private=True, extras=[{"key": "access_level", "value": "restricted"},
                                  {"key": "restricted_to", "value": B}])
    hidden_from_b(site, "geheim")
    assert set(site.data("a_viewer", "geheim").values()) == {200}  # the owner sees its data


def test_editor_of_another_org_cannot_rename_a_record_onto_held_data(site: Site) -> None:
    b = site.ckan("b_editor").action
    own = b.package_create(name="b-eigen", title="B", notes="x", owner_org=B,
                           license_id="dl-by-de/2.0", private=True,
                           extras=[{"key": "access_level", "value": "restricted"},
                                   {"key": "restricted_to", "value": B}])
    with pytest.raises(ckanapi.NotAuthorized, match="rename a record onto"):
        b.package_patch(id=own["id"], name="geheim")
    with pytest.raises(ckanapi.NotAuthorized):
        b.package_update(**{**b.package_show(id=own["id"]), "name": "geheim"})
    hidden_from_b(site, "geheim")


def test_a_name_freed_by_a_soft_delete_is_not_free_for_another_org(site: Site) -> None:
    site.ckan("a_editor").action.package_delete(id="akte")
    with pytest.raises(ckanapi.NotAuthorized):
        site.ckan("b_editor").action.package_create(
            name="akte", title="Meins", notes="x", owner_org=B, license_id="dl-by-de/2.0")
    hidden_from_b(site, "akte")
    assert set(site.data("a_viewer", "akte").values()) == {200}
    again = site.ckan("a_editor").action.package_create(  # the owner may re-create it
        name="akte", title="Akte", notes="x", owner_org=A, license_id="dl-by-de/2.0",
        private=True, extras=[{"key": "access_level", "value": "restricted"},
                              {"key": "restricted_to", "value": A}])
    assert again["name"] == "akte"
    hidden_from_b(site, "akte")


def test_only_the_owner_changes_who_sees_held_data(site: Site) -> None:
    """`fremd` is A's data with a record an admin registered for B (restricted to B): a record
    of another organisation narrows, never widens; B may edit its text, not who may see."""
    b = site.ckan("b_editor").action
    hidden_from_b(site, "fremd")
    assert set(site.data("a_viewer", "fremd").values()) == {200}  # 404 before: the owner
    shown = b.package_show(id="fremd")
    assert not [r for r in shown["resources"] if "/downloads/" in r["url"]]  # nor its facts
    with pytest.raises(ckanapi.NotAuthorized, match="change who may see it"):
        b.package_patch(id="fremd", extras=[{"key": "access_level", "value": "restricted"},
                                            {"key": "restricted_to", "value": f"{B},hauptamt"}])
    with pytest.raises(ckanapi.NotAuthorized, match="change who may see it"):
        b.package_patch(id="fremd", private=False)
    assert b.package_patch(id="fremd", notes="Neue Beschreibung")["notes"] == \
        "Neue Beschreibung"
    after = b.package_show(id="fremd")
    assert after["private"] and after["extras"] == shown["extras"]
    hidden_from_b(site, "fremd")
    site.ckan("admin").action.package_patch(id="fremd", private=False)  # admins may
    assert set(site.data(None, "fremd").values()) == {404}  # the pipeline keeps it restricted
    site.ckan("admin").action.package_patch(  # the owner's record may name B
        id="fremd", owner_org=A, private=True,
        extras=[{"key": "access_level", "value": "restricted"},
                {"key": "restricted_to", "value": f"{A},{B}"}])
    assert set(site.data("b_viewer", "fremd").values()) == {200}
    assert set(site.data(None, "fremd").values()) == {404}
    assert [r for r in b.package_show(id="fremd")["resources"] if "/downloads/" in r["url"]]


def test_a_record_registered_before_the_data_arrives_does_not_open_it(site: Site) -> None:
    site.ckan("b_editor").action.package_create(  # no data under the name yet: allowed
        name="kommt", title="Vorab", notes="x", owner_org=B, license_id="dl-by-de/2.0",
        private=True, extras=[{"key": "access_level", "value": "restricted"},
                              {"key": "restricted_to", "value": B}])
    project = site.project
    (project.data / "kommt.csv").write_text(f"nr,lon,lat\nk-1,{CENTRE[0]},{CENTRE[1]}\n",
                                            encoding="utf-8")
    project.pipeline("kommt", "punkte", {"path": "data/kommt.csv", "crs": "EPSG:4326",
                                         "geometry": {"lon": "lon", "lat": "lat"}},
                     organization=A, access="restricted")
    assert project.ingest("kommt").status == "committed"
    hidden_from_b(site, "kommt")
    assert set(site.data("a_viewer", "kommt").values()) == {200}
    with pytest.raises(ckanapi.NotAuthorized):  # and now it is bound to A's data
        site.ckan("b_editor").action.package_patch(id="kommt", private=False)


def test_owner_sees_its_restricted_data_without_any_record(site: Site) -> None:
    assert set(site.data("a_viewer", "geheim").values()) == {200}
    listed = httpx.get(site.url + "/api/datasets", timeout=30,
                       headers={"Authorization": site.tokens["a_viewer"]}).json()
    assert "geheim" in {d["name"] for d in listed}
    assert "geheim" not in {d["name"] for d in httpx.get(site.url + "/api/datasets").json()}


# -- defect 13: optimistic concurrency ---------------------------------------------------------

def test_an_update_based_on_an_outdated_revision_is_refused(site: Site) -> None:
    a = site.ckan("a_editor").action
    first = a.package_show(id="offen")
    revision = first["hub_revision"]
    changed = a.package_patch(id="offen", title="Erste Änderung", if_revision=revision)
    assert changed["hub_revision"] == revision + 1
    with pytest.raises(ckanapi.ValidationError) as refused:
        a.package_patch(id="offen", title="Zweite, veraltet", if_revision=revision)
    assert "changed meanwhile" in str(refused.value.error_dict["if_revision"])
    with pytest.raises(ckanapi.ValidationError):
        a.package_update(**{**first, "title": "Veraltet", "if_revision": revision})
    assert a.package_show(id="offen")["title"] == "Erste Änderung"
    assert a.package_update(**{**a.package_show(id="offen"), "title": "Offene Daten",
                               "if_revision": revision + 1})["hub_revision"] == revision + 2
    draft = a.package_create(name="entwurf", title="Entwurf", notes="x", owner_org=A,
                             license_id="dl-by-de/2.0", private=True)
    a.package_patch(id="entwurf", notes="geändert")
    with pytest.raises(ckanapi.ValidationError):
        a.package_delete(id="entwurf", if_revision=draft["hub_revision"])
    a.package_delete(id="entwurf", if_revision=draft["hub_revision"] + 1)
    with pytest.raises(ckanapi.NotFound):
        site.ckan().action.package_show(id="entwurf")


# -- defect 16 (part): the record is the single source of a dataset's metadata -----------------

def test_a_title_changed_through_the_api_shows_on_every_surface(site: Site) -> None:
    site.ckan("a_editor").action.package_patch(id="zweifel", title="Neuer Titel",
                                               private=False)
    assert "Neuer Titel" in httpx.get(site.url + "/").text
    listed = {d["name"]: d for d in httpx.get(site.url + "/api/datasets").json()}
    assert listed["zweifel"]["title"] == "Neuer Titel"
    assert httpx.get(site.url + "/ogc/collections/zweifel").json()["title"] == "Neuer Titel"
    assert "Neuer Titel" in {c["title"] for c in
                             httpx.get(site.url + "/ogc/collections").json()["collections"]}
    assert httpx.get(site.url + "/downloads/zweifel").json()["title"] == "Neuer Titel"


# -- defect 12: one features API ---------------------------------------------------------------

def test_the_old_features_route_redirects_to_the_ogc_api(site: Site) -> None:
    moved = httpx.get(site.url + "/api/datasets/offen/features?limit=2")
    assert moved.status_code == 308
    assert moved.headers["location"] == "/ogc/collections/offen/items?limit=2"
    items = httpx.get(site.url + "/api/datasets/offen/features?limit=2",
                      follow_redirects=True).json()
    assert len(items["features"]) == 2
    assert httpx.get(site.url + "/api/datasets/geheim/features",
                     follow_redirects=True).status_code == 404


# -- defect 2: access fails closed -------------------------------------------------------------

def serve_command(project: Project, port: int, **env: str) -> subprocess.CompletedProcess:
    code = "import sys; from hub.cli import app; sys.exit(app())"
    return subprocess.run(
        [sys.executable, "-c", code, "serve", "--port", str(port), "--root",
         str(project.root), "--store", str(project.store_dir)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def test_a_broken_catalog_stops_the_server_from_starting(tmp_path: Path) -> None:
    project = held_project(tmp_path / "project")
    organizations = project.root / "catalog" / "organizations.yaml"
    organizations.write_text(organizations.read_text(encoding="utf-8") + "\n- id: [kaputt\n",
                             encoding="utf-8")
    started = serve_command(project, free_port())  # returns: the server never runs
    assert started.returncode != 0
    assert "organizations.yaml" in started.stderr and "Serving" not in started.stdout
    started = serve_command(project, free_port(), HUB_WORKERS="2")  # each worker checks it
    assert started.returncode != 0
    assert "organizations.yaml" in started.stderr and "Serving" not in started.stdout
    (project.root / "catalog" / "vocabularies" / "licenses.yaml").unlink()
    organizations.write_text("[]\n", encoding="utf-8")
    started = serve_command(project, free_port())
    assert started.returncode != 0 and "licenses.yaml" in started.stderr


def test_a_catalog_broken_while_serving_answers_503_not_the_pipelines_access(
        tmp_path: Path) -> None:
    project = held_project(tmp_path / "project")  # zweifel: public pipeline, internal record
    with hub_server(project.root, project.store_dir) as server:
        assert httpx.get(server.url + "/downloads/zweifel/latest.csv").status_code == 404
        with sqlite3.connect(project.store_dir / "hub.sqlite") as db:
            db.execute("ALTER TABLE catalog_records RENAME TO broken")
        for path in ("/downloads/zweifel/latest.csv", "/ogc/collections/zweifel/items",
                     "/api/datasets/zweifel", "/downloads/offen/latest.csv"):
            answer = httpx.get(server.url + path, timeout=30)
            assert answer.status_code == 503, (path, answer.text)
            assert "Test" not in answer.text and "zweifel-" not in answer.text
        assert httpx.get(server.url + "/api/datasets").status_code == 503
        assert httpx.get(server.url + "/ogc/collections").status_code == 503


def test_serving_without_a_catalog_is_an_explicit_setting(tmp_path: Path) -> None:
    project = held_project(tmp_path / "project")
    for part in ("organizations.yaml", "vocabularies"):
        path = project.root / "catalog" / part
        if path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path)
    assert serve_command(project, free_port()).returncode != 0  # not by accident
    wrong = serve_command(project, free_port(), HUB_CATALOG="aus")
    assert wrong.returncode != 0 and "HUB_CATALOG" in wrong.stderr
    with hub_server(project.root, project.store_dir, HUB_CATALOG="none") as server:
        # the pipelines' access alone: zweifel is public by its pipeline, geheim restricted
        assert httpx.get(server.url + "/downloads/zweifel/latest.csv").status_code == 200
        assert httpx.get(server.url + "/ogc/collections/geheim").status_code == 404
        assert {d["name"] for d in httpx.get(server.url + "/api/datasets").json()} == {
            "offen", "zweifel"}
        assert httpx.get(server.url + "/api/3/action/package_list").status_code == 503


# -- the rules in the core, for every face ------------------------------------------------------

@pytest.fixture
def core(tmp_path: Path) -> Project:
    return held_project(tmp_path / "project")


def test_the_core_write_functions_apply_the_rules_for_every_face(core: Project) -> None:
    catalog, vocab, _ = open_catalog(core.settings())
    b_editor = Viewer(staff=True, organization=B, editor=True, user="bert")
    a_editor = Viewer(staff=True, organization=A, editor=True, user="anna")
    with pytest.raises(Forbidden):
        Editing(catalog, vocab, b_editor).create(record("geheim", B))
    with pytest.raises(Forbidden):
        Editing(catalog, vocab, ANONYMOUS).create(record("neu", B))
    own = Editing(catalog, vocab, b_editor).create(record("b-eigen", B, data_held=False,
                                                          access_note="Beim Amt B."))
    with pytest.raises(Forbidden):
        Editing(catalog, vocab, b_editor).patch(own, {"name": "geheim"})
    created = Editing(catalog, vocab, a_editor).create(record("geheim"))  # public record
    assert created.revision == 1
    with pytest.raises(Forbidden):  # nor rename A's record away from its data
        Editing(catalog, vocab, b_editor).patch(created, {"name": "weg"})
    with pytest.raises(Forbidden):
        Editing(catalog, vocab, b_editor).add_organization(vocab.organizations[B])
    patched = Editing(catalog, vocab, a_editor).patch(created, {"title": "Neu"}, 1)
    assert patched.revision == 2
    with pytest.raises(Conflict, match="revision 2"):
        Editing(catalog, vocab, a_editor).patch(created, {"title": "Alt"}, 1)
    # a record less strict than its data (public record, restricted data) does not carry
    # the data's facts: rows, versions, downloads, extent
    assert catalog.get("akte", OPERATOR).rows == 3 and catalog.get("offen", ANONYMOUS).rows == 3
    assert catalog.get("geheim", ANONYMOUS).rows is None and patched.version is None
    assert not [d for d in patched.served() if "/downloads/" in d.url]
    around = (CENTRE[0] - 0.1, CENTRE[1] - 0.1, CENTRE[0] + 0.1, CENTRE[1] + 0.1)
    found = catalog.search(Query(bbox=around, rows=100), ANONYMOUS).names
    assert "offen" in found and "geheim" not in found
    # the CLI is the operator: an admin, through the same functions
    assert Editing(catalog, vocab, OPERATOR).patch(patched, {"title": "CLI"}, 2).revision == 3


def test_cli_edits_go_through_the_core(core: Project) -> None:
    edited = core.cli("catalog", "edit", "offen", "--set", "title=Vom Amt")
    assert edited.exit_code == 0 and "updated" in edited.text
    catalog, _, _ = open_catalog(core.settings())
    assert catalog.get("offen", OPERATOR).revision == 2
    bad = core.cli("catalog", "edit", "offen", "--set", "restricted_to=niemand")
    assert bad.exit_code == 1 and "restricted_to" in bad.text


def test_revisions_are_added_to_a_store_from_before_them(core: Project) -> None:
    with sqlite3.connect(core.store_dir / "hub.sqlite") as db:
        db.execute("ALTER TABLE catalog_records DROP COLUMN revision")
        db.execute("DROP TABLE alembic_version")  # made before migrations (hub.db.migrate)
    catalog, _, _ = open_catalog(core.settings())
    assert catalog.get("offen", OPERATOR).revision == 1


def test_access_in_force() -> None:
    assert access_in_force("restricted", None, A) == ("restricted", [A])
    assert access_in_force("restricted", ("restricted", [B]), A, A) == ("restricted", [B, A])
    assert access_in_force("public", ("restricted", [B]), A, A) == ("restricted", [B, A])
    assert access_in_force("restricted", ("public", []), A) == ("restricted", [A])
    assert access_in_force("public", ("internal", []), A) == ("internal", [])
    assert access_in_force("secret", None, A) == ("restricted", [A])  # unknown: closed
    # the record's organisations count when the owner publishes it
    assert access_in_force("restricted", ("restricted", [A, B]), A, A) == ("restricted", [A, B])
    assert access_in_force("restricted", ("restricted", [B]), A, B) == ("restricted", [A])
    assert access_in_force("public", ("restricted", [B]), A, B) == ("restricted", [A])


def test_jobs_and_to_do_lists_are_followed_by_the_organisations_members_and_admins() -> None:
    member = Viewer.of_role("viewer", "sozialamt", "sam")
    assert member.may_follow("sozialamt")
    assert not member.may_follow("bauamt") and not member.may_follow("")
    assert Viewer.of_role("admin", "landkreis", "ada").may_follow("bauamt")
    assert not ANONYMOUS.may_follow("sozialamt") and not ANONYMOUS.may_follow("")
    assert not Viewer.of_role("editor", "sozialamt", "ed", active=False).may_follow("sozialamt")
