"""Writing through the CKAN Action API of a running hub with the real `ckanapi` client (create,
update, patch, delete, resources with real file uploads, organisations), who may write what,
validation and hostile input; and the `ckanapi` command line against real hubs: `dump` from one
hub and `load` into another gives the same datasets, `search` pages over more than 1,000.
Contract: ../shared/reference/ckan-dcat.md §1.7, §2, §8.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ckanapi
import httpx
import pytest
from ckan_project import Hub, build, new_token, ready_without_data, run_hub
from conftest import hub_cli, serving

from hub.catalog import open_catalog
from hub.catalog.model import validate
from hub.config import load_settings

CKANAPI = Path(sys.executable).with_name("ckanapi")  # the installed command
# data with every byte value, NULs and invalid UTF-8 included
PAYLOAD = bytes(range(256)) * 40 + b"\x00\xff\xfe" + "Straße;Müller\r\n".encode("cp1252")
LINK = {"url": "https://example.org/daten.csv", "name": "Verweis"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The demo project with data, catalog and users (user -> token), built once and never
    served: tests run hubs on copies of it."""
    root = tmp_path_factory.mktemp("ckan-write-built") / "project"
    return root, build(root)


@pytest.fixture(scope="module")
def hub_w(built: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Hub]:
    """The hub the write tests share: each writes datasets of its own names."""
    root = tmp_path_factory.mktemp("ckan-write") / "project"
    shutil.copytree(built[0], root)
    with serving(root) as url:
        yield Hub(root, url, built[1])


