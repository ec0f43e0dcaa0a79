"""The CKAN Action API v3 of a running hub, through the real `ckanapi` client: routes, the
envelope and its errors, every read action, `package_search` (checked against sets computed
from the catalog itself), access levels in every answer, API tokens, and the `hub user` /
`hub token` commands. Contract: ../shared/reference/ckan-dcat.md §1–2, §8.

Writes, uploads and `ckanapi dump/load/search` live in test_ckan_roundtrip.py. This module's hub
is never written to through the API, so its sets stay what the catalog says.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import ckanapi
import httpx
import pytest
import sqlalchemy as sa
import yaml
from ckan_project import EU_THEMES, REPO, USERS, Hub, build, may_see, new_token, run_hub
from conftest import hub_cli, serving
from sqlalchemy import update

from hub.catalog.model import Record
from hub.db.schema import tokens

PACKAGE_KEYS = {"id", "name", "title", "notes", "url", "version", "author", "author_email",
                "maintainer", "maintainer_email", "license_id", "license_title", "license_url",
                "isopen", "owner_org", "organization", "private", "state", "type",
                "metadata_created", "metadata_modified", "tags", "num_tags", "groups",
                "extras", "resources", "num_resources", "relationships_as_subject",
                "relationships_as_object", "creator_user_id"}
RESOURCE_KEYS = {"id", "package_id", "url", "name", "description", "format", "mimetype",
                 "mimetype_inner", "size", "hash", "created", "last_modified",
                 "metadata_modified", "position", "state", "url_type", "resource_type",
                 "cache_url", "cache_last_updated"}
GROUP_KEYS = {"id", "name", "title", "display_name", "description", "image_url",
              "image_display_url", "created", "is_organization", "approval_status", "state",
              "type"}
LICENSE_KEYS = {"id", "title", "url", "status", "family", "od_conformance", "osd_conformance",
                "domain_content", "domain_data", "domain_software", "is_generic", "maintainer"}
CKAN_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")  # naive UTC, microseconds
ACTIONS = ("status_show", "site_read", "package_list", "current_package_list_with_resources",
           "package_show", "package_search", "package_autocomplete", "organization_list",
           "organization_show", "group_list", "group_show", "tag_list", "license_list",
           "resource_show", "resource_search", "help_show", "package_create",
           "package_update", "package_patch", "package_delete", "resource_create",
           "resource_update", "resource_patch", "resource_delete", "organization_create")
HIDDEN_RECORDS = ("zuckerwatte-intern", "zuckerwatte-sozial", "zuckerwatte-kataster")


@pytest.fixture(scope="module")
def hub_a(tmp_path_factory: pytest.TempPathFactory, module_backend: str) -> Iterator[Hub]:
    """The demo project served, on each database backend in turn."""
    root = tmp_path_factory.mktemp("ckan-api")
    tokens = build(root)
    with serving(root) as url:
        yield Hub(root, url, tokens)


@pytest.fixture(scope="module")
def truth(hub_a: Hub) -> list[Record]:
    """Every active record, from the catalog itself."""
    records = hub_a.records()
    assert {"public", "internal", "restricted"} <= {r.access for r in records}
    return records


@pytest.fixture(scope="module")
def public(truth: list[Record]) -> list[Record]:
    return [r for r in truth if r.access == "public"]


@pytest.fixture
def http(hub_a: Hub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub_a.url, follow_redirects=False, timeout=30) as client:
        yield client


def names(found: dict | list) -> set[str]:
    return {p["name"] for p in (found["results"] if isinstance(found, dict) else found)}


def search_all(ckan: ckanapi.RemoteCKAN, **params: object) -> dict:
    found = ckan.action.package_search(rows=1000, **params)
    assert len(found["results"]) == found["count"] < 1000
    return found


def extras(package: dict) -> dict[str, str]:
    return {e["key"]: e["value"] for e in package["extras"]}


def org_titles() -> dict[str, str]:
    organizations = yaml.safe_load((REPO / "catalog/organizations.yaml").read_text("utf-8"))
    return {o["id"]: o["name"] for o in organizations}


def german_key(text: str) -> str:
    """DIN 5007-2 ordering (umlauts written out), how German lists sort names."""
    return (text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
            .replace("ß", "ss"))


# -- routes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api", "/api/", "/api/3", "/api/3/"])
def test_api_root_says_version_3_without_redirect(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200 and response.json() == {"version": 3}


def test_both_prefixes_get_and_post_give_the_same_answer(hub_a: Hub, http: httpx.Client,
                                                         public: list[Record]) -> None:
    expected = sorted(r.name for r in public)
    assert hub_a.ckan().action.package_list() == expected  # POST /api/action/ (ckanapi)
    assert hub_a.ckan(get_only=True).action.package_list() == expected  # GET
    for prefix in ("/api/3/action", "/api/action"):
        assert http.get(f"{prefix}/package_list").json()["result"] == expected
        assert http.post(f"{prefix}/package_list", json={}).json()["result"] == expected
        got = http.get(f"{prefix}/package_list", params={"limit": 3, "offset": 2})
        assert got.json()["result"] == expected[2:5]


def test_post_json_form_and_multipart_decode_alike(http: httpx.Client,
                                                   public: list[Record]) -> None:
    q = "organization:sozialamt OR organization:umweltamt"
    fields = {"q": q, "rows": "1000", "facet.field": ["organization", "groups"]}
    expected = {r.name for r in public if r.publisher in ("sozialamt", "umweltamt")}
    as_json = http.post("/api/3/action/package_search", json=fields)
    as_form = http.post("/api/3/action/package_search", data=fields)
    as_multipart = http.post("/api/3/action/package_search", files=[  # fields, no file
        ("q", (None, q)), ("rows", (None, "1000")), ("facet.field", (None, "organization")),
        ("facet.field", (None, "groups"))])
    assert as_form.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert as_multipart.request.headers["content-type"].startswith("multipart/form-data")
    for response in (as_json, as_form, as_multipart):
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert names(result) == expected
        assert set(result["facets"]) == {"organization", "groups"}
        assert result["facets"]["organization"] == {
            org: n for org, n in collections.Counter(r.publisher for r in public
                                                     if r.name in expected).items()}


@pytest.mark.parametrize("path", ["/api/3/action/package_list/", "/api/action/package_list/"])
def test_api_urls_are_never_redirected(hub_a: Hub, http: httpx.Client, path: str,
                                       public: list[Record]) -> None:
    everything = sorted(r.name for r in public)
    for response, expected in ((http.get(path), everything),
                               (http.post(path, json={"limit": 2}), everything[:2])):
        assert response.status_code == 200, (response.status_code, response.headers)
        assert response.json()["result"] == expected
    slash = ckanapi.RemoteCKAN(hub_a.url + "/")  # ckanapi strips the slash itself
    assert slash.action.package_list(limit=1) == sorted(r.name for r in public)[:1]


def test_get_on_a_write_action_is_a_bare_json_string(hub_a: Hub, http: httpx.Client) -> None:
    for action in ("package_create", "package_update", "package_delete", "resource_create",
                   "organization_create"):
        response = http.get(f"/api/3/action/{action}", params={"name": "x"})
        assert response.status_code == 400
        assert response.json() == ("Bad request - JSON Error: Invalid request. Please use "
                                   "POST method for your request")
    with pytest.raises(ckanapi.CKANAPIError) as caught:  # not an envelope: ckanapi's own
        hub_a.ckan("ann", get_only=True).action.package_delete(id="gemeinden")
    assert type(caught.value) is ckanapi.CKANAPIError and "400" in str(caught.value)
    assert hub_a.ckan().action.package_show(id="gemeinden")["state"] == "active"


def test_unknown_action_is_a_bare_json_string(hub_a: Hub, http: httpx.Client) -> None:
    for response in (http.get("/api/3/action/no_such_action"),
                     http.post("/api/action/no_such_action", json={})):
        assert response.status_code == 400
        assert response.json() == "Bad request - Action name not known: no_such_action"
    with pytest.raises(ckanapi.CKANAPIError) as caught:
        hub_a.ckan().call_action("no_such_action", {})
    assert type(caught.value) is ckanapi.CKANAPIError


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"a string"', b"42", b"null",
                                  b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000],
                         ids=["broken", "list", "string", "number", "null", "not-utf8",
                              "deeply-nested"])
def test_a_body_that_is_not_a_json_object_is_refused(http: httpx.Client, body: bytes) -> None:
    response = http.post("/api/3/action/package_list", content=body,
                         headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json().startswith("Bad request - JSON Error: ")


def test_an_empty_body_is_an_empty_data_dict(http: httpx.Client, public: list[Record]) -> None:
    response = http.post("/api/3/action/package_list", content=b"",
                         headers={"content-type": "application/json"})
    assert response.json()["result"] == sorted(r.name for r in public)


# -- envelope and errors --------------------------------------------------------------------

def test_success_envelope(hub_a: Hub, http: httpx.Client) -> None:
    response = http.get("/api/3/action/package_show", params={"id": "gemeinden"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"help", "success", "result"} and body["success"] is True
    assert body["help"] == f"{hub_a.url}/api/3/action/help_show?name=package_show"
    assert body["result"]["name"] == "gemeinden"


ERRORS = {  # case: (user, action, data, ckanapi exception, HTTP status, __type)
    "not-found": (None, "package_show", {"id": "no-such-dataset"}, ckanapi.NotFound, 404,
                  "Not Found Error"),
    "authorization": (None, "package_create", {"name": "anon-try", "title": "t"},
                      ckanapi.NotAuthorized, 403, "Authorization Error"),
    "validation": ("sam", "package_create", {"name": "ohne-titel", "owner_org": "sozialamt",
                                             "license_id": "dl-by-de/2.0"},
                   ckanapi.ValidationError, 409, "Validation Error"),
    "search-query": (None, "package_search", {"q": "{!field f=name}gemeinden"},
                     ckanapi.SearchQueryError, 400, "Search Query Error"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_as_ckan_reports_them(hub_a: Hub, http: httpx.Client, case: str) -> None:
    user, action, data, exception, status, kind = ERRORS[case]
    headers = {"Authorization": hub_a.tokens[user]} if user else {}
    response = http.post(f"/api/3/action/{action}", json=data, headers=headers)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"help", "success", "error"} and body["success"] is False
    assert body["help"] == f"{hub_a.url}/api/3/action/help_show?name={action}"
    assert body["error"]["__type"] == kind
    if kind == "Validation Error":  # field errors beside __type, CKAN's field names
        assert body["error"]["title"] == ["Missing value"]
        assert body["error"]["notes"] == ["Missing value"]
        assert "message" not in body["error"]
    else:
        prefix = {404: "Not found", 403: "Access denied", 400: "Search Query is invalid"}
        assert body["error"]["message"].startswith(prefix[status])
    with pytest.raises(exception) as caught:
        hub_a.ckan(user).call_action(action, data)
    if exception is ckanapi.ValidationError:
        assert caught.value.error_dict == body["error"]
    if action == "package_create":  # nothing was written
        with pytest.raises(ckanapi.NotFound):
            hub_a.ckan("ann").action.package_show(id=data["name"])


# -- read actions ---------------------------------------------------------------------------

def test_status_show_and_site_read(hub_a: Hub) -> None:
    status = hub_a.ckan().action.status_show()
    assert {"site_title", "site_description", "site_url", "error_emails_to",
            "locale_default", "extensions", "ckan_version"} <= set(status)
    assert status["site_url"] == hub_a.url and status["site_title"]
    assert re.match(r"^2\.\d+", status["ckan_version"])
    assert hub_a.ckan().action.site_read() is True
    assert hub_a.ckan(get_only=True).action.site_read() is True


def test_package_list_pages(hub_a: Hub, public: list[Record]) -> None:
    everything = hub_a.ckan().action.package_list()
    assert everything == sorted(r.name for r in public)
    assert hub_a.ckan().action.package_list(limit=5) == everything[:5]
    assert hub_a.ckan().action.package_list(limit=5, offset=7) == everything[7:12]
    assert hub_a.ckan().action.package_list(offset=len(everything)) == []
    with pytest.raises(ckanapi.ValidationError):
        hub_a.ckan().action.package_list(limit=-1)


def test_current_package_list_with_resources(hub_a: Hub, public: list[Record]) -> None:
    ckan = hub_a.ckan()
    everything = ckan.action.current_package_list_with_resources(limit=1000)
    assert names(everything) == {r.name for r in public}
    modified = [p["metadata_modified"] for p in everything]
    assert modified == sorted(modified, reverse=True)  # newest first
    assert ckan.action.current_package_list_with_resources(limit=4, offset=4) == everything[4:8]
    assert ckan.action.current_package_list_with_resources(limit=4, page=3) == everything[8:12]
    assert all(isinstance(p["resources"], list) for p in everything)
    gemeinden = next(p for p in everything if p["name"] == "gemeinden")
    assert gemeinden == ckan.action.package_show(id="gemeinden")


def test_package_show_by_id_or_name_ignores_unknown_parameters(hub_a: Hub) -> None:
    ckan = hub_a.ckan()
    by_name = ckan.action.package_show(id="stadtplan-finsterwalde")
    assert ckan.action.package_show(id=by_name["id"]) == by_name
    # what `ckanapi dump` and `load` send along
    assert ckan.action.package_show(id=by_name["id"], include_datasets=False,
                                    include_password_hash=True, include_users=False,
                                    use_default_schema=True, include_plugin_data=False,
                                    no_such_parameter="x") == by_name
    assert hub_a.ckan(get_only=True).action.package_show(
        id="stadtplan-finsterwalde", include_password_hash=True) == by_name


def test_package_dicts_have_ckans_fields(hub_a: Hub, public: list[Record]) -> None:
    titles = org_titles()
    licences = {lic["id"] for lic in hub_a.ckan().action.license_list()}
    by_name = {r.name: r for r in public}
    for package in hub_a.ckan().action.current_package_list_with_resources(limit=1000):
        record = by_name[package["name"]]
        assert set(package) >= PACKAGE_KEYS, PACKAGE_KEYS - set(package)
        assert (package["id"], package["title"], package["notes"]) == (
            record.id, record.title, record.description)
        assert package["type"] == "dataset" and package["state"] == "active"
        assert package["private"] is False and package["license_id"] == record.license
        assert package["license_id"] in licences
        assert package["organization"]["name"] == record.publisher
        assert package["organization"]["title"] == titles[record.publisher]
        assert package["owner_org"] == package["organization"]["id"]
        assert CKAN_TIME.match(package["metadata_created"])
        assert CKAN_TIME.match(package["metadata_modified"])
        assert package["metadata_created"] <= package["metadata_modified"]
        assert package["num_tags"] == len(package["tags"])
        assert [t["name"] for t in package["tags"]] == record.keywords
        for tag in package["tags"]:
            assert set(tag) >= {"id", "name", "display_name", "state", "vocabulary_id"}
        assert {g["name"] for g in package["groups"]} == {t.lower() for t in record.themes}
        assert all(set(g) >= GROUP_KEYS for g in package["groups"])
        assert all(set(e) == {"key", "value"} and isinstance(e["value"], str)
                   for e in package["extras"])
        assert len(extras(package)) == len(package["extras"])  # keys are unique
        assert package["num_resources"] == len(package["resources"])
        for position, resource in enumerate(package["resources"]):
            assert set(resource) >= RESOURCE_KEYS, RESOURCE_KEYS - set(resource)
            assert resource["package_id"] == package["id"]
            assert resource["position"] == position
            assert resource["url"].startswith(("http://", "https://"))


def test_spatial_extra_is_geojson_of_the_extent(hub_a: Hub) -> None:
    ckan = hub_a.ckan()
    version = hub_a.open_store().current("gemeinden")
    for name, bbox in (("gemeinden", version.bbox),
                       ("stadtplan-finsterwalde", [13.6, 51.6, 13.75, 51.7])):
        geometry = json.loads(extras(ckan.action.package_show(id=name))["spatial"])
        assert geometry["type"] == "Polygon"
        xs = [x for x, _ in geometry["coordinates"][0]]
        ys = [y for _, y in geometry["coordinates"][0]]
        assert [min(xs), min(ys), max(xs), max(ys)] == pytest.approx(bbox)
    assert "spatial" not in extras(ckan.action.package_show(id="abfallkalender"))


def test_the_store_dataset_has_a_geojson_resource(hub_a: Hub, http: httpx.Client) -> None:
    package = hub_a.ckan().action.package_show(id="gemeinden")
    geojson = [r for r in package["resources"] if r["format"] == "GEOJSON"]
    assert len(geojson) == 1 and geojson[0]["mimetype"] == "application/geo+json"
    assert hub_a.ckan().action.resource_show(id=geojson[0]["id"]) == geojson[0]
    response = httpx.get(geojson[0]["url"], timeout=30)
    assert response.status_code == 200
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == hub_a.open_store().current("gemeinden").rows == 33


def test_every_hub_resource_has_the_format_and_type_it_is_served_with(hub_a: Hub) -> None:
    """FlatGeobuf and the OGC API had an empty `format` and `mimetype` (issue 9, defect 19)."""
    package = hub_a.ckan().action.package_show(id="gemeinden")
    by_format = {r["format"]: r for r in package["resources"]}
    assert {"GEOJSON", "CSV", "GPKG", "PARQUET", "FlatGeobuf", "OGC API Features"} \
        <= set(by_format)
    for resource in package["resources"]:
        assert resource["format"] and resource["mimetype"], resource["name"]
        served = httpx.get(resource["url"], timeout=30)
        assert served.status_code == 200, resource["url"]
        assert served.headers["content-type"].split(";")[0] == resource["mimetype"], \
            resource["format"]
    assert by_format["FlatGeobuf"]["mimetype"] == "application/flatgeobuf"
    assert by_format["OGC API Features"]["resource_type"] == "api"


def test_organization_list(hub_a: Hub, public: list[Record]) -> None:
    ckan, titles = hub_a.ckan(), org_titles()
    counts = collections.Counter(r.publisher for r in public)
    by_title = sorted(titles, key=lambda o: (titles[o].casefold(), o))
    assert ckan.action.organization_list() == by_title  # default: title asc
    assert ckan.action.organization_list(limit=5, offset=3) == by_title[3:8]
    assert ckan.action.organization_list(sort="name asc") == sorted(titles)
    assert ckan.action.organization_list(sort="name desc") == sorted(titles, reverse=True)
    assert len(ckan.action.organization_list(all_fields=True)) == min(25, len(titles))
    full = ckan.action.organization_list(all_fields=True, limit=1000)
    assert [o["name"] for o in full] == by_title
    assert {o["name"]: o["package_count"] for o in full} == {o: counts[o] for o in titles}
    assert all(set(o) >= GROUP_KEYS and o["is_organization"] is True for o in full)
    assert all(o["title"] == titles[o["name"]] for o in full)
    ranked = ckan.action.organization_list(all_fields=True, limit=1000,
                                           sort="package_count desc")
    assert [o["package_count"] for o in ranked] == sorted((counts[o] for o in titles),
                                                          reverse=True)
    assert ckan.action.organization_list(organizations=["sozialamt", "umweltamt"]) == sorted(
        ["sozialamt", "umweltamt"], key=lambda o: titles[o].casefold())


def test_organization_show(hub_a: Hub, public: list[Record]) -> None:
    ckan = hub_a.ckan()
    mine = {r.name for r in public if r.publisher == "sozialamt"}
    shown = ckan.action.organization_show(id="sozialamt", include_datasets=True)
    assert shown["name"] == "sozialamt" and shown["title"] == org_titles()["sozialamt"]
    assert shown["package_count"] == len(mine) and names(shown["packages"]) == mine
    assert ckan.action.organization_show(id=shown["id"])["name"] == "sozialamt"
    assert ckan.action.organization_show(id="sozialamt")["packages"] == []
    with pytest.raises(ckanapi.NotFound):
        ckan.action.organization_show(id="no-such-org")


def test_groups_are_lower_case_eu_themes(hub_a: Hub, public: list[Record]) -> None:
    ckan = hub_a.ckan()
    assert set(ckan.action.group_list()) == EU_THEMES
    counts = collections.Counter(t.lower() for r in public for t in r.themes)
    full = ckan.action.group_list(all_fields=True, limit=1000)
    assert {g["name"]: g["package_count"] for g in full} == {t: counts[t] for t in EU_THEMES}
    assert all(g["is_organization"] is False for g in full)
    tran = ckan.action.group_show(id="tran", include_datasets=True)
    assert tran["package_count"] == counts["tran"] > 0
    assert names(tran["packages"]) == {r.name for r in public if "TRAN" in r.themes}
    assert "TRAN" in tran["uri"] and tran["title"]
    with pytest.raises(ckanapi.NotFound):
        ckan.action.group_show(id="no-such-group")


def test_tag_list(hub_a: Hub, public: list[Record]) -> None:
    ckan = hub_a.ckan()
    tags = {k for r in public for k in r.keywords}
    assert sorted(ckan.action.tag_list()) == sorted(tags)
    assert set(ckan.action.tag_list(query="stadt")) == {t for t in tags if "stadt" in t.lower()}
    assert "Stadtplan" in ckan.action.tag_list(query="stadt")
    full = ckan.action.tag_list(query="stadt", all_fields=True)
    assert {t["name"] for t in full} == set(ckan.action.tag_list(query="stadt"))
    assert all(t["display_name"] == t["name"] and t["id"] for t in full)
    assert hub_a.ckan(get_only=True).action.tag_list(query="stadt") == ckan.action.tag_list(
        query="stadt")


def test_license_list(hub_a: Hub, public: list[Record]) -> None:
    licences = hub_a.ckan().action.license_list()
    ids = [lic["id"] for lic in licences]
    assert {"dl-by-de/2.0", "dl-zero-de/2.0", "cc-by/4.0", "cc-zero"} <= set(ids)
    assert len(ids) == len(set(ids))
    assert all(set(lic) >= LICENSE_KEYS and lic["title"] for lic in licences)
    dl_by = next(lic for lic in licences if lic["id"] == "dl-by-de/2.0")
    assert dl_by["url"].startswith("http") and dl_by["od_conformance"] == "approved"
    assert {r.license for r in public} <= set(ids)


def test_resource_show(hub_a: Hub) -> None:
    ckan = hub_a.ckan()
    package = ckan.action.package_show(id="stadtplan-finsterwalde")
    assert len(package["resources"]) == 2
    for resource in package["resources"]:
        assert ckan.action.resource_show(id=resource["id"]) == resource
    with pytest.raises(ckanapi.NotFound, match="Resource was not found"):
        ckan.action.resource_show(id="00000000-0000-0000-0000-000000000000")


@pytest.mark.parametrize("query", [
    "name:plan",  # inside a word: "Stadtplan"
    "name:PLAN",
    "description:hausnummer",
    "name:geojson",  # the hub's own download of stored data
    "format:pdf",
    ["name:stadt", "url:example.org"],
    "url:strassenverzeichnis-finsterwalde",
])
def test_resource_search_finds_substrings(hub_a: Hub, query: str | list[str]) -> None:
    ckan = hub_a.ckan()
    terms = [q.split(":", 1) for q in ([query] if isinstance(query, str) else query)]
    expected = {r["id"] for p in ckan.action.current_package_list_with_resources(limit=1000)
                for r in p["resources"]
                if all(term.casefold() in str(r[field] or "").casefold()
                       for field, term in terms)}
    found = ckan.action.resource_search(query=query)
    assert found["count"] == len(found["results"]) == len(expected) > 0
    assert {r["id"] for r in found["results"]} == expected
    paged = ckan.action.resource_search(query=query, order_by="name", limit=1, offset=0)
    assert paged["count"] == len(expected) and len(paged["results"]) == 1


def test_resource_search_refuses_unknown_fields(hub_a: Hub) -> None:
    with pytest.raises(ckanapi.ValidationError):
        hub_a.ckan().action.resource_search(query="nosuchfield:x")


def test_help_show(hub_a: Hub) -> None:
    text = hub_a.ckan().action.help_show(name="package_list")
    assert isinstance(text, str) and "public" in text
    with pytest.raises(ckanapi.NotFound):
        hub_a.ckan().action.help_show(name="no_such_action")


def test_help_show_documents_every_action(hub_a: Hub) -> None:
    empty = [name for name in ACTIONS if not hub_a.ckan().action.help_show(name=name)]
    assert empty == []


# -- package_search -------------------------------------------------------------------------

def test_free_text_in_german_either_spelling(hub_a: Hub, public: list[Record]) -> None:
    ckan = hub_a.ckan()
    results = [names(search_all(ckan, q=q)) for q in ("Ladesäule", "Ladesaeule", "LADESÄULE")]
    assert results[0] == results[1] == results[2]
    with_title = {r.name for r in public if "ladesäule" in r.title.lower()}
    assert with_title and with_title <= results[0]
    for name in results[0]:  # every hit mentions the word somewhere
        text = german_key(json.dumps(ckan.action.package_show(id=name), ensure_ascii=False))
        assert "ladesaeule" in text
    assert names(search_all(ckan, q="Ladesäule Zuckerwatte")) == set()  # q.op=AND


def test_field_query_matches_package_show(hub_a: Hub) -> None:
    """`organization:sozialamt` counts what package_show says belongs to the Sozialamt."""
    ckan = hub_a.ckan()
    owned = [n for n in ckan.action.package_list()
             if ckan.action.package_show(id=n)["organization"]["name"] == "sozialamt"]
    found = ckan.action.package_search(q="organization:sozialamt", rows=1000)
    assert found["count"] == len(owned) > 0 and names(found) == set(owned)


QUERIES: dict[str, Callable[[Record], bool]] = {
    "*:*": lambda r: True,
    "": lambda r: True,
    "capacity:public": lambda r: True,
    "organization:sozialamt": lambda r: r.publisher == "sozialamt",
    "organization:sozialamt OR organization:umweltamt":
        lambda r: r.publisher in ("sozialamt", "umweltamt"),
    "organization:sozialamt AND groups:soci":
        lambda r: r.publisher == "sozialamt" and "SOCI" in r.themes,
    "organization:sozialamt groups:soci":
        lambda r: r.publisher == "sozialamt" and "SOCI" in r.themes,
    "NOT organization:sozialamt": lambda r: r.publisher != "sozialamt",
    "-organization:sozialamt": lambda r: r.publisher != "sozialamt",
    "*:* -organization:sozialamt -organization:umweltamt":
        lambda r: r.publisher not in ("sozialamt", "umweltamt"),
    "(organization:sozialamt OR organization:umweltamt) AND -groups:envi":
        lambda r: r.publisher in ("sozialamt", "umweltamt") and "ENVI" not in r.themes,
    "groups:(soci OR educ)": lambda r: bool({"SOCI", "EDUC"} & set(r.themes)),
    "tags:Stadtplan": lambda r: "Stadtplan" in r.keywords,
    'license_id:"cc-by/4.0"': lambda r: r.license == "cc-by/4.0",
    "res_format:PDF": lambda r: any(d.format == "PDF" for d in r.distributions),
    'title:"Stadtplan Finsterwalde"': lambda r: "stadtplan finsterwalde" in r.title.lower(),
    "name:gemeinden OR name:stadtplan-finsterwalde":
        lambda r: r.name in ("gemeinden", "stadtplan-finsterwalde"),
}


@pytest.mark.parametrize("q", QUERIES)
def test_query_syntax(hub_a: Hub, public: list[Record], q: str) -> None:
    expected = {r.name for r in public if QUERIES[q](r)}
    assert expected or q.startswith("res_format")  # most queries find something
    found = search_all(hub_a.ckan(), q=q)
    assert names(found) == expected
    assert names(search_all(hub_a.ckan(get_only=True), q=q)) == expected


def test_quoted_phrases_keep_word_order(hub_a: Hub) -> None:
    ckan = hub_a.ckan()
    assert "stadtplan-finsterwalde" in names(search_all(ckan, q='"Stadtplan Finsterwalde"'))
    assert "stadtplan-finsterwalde" not in names(search_all(ckan, q='"Finsterwalde Stadtplan"'))
    assert "stadtplan-finsterwalde" in names(search_all(ckan, q="Finsterwalde Stadtplan"))


def test_fq_and_fq_list_are_anded_with_q(hub_a: Hub, public: list[Record]) -> None:
    ckan = hub_a.ckan()
    soz_or_umw = {r.name for r in public if r.publisher in ("sozialamt", "umweltamt")}
    soci = {r.name for r in public if "SOCI" in r.themes}
    q = "organization:sozialamt OR organization:umweltamt"
    assert names(search_all(ckan, q=q, fq="groups:soci")) == soz_or_umw & soci
    assert names(search_all(ckan, fq=q)) == soz_or_umw
    assert names(search_all(ckan, fq_list=[f"({q})", "groups:soci"])) == soz_or_umw & soci
    assert names(search_all(ckan, q="groups:soci", fq="-organization:sozialamt",
                            fq_list=["-organization:umweltamt"])) == soci - soz_or_umw
    assert names(search_all(hub_a.ckan(get_only=True), fq_list=[f"({q})", "groups:soci"])
                 ) == soz_or_umw & soci


def micro(stamp: str, delta_us: int = 0) -> str:
    """A CKAN timestamp moved by some microseconds, written as harvesters send it (µs, Z)."""
    moment = dt.datetime.fromisoformat(stamp) + dt.timedelta(microseconds=delta_us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_ranges_on_timestamps(hub_a: Hub) -> None:
    ckan = hub_a.ckan()
    packages = ckan.action.current_package_list_with_resources(limit=1000)
    stamps = sorted({p["metadata_modified"] for p in packages})
    assert len(stamps) >= 3  # catalog load, inventory import, single adds
    t = stamps[len(stamps) // 2]

    def where(test: Callable[[str], bool], key: str = "metadata_modified") -> set[str]:
        return {p["name"] for p in packages if test(p[key])}

    cases = {
        f"metadata_modified:[{micro(t)} TO *]": where(lambda m: m >= t),
        f"metadata_modified:{{{micro(t)} TO *]": where(lambda m: m > t),
        f"metadata_modified:[{micro(t, 1)} TO *]": where(lambda m: m > t),
        f"metadata_modified:[* TO {micro(t)}]": where(lambda m: m <= t),
        f"metadata_modified:[* TO {micro(t)}}}": where(lambda m: m < t),
        f"metadata_modified:[* TO {micro(t, -1)}]": where(lambda m: m < t),
        f"metadata_modified:[{micro(stamps[0])} TO {micro(stamps[-1])}]": where(lambda m: True),
        "metadata_modified:[2024-05-01T09:00:00.123456Z TO *]": where(lambda m: True),
        "metadata_modified:[2015-07-24T00:00:00Z TO NOW]": where(lambda m: True),
        "metadata_modified:[* TO NOW]": where(lambda m: True),
        "metadata_modified:[NOW TO *]": set(),
        "metadata_modified:[* TO NOW-1YEAR]": set(),
        "metadata_modified:[NOW-1DAY TO NOW+1DAY]": where(lambda m: True),
        "metadata_created:[* TO 2024-05-01T09:00:00.123456Z]": set(),
        f"metadata_created:[{micro(t)} TO *]": where(lambda m: m >= t, "metadata_created"),
    }
    assert 0 < len(cases[f"metadata_modified:[{micro(t)} TO *]"]) < len(packages)
    for q, expected in cases.items():
        assert names(search_all(ckan, q=q)) == expected, q
        assert names(search_all(ckan, fq_list=[q])) == expected, q


def test_rows_start_and_count(hub_a: Hub, public: list[Record]) -> None:
    ckan = hub_a.ckan()
    ordered = [p["name"] for p in search_all(ckan, sort="name asc")["results"]]
    assert ordered == sorted(r.name for r in public)
    page = ckan.action.package_search(sort="name asc", rows=7, start=10)
    assert [p["name"] for p in page["results"]] == ordered[10:17]
    assert page["count"] == len(public)
    assert len(ckan.action.package_search()["results"]) == 10  # CKAN's default
    empty = ckan.action.package_search(rows=0)
    assert empty["results"] == [] and empty["count"] == len(public)
    many = ckan.action.package_search(rows=5000)  # capped at 1000, silently
    assert len(many["results"]) == len(public)
    assert ckan.action.package_search(start=len(public))["results"] == []
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.package_search(rows="many")


@pytest.mark.parametrize("field", ["name", "id", "title_string", "metadata_modified",
                                   "metadata_created"])
def test_sort_orders(hub_a: Hub, field: str) -> None:
    key = {"title_string": "title"}.get(field, field)
    value: Callable[[dict], object] = (
        (lambda p: german_key(p["title"])) if field == "title_string" else (lambda p: p[key]))
    ckan = hub_a.ckan()
    ascending = search_all(ckan, sort=f"{field} asc")["results"]
    descending = search_all(ckan, sort=f"{field} desc")["results"]
    assert [value(p) for p in ascending] == sorted(value(p) for p in ascending)
    assert [value(p) for p in descending] == sorted((value(p) for p in descending),
                                                    reverse=True)
    if field in ("name", "id"):  # unique: one order is the other reversed
        assert ascending == descending[::-1]


def test_multi_key_sort_and_score(hub_a: Hub) -> None:
    ckan = hub_a.ckan()
    found = search_all(ckan, sort="metadata_modified desc, name asc")
    assert found["sort"] == "metadata_modified desc, name asc"
    keys = [(p["metadata_modified"], p["name"]) for p in found["results"]]
    assert keys == sorted(keys, key=lambda k: (-dt.datetime.fromisoformat(k[0]).timestamp(),
                                               k[1]))
    by_score = search_all(ckan, q="Stadtplan", sort="score desc, name asc")
    assert names(by_score) == names(search_all(ckan, q="Stadtplan"))
    assert by_score["results"][0]["name"] == "stadtplan-finsterwalde"  # in title, tags, name
    assert search_all(ckan)["sort"] == "score desc, metadata_modified desc"  # the default


def expected_facets(records: list[Record]) -> dict[str, dict[str, int]]:
    return {"organization": dict(collections.Counter(r.publisher for r in records)),
            "groups": dict(collections.Counter(t.lower() for r in records for t in r.themes)),
            "tags": dict(collections.Counter(k for r in records for k in set(r.keywords))),
            "license_id": dict(collections.Counter(r.license for r in records))}


def test_facets(hub_a: Hub, http: httpx.Client, public: list[Record]) -> None:
    fields = ["organization", "groups", "tags", "license_id"]
    expected = expected_facets(public)
    ckan = hub_a.ckan()
    as_json = ckan.action.package_search(rows=0, **{"facet.field": json.dumps(fields),
                                                    "facet.limit": -1})
    assert as_json["facets"] == expected
    as_list = hub_a.ckan(get_only=True).action.package_search(  # repeated GET parameters
        rows=0, **{"facet.field": fields, "facet.limit": -1})
    assert as_list["facets"] == expected
    repeated = http.get("/api/3/action/package_search", params=[
        ("rows", "0"), ("facet.limit", "-1"), *(("facet.field", f) for f in fields)])
    assert repeated.json()["result"]["facets"] == expected
    titles = org_titles()
    for field in fields:
        items = as_json["search_facets"][field]["items"]
        assert {i["name"]: i["count"] for i in items} == expected[field]
        if field == "organization":
            assert all(i["display_name"] == titles[i["name"]] for i in items)
    top = ckan.action.package_search(rows=0, **{"facet.field": ["organization", "tags"],
                                                "facet.limit": 2})["facets"]
    for field in ("organization", "tags"):
        assert len(top[field]) == 2
        assert sorted(top[field].values(), reverse=True) == sorted(
            expected[field].values(), reverse=True)[:2]
    default = ckan.action.package_search(rows=0, **{"facet.field": ["tags"]})["facets"]
    assert len(default["tags"]) == min(50, len(expected["tags"]))  # facet.limit 50
    filtered = ckan.action.package_search(q="organization:sozialamt", rows=0,
                                          **{"facet.field": ["organization"]})
    assert filtered["facets"] == {"organization": {"sozialamt": expected["organization"][
        "sozialamt"]}}


def test_ext_bbox(hub_a: Hub, public: list[Record]) -> None:
    ckan = hub_a.ckan()

    def overlaps(r: Record, box: tuple[float, ...]) -> bool:
        return r.bbox is not None and not (r.bbox[2] < box[0] or r.bbox[0] > box[2]
                                           or r.bbox[3] < box[1] or r.bbox[1] > box[3])

    for box in ((13.0, 51.3, 13.9, 51.9), (13.65, 51.65, 13.7, 51.68), (0.0, 0.0, 1.0, 1.0)):
        expected = {r.name for r in public if overlaps(r, box)}
        found = search_all(ckan, ext_bbox=",".join(map(str, box)))
        assert names(found) == expected, box
    assert {"gemeinden", "stadtplan-finsterwalde"} <= names(
        search_all(ckan, ext_bbox="13.0,51.3,13.9,51.9"))
    with pytest.raises(ckanapi.SearchQueryError):
        ckan.action.package_search(ext_bbox="13,51")


@pytest.mark.parametrize("params", [
    {"q": "{!field f=name}gemeinden"},
    {"q": "name:gemeinden~2"},
    {"q": "gemeinden~2"},
    {"q": "title:Stadtplan^2"},
    {"q": "te?t"},
    {"q": "nosuchfield:x"},
    {"q": "title:[a TO"},
    {"q": "(organization:sozialamt"},
    {"fq": "{!geofilt}"},
    {"fq_list": ["organization:sozialamt", "name:/gem.*/"]},
    {"foo": "1"},
    {"sort": "name sideways"},
    {"sort": "bogus asc"},
    {"sort": "name asc, views_total desc"},
    {"facet.field": '["no_such_field"]'},
    {"q.op": "OR"},
], ids=lambda p: json.dumps(p))
def test_unsupported_search_syntax_is_a_search_query_error(hub_a: Hub, http: httpx.Client,
                                                           params: dict) -> None:
    with pytest.raises(ckanapi.SearchQueryError):
        hub_a.ckan().action.package_search(**params)
    response = http.post("/api/3/action/package_search", json=params)
    assert response.status_code == 400
    assert response.json()["error"]["__type"] == "Search Query Error"


def test_autocomplete(hub_a: Hub) -> None:
    ckan = hub_a.ckan()
    by_title = ckan.action.package_autocomplete(q="Stadtpl")
    assert {"name": "stadtplan-finsterwalde", "title": "Stadtplan Finsterwalde"}.items() <= \
        next(m for m in by_title if m["name"] == "stadtplan-finsterwalde").items()
    by_name = ckan.action.package_autocomplete(q="stadtplan-f")
    assert [m["name"] for m in by_name] == ["stadtplan-finsterwalde"]
    assert by_name[0]["match_field"] == "name"
    assert len(ckan.action.package_autocomplete(q="a", limit=3)) <= 3
    assert ckan.action.package_autocomplete(q="qqqqqq") == []


# -- access levels --------------------------------------------------------------------------

@pytest.mark.parametrize("user", [None, *USERS])
def test_who_sees_what_with_include_private(hub_a: Hub, truth: list[Record],
                                            user: str | None) -> None:
    expected = {r.name for r in truth if may_see(user, r)}
    ckan = hub_a.ckan(user)
    found = search_all(ckan, include_private=True, **{"facet.field": ["organization", "tags"],
                                                      "facet.limit": -1})
    assert names(found) == expected
    visible = [r for r in truth if r.name in expected]
    assert found["facets"]["organization"] == expected_facets(visible)["organization"]
    assert found["facets"]["tags"] == expected_facets(visible)["tags"]
    public_only = search_all(ckan)  # include_private defaults to false, for everyone
    assert names(public_only) == {r.name for r in truth if r.access == "public"}
    for name in HIDDEN_RECORDS:
        record = next(r for r in truth if r.name == name)
        if may_see(user, record):
            package = ckan.action.package_show(id=name)
            assert package["private"] is True
            assert extras(package)["access_level"] == record.access
            resource = package["resources"][0]
            assert ckan.action.resource_show(id=resource["id"]) == resource
        else:
            with pytest.raises(ckanapi.NotFound):
                ckan.action.package_show(id=name)
            with pytest.raises(ckanapi.NotFound):
                ckan.action.package_show(id=record.id)
            with pytest.raises(ckanapi.NotFound):
                ckan.action.resource_show(id=record.distributions[0].id)
    tags = set(ckan.action.tag_list())
    assert tags == {k for r in visible for k in r.keywords}
    counts = {o["name"]: o["package_count"]
              for o in ckan.action.organization_list(all_fields=True, limit=1000)}
    by_org = collections.Counter(r.publisher for r in visible)
    assert all(counts[o] == by_org[o] for o in counts)


def test_nothing_hidden_reaches_anonymous_callers(hub_a: Hub, http: httpx.Client,
                                                  truth: list[Record]) -> None:
    hidden = [r for r in truth if r.access != "public"]
    hidden_names = {r.name for r in hidden}
    assert len(hidden) >= 30
    ckan = hub_a.ckan()
    assert not hidden_names & set(ckan.action.package_list())
    assert not hidden_names & names(ckan.action.current_package_list_with_resources(limit=1000))
    for params in ({}, {"include_private": True}, {"include_drafts": True},
                   {"ext_bbox": "13.0,51.3,13.9,51.9", "include_private": True}):
        assert not hidden_names & names(search_all(ckan, **params))
    found = search_all(ckan, include_private=True, **{
        "facet.field": ["organization", "groups", "tags", "license_id"], "facet.limit": -1})
    assert found["facets"] == expected_facets([r for r in truth if r.access == "public"])
    assert names(search_all(ckan, q="Zuckerwatte", include_private=True)) == set()
    assert ckan.action.tag_list(query="Zuckerwatte") == []
    only_hidden_tags = {k for r in hidden for k in r.keywords} - {
        k for r in truth if r.access == "public" for k in r.keywords}
    assert only_hidden_tags and not only_hidden_tags & set(ckan.action.tag_list())
    assert ckan.action.package_autocomplete(q="Zuckerwatte") == []
    assert ckan.action.resource_search(query="url:zw-")["count"] == 0
    umweltamt = ckan.action.organization_show(id="umweltamt", include_datasets=True)
    assert not hidden_names & names(umweltamt["packages"])
    assert umweltamt["package_count"] == len(umweltamt["packages"])
    groups = {g["name"]: g["package_count"]
              for g in ckan.action.group_list(all_fields=True, limit=100)}
    assert groups == {g: expected_facets([r for r in truth if r.access == "public"])[
        "groups"].get(g, 0) for g in EU_THEMES}
    for record in hidden:
        for key in (record.name, record.id):
            with pytest.raises(ckanapi.NotFound):
                ckan.action.package_show(id=key)
        for dist in record.distributions:
            with pytest.raises(ckanapi.NotFound):
                ckan.action.resource_show(id=dist.id)
        assert http.get(f"/dataset/{record.id}.ttl").status_code == 404
    catalog_ttl = http.get("/catalog.ttl").text
    assert not [r.id for r in hidden if r.id in catalog_ttl]


# -- tokens ---------------------------------------------------------------------------------

def private_count(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return http.post("/api/3/action/package_search", headers=headers,
                     json={"rows": 0, "include_private": True})


@pytest.mark.parametrize("style", ["Authorization", "Bearer", "X-CKAN-API-Key"])
def test_token_headers(hub_a: Hub, http: httpx.Client, truth: list[Record], style: str) -> None:
    token = hub_a.tokens["vic"]
    headers = {"Authorization": f"Bearer {token}"} if style == "Bearer" else {style: token}
    response = private_count(http, headers)
    assert response.status_code == 200
    assert response.json()["result"]["count"] == sum(may_see("vic", r) for r in truth)
    assert private_count(http, {}).json()["result"]["count"] == sum(
        r.access == "public" for r in truth)


def refused(hub_a: Hub, http: httpx.Client, token: str) -> bool:
    """Whether a token is refused with an Authorization Error, on reads too."""
    response = private_count(http, {"Authorization": token})
    if response.status_code == 200:
        return False
    assert response.status_code == 403
    assert response.json()["error"]["__type"] == "Authorization Error"
    with pytest.raises(ckanapi.NotAuthorized):
        ckanapi.RemoteCKAN(hub_a.url, apikey=token).action.package_list()
    return True


@pytest.mark.parametrize("token", ["not-a-token", "hub_" + "A" * 43, "hub_", "x" * 500])
def test_unknown_tokens_are_refused(hub_a: Hub, http: httpx.Client, token: str) -> None:
    assert refused(hub_a, http, token)


def test_revoked_token_is_refused_and_token_list_shows_no_secret(
        hub_a: Hub, http: httpx.Client) -> None:
    token_id, secret = new_token(hub_a.root, "vic", "--name", "revoke-me")
    assert not refused(hub_a, http, secret)
    listing = hub_cli(hub_a.root, "token", "list").stdout
    row = next(line for line in listing.splitlines() if "revoke-me" in line)
    assert token_id in row and "valid" in row
    for known in (*hub_a.tokens.values(), secret):
        assert known not in listing and known[4:20] not in listing
    hub_cli(hub_a.root, "token", "revoke", token_id)
    assert refused(hub_a, http, secret)
    assert not refused(hub_a, http, hub_a.tokens["vic"])  # the user's other token still works


def test_expired_token_is_refused(hub_a: Hub, http: httpx.Client) -> None:
    token_id, secret = new_token(hub_a.root, "vic", "--name", "expire-me", "--days", "1")
    assert not refused(hub_a, http, secret)
    with hub_a.open_store().db.write() as db:  # a day later, as it were
        db.execute(update(tokens).where(tokens.c.id == token_id).values(expires=(
            dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat(
                timespec="milliseconds").replace("+00:00", "Z")))
    assert refused(hub_a, http, secret)


def test_disabled_users_tokens_are_refused(hub_a: Hub, http: httpx.Client) -> None:
    run_hub(hub_a.root, "user", "add", "gone", "--org", "sozialamt", "--role", "editor")
    _, secret = new_token(hub_a.root, "gone")
    assert not refused(hub_a, http, secret)
    hub_cli(hub_a.root, "user", "disable", "gone")
    assert refused(hub_a, http, secret)
    with pytest.raises(ckanapi.NotAuthorized):
        ckanapi.RemoteCKAN(hub_a.url, apikey=secret).action.package_patch(
            id="abfallkalender", notes="x")
    hub_cli(hub_a.root, "user", "enable", "gone")
    assert not refused(hub_a, http, secret)


def test_tokens_are_stored_hashed(hub_a: Hub, http: httpx.Client) -> None:
    assert not refused(hub_a, http, hub_a.tokens["ann"])  # used at least once
    database = hub_a.open_store().db
    with database.connection() as db:  # every value of every table, on either backend
        stored = repr([db.exec_driver_sql(f'SELECT * FROM "{name}"').all()
                       for name in sa.inspect(db).get_table_names()])
    if database.path is not None:  # and the SQLite file's bytes, its journal included
        stored += repr(b"".join(p.read_bytes() for p in database.path.parent.glob("hub.sqlite*")))
    for secret in hub_a.tokens.values():
        assert secret not in stored
        assert hashlib.sha256(secret.encode()).hexdigest() in stored


# -- the hub user / hub token commands ------------------------------------------------------

def test_user_add_refuses_unknown_organisation_and_role(hub_a: Hub) -> None:
    def run(*args: str) -> subprocess.CalledProcessError:
        with pytest.raises(subprocess.CalledProcessError) as caught:
            hub_cli(hub_a.root, "user", "add", *args)
        return caught.value

    with ThreadPoolExecutor(2) as pool:
        org, role = pool.map(lambda a: run(*a), [
            ("nobody", "--org", "no-such-office", "--role", "editor"),
            ("nobody", "--org", "sozialamt", "--role", "boss")])
    assert org.returncode == 1 and "organisation 'no-such-office' is unknown" in org.stderr
    assert role.returncode == 1 and "role 'boss'" in role.stderr
    assert "viewer, editor, publisher, admin" in role.stderr
    assert "nobody" not in run_hub(hub_a.root, "user", "list")
