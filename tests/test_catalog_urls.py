"""Links in the catalog: only absolute http(s) URLs (and mailto: for contacts) enter a record,
through every way in (YAML, CLI, inventory, CKAN API, harvest), and the DCAT feeds never carry
anything else — not even links a store holds from before they were checked."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import ckanapi
import pytest
import yaml
from conftest import hub_cli, serving
from rdflib import Graph, URIRef
from typer.testing import CliRunner

from hub.access import ANONYMOUS
from hub.api.ckan.client import Remote
from hub.api.ckan.harvest import harvest
from hub.api.ckan.packages import Site, package
from hub.catalog import open_catalog
from hub.catalog.dcat import Context, catalog_triples, dataset_graph, serialize, turtle
from hub.catalog.links import CONTACT, link_problem
from hub.catalog.model import RecordInvalid, validate
from hub.cli import app
from hub.config import load_settings
from hub.errors import PipelineError

REPO = Path(__file__).resolve().parents[1]
BASE = "https://daten.lkee.example.org"
GOOD = {"name": "radwege", "title": "Radwege im Landkreis",
        "description": "Alle ausgeschilderten Radwege.", "publisher": "kataster-vermessung",
        "license": "dl-by-de/2.0"}
# links that must never enter the catalog, by what is wrong with them
BAD = {
    "javascript": "javascript:alert(document.cookie)",
    "mixed case": "JaVaScRiPt:alert(1)",
    "data": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript": "vbscript:msgbox(1)",
    "file": "file:///etc/passwd",
    "scheme-less": "www.lkee.example.org/radwege.csv",
    "protocol-relative": "//evil.example.org/radwege.csv",
    "relative path": "/downloads/radwege/latest.csv",
    "leading space": " javascript:alert(1)",
    "tab inside the scheme": "java\tscript:alert(1)",
    "newline": "https://example.org/a\njavascript:alert(1)",
    "control character": "https://example.org/\x00radwege.csv",
    "zero-width space": "java\u200bscript:alert(1)",
    "space in the host": "https://exa mple.org/",
    "angle bracket": "https://example.org/>x",
    "no host": "https:///radwege.csv",
    "broken IPv6 host": "http://[::1/radwege.csv",
}
ALLOWED = "allowed: absolute http: or https:"


def with_link(field: str, url: str) -> dict[str, Any]:
    if field == "distributions":
        return {**GOOD, "distributions": [{"title": "CSV", "url": url}]}
    if field == "contact.url":
        return {**GOOD, "contact": {"name": "Kataster", "url": url}}
    return {**GOOD, field: url}


@pytest.fixture
def root(tmp_path: Path, backend: str) -> Path:
    shutil.copytree(REPO / "catalog", tmp_path / "catalog")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "schemas").mkdir()
    return tmp_path


@pytest.fixture
def opened(root: Path):
    return open_catalog(load_settings(root, root / "store"))


def cli(root: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--root", str(root), "--store", str(root / "store")],
                              env={"COLUMNS": "400"})


@pytest.mark.parametrize("field", ["landing_page", "source_url", "distributions",
                                   "contact.url"])
@pytest.mark.parametrize("case", list(BAD))
def test_unsafe_links_are_refused_naming_field_and_what_is_allowed(opened, field: str,
                                                                   case: str) -> None:
    _, vocab, _ = opened
    with pytest.raises(RecordInvalid) as caught:
        validate(with_link(field, BAD[case]), vocab, "radwege.yaml")
    [(key, message)] = caught.value.errors.items()
    assert key == ("distributions[1].url" if field == "distributions" else field)
    assert ALLOWED in message and repr(BAD[case]) in message


@pytest.mark.parametrize("case", ["javascript", "mixed case", "data", "vbscript", "file",
                                  "newline"])
def test_conforms_to_is_a_schema_name_or_an_http_url(opened, case: str) -> None:
    _, vocab, _ = opened
    assert validate({**GOOD, "conforms_to": "pflege"}, vocab).conforms_to == "pflege"
    url = "https://example.org/schema/radwege.json"
    assert validate({**GOOD, "conforms_to": url}, vocab).conforms_to == url
    with pytest.raises(RecordInvalid) as caught:
        validate({**GOOD, "conforms_to": BAD[case]}, vocab)
    assert ALLOWED in caught.value.errors["conforms_to"]


@pytest.mark.parametrize("email", ["javascript:alert(1)@example.org", "eva@example.org>",
                                   "eva @example.org", "eva", "eva@example.org?subject=x",
                                   "mailto:javascript:alert(1)"])
@pytest.mark.parametrize("who", ["contact", "creator"])
def test_contact_emails_are_addresses(opened, who: str, email: str) -> None:
    _, vocab, _ = opened
    with pytest.raises(RecordInvalid) as caught:
        validate({**GOOD, who: {"name": "Eva", "email": email}}, vocab)
    assert "is not an e-mail address" in caught.value.errors[f"{who}.email"]


def test_good_links_pass_and_mailto_is_for_contacts_only(opened) -> None:
    _, vocab, _ = opened
    record = validate({**GOOD, "landing_page": "HTTPS://www.lkee.example.org/radwege",
                       "contact": {"email": "mailto:eva@lkee.example.org",
                                   "url": "mailto:kataster@lkee.example.org"},
                       "distributions": [{"url": "https://bücher.example.org/straße.csv?a=1"}]},
                      vocab)
    assert record.contact == {"email": "eva@lkee.example.org",
                              "url": "mailto:kataster@lkee.example.org"}
    assert link_problem("mailto:kataster@lkee.example.org", CONTACT) is None
    with pytest.raises(RecordInvalid) as caught:
        validate({**GOOD, "landing_page": "mailto:kataster@lkee.example.org"}, vocab)
    assert "mailto: links are not allowed" in caught.value.errors["landing_page"]


def test_only_the_hubs_own_upload_path_may_be_relative(opened) -> None:
    _, vocab, _ = opened
    record = validate(GOOD, vocab)
    upload = {"id": "5b0c2f4e-7f0e-4a57-9a0d-2b8f3c1d9e10", "upload": "plan.pdf",
              "url": f"/dataset/{record.id}/resource/5b0c2f4e-7f0e-4a57-9a0d-2b8f3c1d9e10"
                     "/download/plan.pdf"}
    assert validate({**GOOD, "distributions": [upload]}, vocab).distributions[0].url \
        == upload["url"]
    other = {**upload, "url": upload["url"].replace(record.id, "another-record")}
    with pytest.raises(RecordInvalid, match=r"distributions\[1\]\.url: .* has no scheme"):
        validate({**GOOD, "distributions": [other]}, vocab)


def test_yaml_load_cli_edit_and_inventory_refuse_unsafe_links(root: Path) -> None:
    folder = root / "catalog" / "datasets"
    (folder / "radwege.yaml").write_text(yaml.safe_dump(
        {**GOOD, "landing_page": BAD["mixed case"]}), encoding="utf-8")
    loaded = cli(root, "catalog", "load")
    assert loaded.exit_code == 1
    text = " ".join(loaded.output.split())
    assert "radwege.yaml: landing_page: 'JaVaScRiPt:alert(1)': javascript: links are not " \
           "allowed; allowed: absolute http: or https: URLs" in text
    (folder / "radwege.yaml").unlink()
    assert cli(root, "catalog", "load").exit_code == 0
    edited = cli(root, "catalog", "edit", "pflege", "--set", "landing_page=vbscript:msgbox(1)")
    assert edited.exit_code == 1 and "record pflege: landing_page: 'vbscript:msgbox(1)': " \
        "vbscript: links are not allowed" in " ".join(edited.output.split())
    sheet = root / "inventar.csv"
    sheet.write_text("Bezeichnung;Abteilung;Beschreibung;Ansprechpartner\n"
                     "Spielplätze;Schulverwaltungsamt;Alle Spielplätze.;"
                     "Eva Muster, javascript:alert(1)//@example.org\n", encoding="utf-8")
    imported = cli(root, "catalog", "import", str(sheet), "--apply")
    text = " ".join(imported.output.split())
    assert imported.exit_code == 1 and "contact.email: 'javascript:alert(1)//@example.org' is " \
        "not an e-mail address" in text and "nothing was written" in text
    catalog, _, _ = open_catalog(load_settings(root, root / "store"))
    assert catalog.get("pflege", ANONYMOUS).landing_page == ""
    assert "spielplaetze" not in catalog.names()


def uris(graph: Graph) -> set[str]:
    return {str(t) for triple in graph for t in triple if isinstance(t, URIRef)}


@pytest.fixture
def old_store(opened):
    """A record stored before links were checked: written straight into the store, the way an
    older hub wrote it."""
    catalog, vocab, _ = opened
    stored = validate({**GOOD, "distributions": [{"title": "gut",
                                                  "url": "https://example.org/gut.csv"}]}, vocab)
    stored.landing_page = "javascript:alert(1)"
    stored.contact = {"name": "Eva", "email": "eva@example.org>", "url": "JaVaScRiPt:alert(2)"}
    stored.distributions += [
        type(stored.distributions[0])(title=f"schlecht {i}", format="", url=url, id=f"d{i}")
        for i, url in enumerate((BAD["javascript"], BAD["data"], BAD["scheme-less"],
                                 BAD["protocol-relative"], BAD["newline"]))]
    catalog.upsert(stored)
    return opened


def test_dcat_feeds_never_carry_unsafe_links_even_from_an_old_store(old_store) -> None:
    """Every link in every feed is an http(s) or mailto URI."""
    catalog, vocab, district = old_store
    ctx = Context(BASE, vocab, district.name, district.ags, district.org,
                  district.contributor_id)
    record = catalog.get("radwege", ANONYMOUS)
    feeds = {fmt: serialize(dataset_graph(record, ctx), fmt) for fmt in ("ttl", "rdf", "jsonld")}
    feeds["catalog.ttl"] = "".join(turtle(catalog_triples(catalog, ctx))).encode()
    for name, body in feeds.items():
        graph = Graph().parse(data=body, format={"rdf": "xml", "jsonld": "json-ld"}.get(
            name, "turtle"))
        links = uris(graph)
        assert {urlsplit(u).scheme for u in links} <= {"http", "https", "mailto"}, name
        assert not [u for u in links if "javascript" in u.lower() or "script:" in u.lower()
                    or "example.orgwww" in u or BASE + "//" in u], name
        assert "https://example.org/gut.csv" in links  # the good distribution stays
        assert f"{BASE}/datasets/radwege" in links  # the landing page falls back to the hub's
        assert not any(u.startswith("mailto:") for u in links), name  # the bad address left out


# -- through the CKAN API ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def ckan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ckanapi.RemoteCKAN]:
    root = tmp_path_factory.mktemp("urls")
    shutil.copytree(REPO / "catalog", root / "catalog")
    hub_cli(root, "user", "add", "admin", "--org", "landkreis-elbe-elster", "--role", "admin")
    token = hub_cli(root, "token", "create", "admin").stdout.strip().splitlines()[-1]
    with serving(root) as url:
        yield ckanapi.RemoteCKAN(url, apikey=token)


PACKAGE = {"name": "spielplaetze", "title": "Spielplätze", "notes": "Alle Spielplätze.",
           "owner_org": "schulverwaltungsamt", "license_id": "dl-by-de/2.0"}


@pytest.mark.parametrize(("change", "field"), [
    ({"url": BAD["javascript"]}, "url"),
    ({"url": BAD["scheme-less"]}, "url"),
    ({"resources": [{"url": BAD["mixed case"], "name": "x"}]}, "resources[1].url"),
    ({"resources": [{"url": BAD["tab inside the scheme"], "name": "x"}]}, "resources[1].url"),
    ({"maintainer_email": "javascript:alert(1)@example.org"}, "maintainer_email"),
    ({"author_email": "eva@example.org>"}, "author_email"),
    ({"extras": [{"key": "maintainer_url", "value": BAD["data"]}]}, "maintainer_url"),
])
def test_ckan_package_create_refuses_unsafe_links(ckan, change: dict, field: str) -> None:
    with pytest.raises(ckanapi.ValidationError) as caught:
        ckan.action.package_create(**{**PACKAGE, **change})
    errors = caught.value.error_dict
    assert errors["__type"] == "Validation Error" and field in errors, errors
    assert "allowed" in errors[field][0] or "e-mail address" in errors[field][0]
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id="spielplaetze")


def test_ckan_resource_and_organization_writes_refuse_unsafe_links(ckan) -> None:
    pkg = ckan.action.package_create(**{**PACKAGE, "name": "friedhoefe", "title": "Friedhöfe",
                                       "private": True})
    for url in (BAD["javascript"], BAD["vbscript"], BAD["leading space"]):
        with pytest.raises(ckanapi.ValidationError) as caught:
            ckan.action.resource_create(package_id=pkg["id"], url=url, name="x")
        assert any("url" in key for key in caught.value.error_dict), caught.value.error_dict
    assert ckan.action.package_show(id=pkg["id"])["resources"] == []
    for change, field in (({"url": BAD["javascript"]}, "url"),
                          ({"url": "www.example.org"}, "url"),
                          ({"email": "javascript:alert(1)"}, "email")):
        with pytest.raises(ckanapi.ValidationError) as caught:
            ckan.action.organization_create(name="verein", title="Verein", **change)
        assert field in caught.value.error_dict, caught.value.error_dict
    with pytest.raises(ckanapi.NotFound):
        ckan.action.organization_show(id="verein")
    made = ckan.action.organization_create(name="verein", title="Verein",
                                           url="https://verein.example.org/")
    assert made["name"] == "verein"


# -- harvesting --------------------------------------------------------------------------------

class _Source(BaseHTTPRequestHandler):
    """A CKAN Action API on 127.0.0.1 that lists one dataset with unsafe links."""

    package: ClassVar[dict[str, Any]] = {}  # set by each test

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        action = self.path.rstrip("/").rsplit("/", 1)[-1]
        result = {"package_list": [self.package["name"]],
                  "package_search": {"count": 1, "results": [self.package]}}.get(action)
        body = json.dumps({"success": result is not None, "result": result} if result is not None
                          else {"success": False, "error": {"__type": "Not Found Error",
                                                            "message": "Not found"}}).encode()
        self.send_response(200 if result is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("change", "field"), [
    ({"url": BAD["javascript"]}, "landing_page"),
    ({"resources": [{"id": "r1", "url": BAD["data"], "name": "x"}]}, "distributions[1].url"),
    ({"maintainer_email": "eva@example.org>"}, "contact.email"),
])
def test_harvest_refuses_unsafe_links(opened, change: dict, field: str) -> None:
    catalog, vocab, district = opened
    _Source.package = {**PACKAGE, "id": "0d9b3b8e-1f7c-4c55-8a0e-3d6f2a1b7c90",
                       "organization": {"name": "schulverwaltungsamt"}, "resources": [],
                       **change}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        report = harvest(catalog, Site(BASE, vocab, district),
                         Remote(f"http://127.0.0.1:{server.server_address[1]}", None, 10))
    finally:
        server.shutdown()
        server.server_close()
    [(name, reason)] = report.failed
    assert name == "spielplaetze" and f"{field}: " in reason, reason
    assert catalog.names() == []


def test_ckan_dicts_never_carry_unsafe_links_even_from_an_old_store(old_store) -> None:
    catalog, vocab, district = old_store
    pkg = package(catalog.get("radwege", ANONYMOUS), Site(BASE, vocab, district))
    links = [pkg["url"], *(r["url"] for r in pkg["resources"])]
    assert pkg["url"] == f"{BASE}/datasets/radwege"
    assert "https://example.org/gut.csv" in links
    assert all(u == "" or u.startswith(("https://", "http://")) for u in links), links
    assert not [u for u in links if "script:" in u.lower() or "example.orgwww" in u
                or BASE + "//" in u or "data:" in u], links


@pytest.mark.parametrize(("field", "value"), [("url", BAD["javascript"]),
                                              ("url", BAD["scheme-less"]),
                                              ("email", "javascript:alert(1)")])
def test_organisations_file_refuses_unsafe_links(root: Path, field: str, value: str) -> None:
    path = root / "catalog" / "organizations.yaml"
    orgs = yaml.safe_load(path.read_text(encoding="utf-8"))
    listed = orgs["organizations"] if isinstance(orgs, dict) else orgs
    listed[1][field] = value
    path.write_text(yaml.safe_dump(orgs, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PipelineError) as caught:
        open_catalog(load_settings(root, root / "store"))
    assert str(caught.value).startswith(f"{path}: organisation {listed[1]['id']!r}: {field}: ")