@pytest.fixture
def fresh_hub(built: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[Hub]:
    """A hub of its own, as built, for a test that compares whole catalogs: what other tests
    wrote to the shared hub must not matter (nor the order they ran in)."""
    root = tmp_path / "project"
    shutil.copytree(built[0], root)
    with serving(root) as url:
        yield Hub(root, url, built[1])


@pytest.fixture
def http(hub_w: Hub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub_w.url, follow_redirects=False, timeout=60) as client:
        yield client


# what a public dataset needs besides a licence: the publication checklist of a metadata-only
# record (contact, owner, update frequency, access note; hub.catalog.checklist)
READY = {"maintainer": "Team Daten", "maintainer_email": "daten@lkee.example.org"}
READY_EXTRAS = [{"key": "frequency", "value": "ANNUAL"}, {"key": "data_held", "value": "false"},
                {"key": "access_note", "value": "Die Daten liegen im Fachverfahren."}]


def package(name: str, org: str = "sozialamt", **fields: Any) -> dict[str, Any]:
    """A valid package dict that passes the publication checklist, so it may be public (the
    `extras` given come after the checklist's)."""
    extras = fields.pop("extras", [])
    return {"name": name, "title": f"Titel {name}", "notes": f"Beschreibung von {name}.",
            "owner_org": org, "license_id": "dl-by-de/2.0", **READY,
            "extras": READY_EXTRAS + extras if isinstance(extras, list) else extras, **fields}


def same_except_times(before: dict, after: dict, *also: str) -> None:
    """Two package dicts are equal apart from modification times and revisions (and keys in
    `also`)."""
    def strip(p: dict) -> dict:
        p = {k: v for k, v in p.items() if k not in ("metadata_modified", "hub_revision", *also)}
        p["resources"] = [{k: v for k, v in r.items() if k != "metadata_modified"}
                          for r in p.get("resources", [])]
        return p
    assert strip(before) == strip(after)


def extras(pkg: dict) -> dict[str, str]:
    return {e["key"]: e["value"] for e in pkg["extras"]}


def upload_files(store: Path) -> set[tuple[str, bytes]]:
    """The uploaded files kept in a store (path, content); staging included."""
    root = store / "uploads"
    return {(str(p.relative_to(root)), p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def ckanapi_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    # dump/load run worker processes named `ckanapi`: found on PATH
    env = {**os.environ, "PATH": f"{CKANAPI.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(CKANAPI), *args], capture_output=True, text=True, env=env,
                            timeout=300)
    assert not check or result.returncode == 0, (args, result.stdout, result.stderr)
    return result


# -- ckanapi dump | load, ckanapi search ------------------------------------------------------

def test_ckanapi_dump_and_load_copy_a_hub(fresh_hub: Hub, tmp_path: Path) -> None:
    hub_w = fresh_hub  # the hub as built, plus one upload of this test's own
    sam = hub_w.ckan("sam")
    sam.action.package_create(**package(
        "mit-hochgeladener-datei", tags=[{"name": "Upload"}], groups=[{"name": "soci"}],
        extras=[{"key": "herkunft", "value": "Fachverfahren"}], resources=[LINK]))
    uploaded = sam.action.resource_create(package_id="mit-hochgeladener-datei", name="Datei",
                                          upload=("tabelle.csv", io.BytesIO(PAYLOAD)))
    store_b = tmp_path / "store-b"  # same project, a store of its own: no catalog loaded
    run_hub(hub_w.root, "user", "add", "bea", "--org", "landkreis-elbe-elster", "--role",
            "admin", store=store_b)
    token_b = new_token(hub_w.root, "bea", store=store_b)[1]
    with serving(hub_w.root, store=store_b) as url_b:
        assert ckanapi.RemoteCKAN(url_b).action.package_list() == []
        dump_a, dump_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        ckanapi_cli("dump", "datasets", "--all", "-g", "-q", "-r", hub_w.url, "-O", str(dump_a))
        loaded = ckanapi_cli("load", "datasets", "--upload-resources", "-I", str(dump_a),
                             "-r", url_b, "-a", token_b, check=False)
        ckanapi_cli("dump", "datasets", "--all", "-q", "-r", url_b, "-O", str(dump_b))
        names_a = hub_w.ckan().action.package_list()
        # B holds no data: it takes what passes A's own checklist (data held by A is linked);
        # the others are refused with the checklist's missing items
        ready = ready_without_data(hub_w.root, names_a)
        assert {"mit-hochgeladener-datei", "gemeinden"} <= set(ready) and len(ready) < len(names_a)
        assert ckanapi.RemoteCKAN(url_b).action.package_list() == ready
        copied = ckanapi.RemoteCKAN(url_b).action.resource_show(id=uploaded["id"])
        assert httpx.get(copied["url"], timeout=30).content == PAYLOAD
    output = loaded.stdout + loaded.stderr
    assert loaded.stderr.count(" create None ") == len(ready), output[-2000:]
    assert "publication checklist misses map or table preview" in output, output[-2000:]

    def read(path: Path) -> list[dict]:
        text = path.read_text("utf-8").replace(hub_w.url, "SITE").replace(url_b, "SITE")
        dumped = [json.loads(line) for line in text.splitlines()]
        for p in dumped:  # what the receiving hub sets itself
            for key in ("metadata_created", "metadata_modified"):
                p.pop(key)
            for r in p["resources"]:
                r.pop("metadata_modified")
                if r["url_type"] == "upload":
                    r.pop("last_modified")  # the file was uploaded again, just now
        return dumped

    a, b = read(dump_a), read(dump_b)
    assert [p["name"] for p in a] == names_a and len(a) > 50
    assert "mit-hochgeladener-datei" in names_a and "gemeinden" in names_a
    for pa, pb in zip([p for p in a if p["name"] in ready], b, strict=True):
        assert pa == pb, pa["name"]


def test_ckanapi_search_pages_over_more_than_1000_datasets(hub_w: Hub, tmp_path: Path) -> None:
    store_c = tmp_path / "store-c"
    catalog, vocab, _ = open_catalog(load_settings(hub_w.root, store_c))
    offices = ["sozialamt", "umweltamt", "kataster-vermessung", "hauptamt"]
    records = [validate({"name": f"massendaten-{i:04d}", "title": f"Massendaten Nummer {i}",
                         "description": "Viele Datensätze zum Blättern.",
                         "publisher": offices[i % 4], "license": "dl-by-de/2.0",
                         "access": "internal" if i % 40 == 0 else "public", "origin": "cli"},
                        vocab) for i in range(1150)]
    for start in range(0, len(records), 300):  # a few transactions: a few timestamps
        catalog.upsert_many(records[start:start + 300])
    public = {r.name for r in records if r.access == "public"}
    assert len(public) > 1100
    with serving(hub_w.root, store=store_c) as url_c:
        out = tmp_path / "found.jsonl"
        ckanapi_cli("search", "datasets", "-r", url_c, "-O", str(out))
        seen = [json.loads(line)["name"] for line in out.read_text("utf-8").splitlines()]
        assert len(seen) == len(set(seen)) == len(public) and set(seen) == public
        ckan = ckanapi.RemoteCKAN(url_c)
        first = ckan.action.package_search(rows=5000, sort="name asc")  # rows: at most 1000
        assert first["count"] == len(public) and len(first["results"]) == 1000
        rest = ckan.action.package_search(rows=1000, start=1000, sort="name asc")
        assert [p["name"] for p in first["results"] + rest["results"]] == sorted(public)
        filtered = tmp_path / "sozialamt.jsonl"
        ckanapi_cli("search", "datasets", "q=organization:sozialamt", "-r", url_c, "-O",
                    str(filtered))
        assert sorted(json.loads(line)["name"] for line in filtered.read_text().splitlines()
                      ) == sorted(r.name for r in records
                                  if r.access == "public" and r.publisher == "sozialamt")


# -- create, update, patch, delete ----------------------------------------------------------

def test_create_and_the_catalog_sees_it(hub_w: Hub, http: httpx.Client) -> None:
    sam = hub_w.ckan("sam")
    spatial = {"type": "Polygon", "coordinates": [[[13.3, 51.5], [13.4, 51.5], [13.4, 51.6],
                                                   [13.3, 51.6], [13.3, 51.5]]]}
    created = sam.action.package_create(**package(
        "spielplaetze-neu", title="Spielplätze (neu erfasst)", version="2024-1",
        maintainer="Sozialamt, Team Spiel", maintainer_email="spiel@lkee.example.org",
        author="Erika Muster", author_email="erika@lkee.example.org",
        url="https://www.lkee.example.org/spielplaetze",
        tags=[{"name": "Spielplatz"}, {"name": "Kinder"}], groups=[{"name": "soci"}],
        extras=[{"key": "spatial", "value": json.dumps(spatial)},
                {"key": "herkunft", "value": "Erhebung 2024"}],
        resources=[{"url": "https://example.org/spielplaetze.geojson", "name": "Karte",
                    "format": "GeoJSON", "description": "Alle Spielplätze"}, LINK]))
    shown = hub_w.ckan().action.package_show(id="spielplaetze-neu")
    assert created == shown
    assert (shown["title"], shown["version"], shown["maintainer"], shown["author_email"],
            shown["url"]) == ("Spielplätze (neu erfasst)", "2024-1", "Sozialamt, Team Spiel",
                              "erika@lkee.example.org", "https://www.lkee.example.org/spielplaetze")
    assert shown["organization"]["name"] == "sozialamt" and shown["state"] == "active"
    assert [t["name"] for t in shown["tags"]] == ["Spielplatz", "Kinder"]
    assert [g["name"] for g in shown["groups"]] == ["soci"]
    assert extras(shown)["herkunft"] == "Erhebung 2024"
    geometry = json.loads(extras(shown)["spatial"])
    assert geometry["type"] == "Polygon"
    assert [r["name"] for r in shown["resources"]] == ["Karte", "Verweis"]
    assert shown["resources"][0]["format"] == "GEOJSON"
    assert "spielplaetze-neu" in hub_w.ckan().action.package_list()
    found = hub_w.ckan().action.package_search(q="Spielplätze erfasst", fq="tags:Spielplatz")
    assert [p["name"] for p in found["results"]] == ["spielplaetze-neu"]
    assert hub_w.ckan().action.package_search(ext_bbox="13.35,51.55,13.36,51.56")["count"] >= 1
    # the catalog itself, its command line and its DCAT feeds
    shown_cli = hub_cli(hub_w.root, "catalog", "show", "spielplaetze-neu").stdout
    assert "Spielplätze (neu erfasst)" in shown_cli and "origin: api" in shown_cli
    assert "Erhebung 2024" in shown_cli
    dataset_ttl = http.get(f"/dataset/{shown['id']}.ttl")
    assert dataset_ttl.status_code == 200 and "Spielplätze (neu erfasst)" in dataset_ttl.text
    assert shown["id"] in http.get("/catalog.ttl").text


def test_update_replaces_the_whole_dataset(hub_w: Hub) -> None:
    sam = hub_w.ckan("sam")
    first = sam.action.package_create(**package(
        "wird-ersetzt", tags=[{"name": "Alt"}], extras=[{"key": "alt", "value": "1"}],
        resources=[{"url": "https://example.org/eins.csv", "name": "Eins"},
                   {"url": "https://example.org/zwei.csv", "name": "Zwei"}]))
    one, two = first["resources"]
    second = dict(first, title="Neuer Titel", resources=[dict(two, description="geändert")],
                  tags=[], extras=READY_EXTRAS)
    updated = sam.action.package_update(**second)
    assert updated["title"] == "Neuer Titel" and updated["id"] == first["id"]
    assert [r["id"] for r in updated["resources"]] == [two["id"]]  # omitted: deleted
    assert updated["resources"][0]["description"] == "geändert"
    assert updated["tags"] == [] and "alt" not in extras(updated)
    assert updated["metadata_modified"] > first["metadata_modified"]
    assert updated["metadata_created"] == first["metadata_created"]
    with pytest.raises(ckanapi.NotFound):
        sam.action.resource_show(id=one["id"])
    minimal = sam.action.package_update(**package("wird-ersetzt"))  # by name, nothing else
    assert minimal["resources"] == [] and minimal["id"] == first["id"]
    assert minimal["title"] == "Titel wird-ersetzt"


def test_patch_changes_only_the_given_keys(hub_w: Hub) -> None:
    sam = hub_w.ckan("sam")
    before = sam.action.package_create(**package(
        "wird-gepatcht", tags=[{"name": "Bleibt"}], groups=[{"name": "educ"}],
        extras=[{"key": "bleibt", "value": "ja"}], resources=[LINK]))
    sam.action.resource_create(package_id="wird-gepatcht", name="Datei",
                               upload=("bleibt.csv", io.BytesIO(PAYLOAD)))
    before = sam.action.package_show(id="wird-gepatcht")
    after = sam.action.package_patch(id="wird-gepatcht", notes="Nur die Beschreibung.")
    assert after["notes"] == "Nur die Beschreibung."
    same_except_times(before, after, "notes")
    assert after["metadata_modified"] > before["metadata_modified"]
    retitled = sam.action.package_patch(id=before["id"], title="Anders", tags=[{"name": "Neu"}])
    same_except_times(after, retitled, "title", "tags")
    assert httpx.get(retitled["resources"][1]["url"], timeout=30).content == PAYLOAD
    gemeinden = hub_w.ckan("ann").action.package_show(id="gemeinden")  # held in the store
    patched = hub_w.ckan("ann").action.package_patch(id="gemeinden", version="2021")
    same_except_times(gemeinden, patched, "version")


def test_delete_is_soft_and_frees_the_name(hub_w: Hub) -> None:
    sam, anon = hub_w.ckan("sam"), hub_w.ckan()
    gone = sam.action.package_create(**package("wird-geloescht", tags=[{"name": "Weg"}],
                                               resources=[LINK]))
    assert sam.action.package_delete(id="wird-geloescht") is None
    for who in (anon, hub_w.ckan("vic"), hub_w.ckan("kat")):  # the viewer of the same office too
        with pytest.raises(ckanapi.NotFound):
            who.action.package_show(id=gone["id"])
    assert "wird-geloescht" not in anon.action.package_list()
    assert anon.action.package_search(q="name:wird-geloescht", include_private=True)[
        "count"] == 0
    assert "Weg" not in anon.action.tag_list()
    with pytest.raises(ckanapi.NotFound):
        anon.action.resource_show(id=gone["resources"][0]["id"])
    for editor in (sam, hub_w.ckan("ann")):  # those who may edit it still see it
        assert editor.action.package_show(id="wird-geloescht")["state"] == "deleted"
    again = sam.action.package_create(**package("wird-geloescht", title="Neu angelegt"))
    assert again["state"] == "active" and again["resources"] == []
    assert anon.action.package_show(id="wird-geloescht")["title"] == "Neu angelegt"


# -- resources and uploads ------------------------------------------------------------------

def test_resource_uploads(hub_w: Hub, tmp_path: Path, http: httpx.Client) -> None:
    sam = hub_w.ckan("sam")
    sam.action.package_create(**package("mit-dateien", resources=[LINK]))
    path = tmp_path / "Messwerte 2024 (final).csv"
    path.write_bytes(PAYLOAD)
    with path.open("rb") as file:
        from_file = sam.action.resource_create(package_id="mit-dateien", name="Messwerte",
                                               description="Rohdaten", upload=file)
    assert hub_w.ckan().action.resource_show(id=from_file["id"]) == from_file
    from_tuple = sam.action.resource_create(package_id="mit-dateien", name="Zweite",
                                            upload=("zweite.json", io.BytesIO(b'{"a": 1}')))
    assert hub_w.ckan().action.resource_show(id=from_tuple["id"]) == from_tuple
    for resource, content in ((from_file, PAYLOAD), (from_tuple, b'{"a": 1}')):
        assert resource["url_type"] == "upload" and resource["size"] == len(content)
        assert resource["hash"] == "sha256:" + hashlib.sha256(content).hexdigest()
        assert resource["url"].startswith(f"{hub_w.url}/dataset/")
        download = httpx.get(resource["url"], timeout=30)
        assert download.status_code == 200 and download.content == content
        assert download.headers["content-disposition"].startswith("attachment")
    assert from_file["mimetype"] == "text/csv" and from_file["format"] == "CSV"
    assert from_tuple["url"].endswith("/zweite.json")
    shown = sam.action.package_show(id="mit-dateien")
    assert [r["id"] for r in shown["resources"]][1:] == [from_file["id"], from_tuple["id"]]

    patched = sam.action.resource_patch(id=from_file["id"], description="Geprüft")
    assert patched["description"] == "Geprüft" and patched["name"] == "Messwerte"
    assert (patched["url"], patched["url_type"]) == (from_file["url"], "upload")
    assert httpx.get(patched["url"], timeout=30).content == PAYLOAD
    updated = sam.action.resource_update(id=from_file["id"], name="Messwerte (neu)",
                                         description="Nur Text geändert")
    assert updated["url"] == from_file["url"] and updated["name"] == "Messwerte (neu)"
    assert httpx.get(updated["url"], timeout=30).content == PAYLOAD  # the file stays
    replaced = sam.action.resource_patch(id=from_file["id"],
                                         upload=("neu.csv", io.BytesIO(b"neu;1\n")))
    assert httpx.get(replaced["url"], timeout=30).content == b"neu;1\n"
    assert http.get(from_file["url"].removeprefix(hub_w.url)).status_code == 404
    assert replaced["size"] == 6 and replaced["id"] == from_file["id"]

    assert sam.action.resource_delete(id=from_tuple["id"]) is None
    with pytest.raises(ckanapi.NotFound):
        sam.action.resource_show(id=from_tuple["id"])
    assert http.get(from_tuple["url"].removeprefix(hub_w.url)).status_code == 404
    assert [r["id"] for r in sam.action.package_show(id="mit-dateien")["resources"]] == [
        shown["resources"][0]["id"], from_file["id"]]


def test_uploads_of_internal_datasets_are_not_public(hub_w: Hub, http: httpx.Client) -> None:
    sam = hub_w.ckan("sam")
    sam.action.package_create(**package("interne-datei", private=True))
    resource = sam.action.resource_create(package_id="interne-datei", name="Intern",
                                          upload=("intern.csv", io.BytesIO(PAYLOAD)))
    path = resource["url"].removeprefix(hub_w.url)
    assert http.get(path).status_code == 404
    for user in ("vic", "kat", "ann"):  # internal: every member of staff
        response = http.get(path, headers={"Authorization": hub_w.tokens[user]})
        assert response.status_code == 200 and response.content == PAYLOAD
    with pytest.raises(ckanapi.NotFound):
        hub_w.ckan().action.resource_show(id=resource["id"])


def test_an_upload_over_the_limit_is_refused_and_nothing_is_kept(hub_w: Hub) -> None:
    sam = hub_w.ckan("sam")
    sam.action.package_create(**package("fast-voll", resources=[LINK]))
    kept = sam.action.resource_create(package_id="fast-voll", name="Klein",
                                      upload=("klein.csv", io.BytesIO(b"k" * 10)))
    before, files = sam.action.package_show(id="fast-voll"), upload_files(hub_w.store)
    with serving(hub_w.root, HUB_MAX_UPLOAD_BYTES="1000") as limited:
        small = ckanapi.RemoteCKAN(limited, apikey=hub_w.tokens["sam"])
        for size in (1001, 3 << 20):  # just over; far over (refused before it is read)
            with pytest.raises(ckanapi.ValidationError) as caught:
                small.action.resource_create(package_id="fast-voll", name="Zu groß",
                                             upload=("gross.bin", io.BytesIO(b"x" * size)))
            assert list(caught.value.error_dict) == ["__type", "upload"]
            assert "too large" in caught.value.error_dict["upload"][0]
            with pytest.raises(ckanapi.ValidationError):
                small.action.resource_patch(id=kept["id"],
                                            upload=("gross.bin", io.BytesIO(b"x" * size)))
        response = httpx.post(f"{limited}/api/3/action/resource_create",
                              headers={"Authorization": hub_w.tokens["sam"]},
                              data={"package_id": "fast-voll"},
                              files={"upload": ("gross.bin", b"x" * 1001)}, timeout=30)
        assert response.status_code == 409
        assert response.json()["error"]["__type"] == "Validation Error"
        assert sam.action.package_show(id="fast-voll") == before
        assert upload_files(hub_w.store) == files  # nothing stored, nothing left staged
        exactly = small.action.resource_create(package_id="fast-voll", name="Genau",
                                               upload=("genau.bin", io.BytesIO(b"y" * 1000)))
    assert exactly["size"] == 1000
    assert httpx.get(kept["url"], timeout=30).content == b"k" * 10


# -- organisations --------------------------------------------------------------------------

def test_only_admins_create_organizations(hub_w: Hub) -> None:
    for user in (None, "vic", "sam"):
        with pytest.raises(ckanapi.NotAuthorized):
            hub_w.ckan(user).action.organization_create(name="foerderverein-jugend")
    ann = hub_w.ckan("ann")
    org = ann.action.organization_create(name="foerderverein-jugend",
                                         title="Förderverein Jugend",
                                         description="Ein Verein")
    assert (org["name"], org["title"], org["is_organization"]) == (
        "foerderverein-jugend", "Förderverein Jugend", True)
    anon = hub_w.ckan()
    assert "foerderverein-jugend" in anon.action.organization_list()
    assert anon.action.organization_show(id=org["id"])["package_count"] == 0
    created = ann.action.package_create(**package("vereinsdaten", org="foerderverein-jugend"))
    assert created["organization"]["name"] == "foerderverein-jugend"
    assert created["owner_org"] == org["id"]
    shown = anon.action.organization_show(id="foerderverein-jugend", include_datasets=True)
    assert [p["name"] for p in shown["packages"]] == ["vereinsdaten"]
    with pytest.raises(ckanapi.NotAuthorized):  # not sam's organisation
        hub_w.ckan("sam").action.package_create(**package("sam-im-verein",
                                                          org="foerderverein-jugend"))
    run_hub(hub_w.root, "user", "add", "vera", "--org", "foerderverein-jugend")  # usable
    for bad in ({"name": "foerderverein-jugend"}, {"name": "Mit Leerzeichen"}, {"name": "x"},
                {"name": "sozialamt"}):
        with pytest.raises(ckanapi.ValidationError) as caught:
            ann.action.organization_create(**bad)
        assert "name" in caught.value.error_dict
    ann.action.package_delete(id="vereinsdaten")


# -- who may write what ---------------------------------------------------------------------

def attempts(pkg: dict, resource_id: str) -> list[tuple[str, dict]]:
    """Every write on one dataset (and its resource)."""
    return [("package_update", dict(pkg, title="Übernommen")),
            ("package_patch", {"id": pkg["id"], "title": "Übernommen"}),
            ("package_delete", {"id": pkg["id"]}),
            ("resource_create", {"package_id": pkg["id"], "url": "https://example.org/x"}),
            ("resource_update", {"id": resource_id, "url": "https://example.org/x"}),
            ("resource_patch", {"id": resource_id, "name": "Übernommen"}),
            ("resource_delete", {"id": resource_id})]


@pytest.mark.parametrize("user", [None, "vic", "kat"])
def test_others_cannot_write_a_dataset(hub_w: Hub, user: str | None) -> None:
    sam = hub_w.ckan("sam")
    name = f"nur-sozialamt-{user or 'anonym'}"
    before = sam.action.package_create(**package(name, resources=[LINK]))
    who = hub_w.ckan(user)
    for action, data in attempts(before, before["resources"][0]["id"]):
        with pytest.raises((ckanapi.NotAuthorized, ckanapi.NotFound)) as caught:
            who.call_action(action, data)
        assert user is None or caught.type is ckanapi.NotAuthorized, action
    with pytest.raises(ckanapi.NotAuthorized):
        who.action.package_create(**package(f"neu-{name}"))
    assert sam.action.package_show(id=name) == before


def test_an_editor_stays_in_their_organization(hub_w: Hub) -> None:
    sam, kat, ann = hub_w.ckan("sam"), hub_w.ckan("kat"), hub_w.ckan("ann")
    theirs = kat.action.package_show(id="stadtplan-finsterwalde")
    for action, data in attempts(theirs, theirs["resources"][0]["id"]):
        with pytest.raises(ckanapi.NotAuthorized):
            sam.call_action(action, data)
    with pytest.raises(ckanapi.NotAuthorized):
        sam.action.package_create(**package("fremd", org="kataster-vermessung"))
    with pytest.raises(ckanapi.NotFound):
        ann.action.package_show(id="fremd")
    mine = sam.action.package_create(**package("bleibt-beim-sozialamt"))
    with pytest.raises(ckanapi.NotAuthorized):  # moving it away
        sam.action.package_patch(id=mine["id"], owner_org="kataster-vermessung")
    with pytest.raises(ckanapi.NotAuthorized):
        sam.action.package_update(**dict(mine, owner_org=theirs["owner_org"]))
    assert kat.action.package_show(id="stadtplan-finsterwalde") == theirs
    assert sam.action.package_show(id=mine["id"]) == mine
    # an admin may do all of it; the new owner's editor then may edit it, the old one not
    moved = ann.action.package_patch(id=mine["id"], owner_org="kataster-vermessung")
    assert moved["organization"]["name"] == "kataster-vermessung"
    assert kat.action.package_patch(id=mine["id"], notes="Jetzt Kataster.")["notes"] == \
        "Jetzt Kataster."
    with pytest.raises(ckanapi.NotAuthorized):
        sam.action.package_patch(id=mine["id"], notes="Zurück?")
    ann.action.package_patch(id="stadtplan-finsterwalde", version="2")
    assert ann.action.package_show(id="stadtplan-finsterwalde")["version"] == "2"


# -- validation and hostile input -----------------------------------------------------------

INVALID: dict[str, tuple[str, dict[str, Any], str]] = {  # case: (user, package, error field)
    "no notes": ("sam", {**package("ohne-notes"), "notes": ""}, "notes"),
    "no title": ("sam", {**package("ohne-titel"), "title": None}, "title"),
    "unknown licence": ("sam", package("falsche-lizenz", license_id="meine-lizenz"),
                        "license_id"),
    "no owner_org": ("sam", {k: v for k, v in package("ohne-org").items()
                             if k != "owner_org"}, "owner_org"),
    "unknown owner_org": ("ann", package("fremde-org", org="gibt-es-nicht"), "owner_org"),
    "bad name": ("sam", package("Mit Leerzeichen"), "name"),
    "name too long": ("sam", package("x" * 101), "name"),
    "spatial not JSON": ("sam", package("kaputte-geometrie", extras=[
        {"key": "spatial", "value": "POLYGON((13 51, 14 51, 14 52, 13 51))"}]), "spatial"),
    "spatial not lon/lat": ("sam", package("geometrie-utm", extras=[{"key": "spatial", "value":
        '{"type": "Point", "coordinates": [389000, 5710000]}'}]), "spatial"),
    "spatial without coordinates": ("sam", package("geometrie-leer", extras=[
        {"key": "spatial", "value": '{"type": "Point"}'}]), "spatial"),
    "unknown group": ("sam", package("falsche-gruppe", groups=[{"name": "keine-gruppe"}]),
                      "groups"),
    "resource without url": ("sam", package("ohne-url", resources=[{"name": "leer"}]),
                             "resources[1]"),
    "title is a list": ("sam", package("titel-liste", title=["a", "b"]), "title"),
    "notes is an object": ("sam", package("notes-objekt", notes={"de": "x"}), "notes"),
    "tag name is an object": ("sam", package("tag-objekt", tags=[{"name": {"x": 1}}]), "tags"),
    "resource url is a list": ("sam", package("url-liste", resources=[{"url": ["a"]}]),
                               "resources"),
    "extras not a list": ("sam", package("extras-text", extras="spatial=1"), "extras"),
    "version too long": ("sam", package("lange-version", version="v" * 101), "version"),
}


@pytest.mark.parametrize("case", INVALID)
def test_validation_errors_name_ckan_fields(hub_w: Hub, http: httpx.Client, case: str) -> None:
    user, data, field = INVALID[case]
    with pytest.raises(ckanapi.ValidationError) as caught:
        hub_w.ckan(user).action.package_create(**data)
    assert field in caught.value.error_dict, caught.value.error_dict
    assert isinstance(caught.value.error_dict[field], list)
    assert all(isinstance(m, str) and m for m in caught.value.error_dict[field])
    response = http.post("/api/3/action/package_create", json=data,
                         headers={"Authorization": hub_w.tokens[user]})
    assert response.status_code == 409
    with pytest.raises(ckanapi.NotFound):
        hub_w.ckan("ann").action.package_show(id=str(data["name"]))


def test_a_taken_name_is_already_in_use(hub_w: Hub) -> None:
    before = hub_w.ckan().action.package_show(id="abfallkalender")
    with pytest.raises(ckanapi.ValidationError) as caught:
        hub_w.ckan("ann").action.package_create(**package("abfallkalender"))
    assert caught.value.error_dict["name"] == ["That URL is already in use."]
    assert hub_w.ckan().action.package_show(id="abfallkalender") == before
    with pytest.raises(ckanapi.ValidationError) as caught:  # renaming onto a taken name
        hub_w.ckan("ann").action.package_patch(id="stadtplan-finsterwalde", name="gemeinden")
    assert caught.value.error_dict["name"] == ["That URL is already in use."]
    assert hub_w.ckan().action.package_show(id="stadtplan-finsterwalde")["name"] == \
        "stadtplan-finsterwalde"


def test_rejected_writes_leave_the_dataset_as_it_was(hub_w: Hub, http: httpx.Client) -> None:
    sam = hub_w.ckan("sam")
    sam.action.package_create(**package("bleibt-heil", tags=[{"name": "Heil"}],
                                        resources=[LINK]))
    good = sam.action.resource_create(package_id="bleibt-heil", name="Datei",
                                      upload=("heil.csv", io.BytesIO(PAYLOAD)))
    before = sam.action.package_show(id="bleibt-heil")
    rid = before["resources"][0]["id"]
    bad_calls: list[tuple[str, dict]] = [
        ("package_update", dict(before, license_id="keine")),
        ("package_update", dict(before, extras=[{"key": "spatial", "value": "{"}])),
        ("package_update", dict(before, title=["Liste"])),
        ("package_update", dict(before, notes="")),
        ("package_update", dict(before, resources=[{"name": "ohne url"}])),
        ("package_patch", {"id": before["id"], "license_id": "keine"}),
        ("package_patch", {"id": before["id"], "name": "gemeinden"}),
        ("package_patch", {"id": before["id"], "groups": [{"name": "keine"}]}),
        ("package_patch", {"id": before["id"], "extras": [{"key": "spatial",
                                                           "value": '{"type": "Point"}'}]}),
        ("resource_create", {"package_id": before["id"], "name": "ohne url"}),
        ("resource_patch", {"id": rid, "format": "KEIN-FORMAT"}),
        ("resource_patch", {"id": good["id"], "size": "groß"}),
    ]
    for action, data in bad_calls:
        with pytest.raises(ckanapi.ValidationError):
            sam.call_action(action, data)
        assert sam.action.package_show(id="bleibt-heil") == before, (action, data)
    headers = {"Authorization": hub_w.tokens["sam"], "content-type": "application/json"}
    huge = json.dumps(dict(before, notes="x" * (11 << 20)))
    deep = json.dumps({"id": before["id"], "extras": [{"key": "tief", "value": "DEEP"}]}
                      ).replace('"DEEP"', "[" * 200_000 + "]" * 200_000)
    for body in (huge, deep):
        response = http.post("/api/3/action/package_update", content=body, headers=headers)
        assert response.status_code == 400, response.text[:200]
        assert response.json().startswith("Bad request - JSON Error")
        assert sam.action.package_show(id="bleibt-heil") == before
    assert httpx.get(good["url"], timeout=30).content == PAYLOAD


def test_hostile_but_valid_input_is_stored_verbatim(hub_w: Hub, http: httpx.Client) -> None:
    sam, anon = hub_w.ckan("sam"), hub_w.ckan()
    tags = [{"name": f"schlagwort-{i:04d}"} for i in range(2000)]
    many = sam.action.package_create(**package("zweitausend-tags", tags=tags))
    assert many["num_tags"] == 2000
    assert {t["name"] for t in anon.action.package_show(id="zweitausend-tags")["tags"]} == {
        t["name"] for t in tags}
    assert "schlagwort-1999" in anon.action.tag_list(query="schlagwort-19")

    title = "<script>alert('x')</script> Straße 🚲 ñ 中文 \u202eRTL\u202c e\u0301 \"Zitat\""
    notes = "Zeile 1\nZeile 2\t<b>fett</b> & Ü\u0000Null"
    nested: Any = "Kern"
    for _ in range(50):
        nested = {"tiefer": [nested]}
    strange = sam.action.package_create(**package(
        "seltsame-zeichen", title=title, notes=notes,
        extras=[{"key": "tief", "value": nested}, {"key": "zahl", "value": 42},
                {"key": "text", "value": "ä\u2028b"}]))
    shown = anon.action.package_show(id="seltsame-zeichen")
    assert strange == shown and (shown["title"], shown["notes"]) == (title, notes)
    assert json.loads(extras(shown)["tief"]) == nested
    assert extras(shown)["zahl"] == "42" and extras(shown)["text"] == "ä\u2028b"
    raw = http.get("/api/3/action/package_show", params={"id": "seltsame-zeichen"})
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.json()["result"]["title"] == title
    page = http.get("/datasets/seltsame-zeichen").text  # the HTML landing page escapes it
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert [p["name"] for p in anon.action.package_search(q='"Straße"', fq="name:seltsame-*")[
        "results"]] == ["seltsame-zeichen"]
    numbers = sam.action.package_create(**package("zahlen-als-text", title=2024,
                                                  version=1.5))
    assert (numbers["title"], numbers["version"]) == ("2024", "1.5")


def test_a_dataset_is_public_only_when_it_passes_the_publication_checklist(
        hub_w: Hub, http: httpx.Client) -> None:
    sam, anon = hub_w.ckan("sam"), hub_w.ckan()
    bare = {**package("noch-nicht-fertig"), "maintainer": "", "maintainer_email": "",
            "extras": []}  # public as CKAN's default: no contact, and data the hub lacks
    with pytest.raises(ckanapi.ValidationError) as refused:
        sam.action.package_create(**bare)
    errors = refused.value.error_dict
    assert "contact, update frequency, owner, map or table preview" in errors["private"][0]
    assert {"maintainer_email", "maintainer", "frequency", "resources"} <= set(errors)
    answer = http.post("/api/3/action/package_create", json=bare,
                       headers={"Authorization": hub_w.tokens["sam"]})
    assert answer.status_code == 409 and answer.json()["error"]["__type"] == "Validation Error"
    with pytest.raises(ckanapi.NotFound):
        hub_w.ckan("ann").action.package_show(id="noch-nicht-fertig")  # nothing written
    internal = sam.action.package_create(**bare, private=True)
    for change in ({"private": False}, {"private": False, "maintainer": "Team Daten"}):
        with pytest.raises(ckanapi.ValidationError, match="publication checklist misses"):
            sam.action.package_patch(id=internal["id"], **change)
    with pytest.raises(ckanapi.NotFound):
        anon.action.package_show(id="noch-nicht-fertig")
    published = sam.action.package_patch(id=internal["id"], private=False, **READY,
                                         extras=READY_EXTRAS)
    assert published["private"] is False
    assert anon.action.package_show(id="noch-nicht-fertig")["name"] == "noch-nicht-fertig"
    with pytest.raises(ckanapi.ValidationError, match="maintainer_email"):
        sam.action.package_patch(id=internal["id"], maintainer_email="")  # keeps what it had
