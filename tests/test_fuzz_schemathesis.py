"""Every OpenAPI document the hub serves, held against the server by schemathesis.

`/ogc/api` (OGC API Features and Tiles) and `/api/openapi.json` (CKAN's read actions, the held
datasets, the DCAT feeds) are loaded from a real `hub serve` on 127.0.0.1 with a catalog like
production's (tests/ckan_project.py: the demo data, the Dateninventur with internal and
restricted records, users) and two small point collections with constrained queryables, one
public, one internal. For every operation, schemathesis generates requests from its schema
(seeded and derandomized: the same requests on every run) and checks each answer: no 5xx, a
documented status, a documented content type, a body that conforms to the documented schema,
documented headers. Valid requests (schemathesis' positive mode) and requests with a value
the schema rejects (negative mode: a documented 4xx, never a 5xx); anonymous and signed-in
callers both (a viewer sees internal records and collections).

tests/test_ogc_openapi_fuzz.py complements this for the OGC API with its own generator (values
the descriptions promise, and that each invalid value is a 400 naming its parameter).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import requests
import schemathesis
import yaml
from ckan_project import build, run_hub
from conftest import hub_server
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from ogc_site import POINT_FIELDS, _write_pflege
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.api import openapi
from hub.api.ckan.core import ACTIONS

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
# requests per operation, caller and mode (fewer where hypothesis runs out of distinct
# cases): /api/openapi.json has 21 operations, /ogc/api ~30 for a viewer (fewer for anonymous);
# about 2,800 requests in all, in about 1.5 minutes
EXAMPLES = 40
NEGATIVE_EXAMPLES = 12
KNOWN_EXAMPLES = 10
MINIMUM_REQUESTS = 2000


@dataclass
class FuzzSite:
    url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzSite]:
    root = tmp_path_factory.mktemp("fuzz") / "project"
    tokens = build(root)
    (root / "schemas" / "einrichtungen.json").write_text(
        json.dumps({"fields": POINT_FIELDS, "primaryKey": ["id"]}), encoding="utf-8")
    rng = np.random.default_rng(20261202)
    for name, access, prefix in (("einrichtungen", "public", "E"),
                                 ("einrichtungen-intern", "internal", "I")):
        _write_pflege(root / "pipelines" / "data" / f"{name}.csv", rng, 40, prefix)
        (root / "pipelines" / f"{name}.yaml").write_text(yaml.safe_dump({
            "dataset": name, "title": f"Einrichtungen ({access})", "organization": "sozialamt",
            "access": access, "schema": "einrichtungen",
            "source": {"path": f"data/{name}.csv", "crs": "EPSG:4326",
                       "geometry": {"lon": "lon", "lat": "lat"}}}), encoding="utf-8")
        run_hub(root, "ingest", name)
    run_hub(root, "catalog", "load")
    with hub_server(root) as server:
        yield FuzzSite(server.url, tokens)


# Generated ids are unknown ids: these operations also run with one that exists (the other
# parameters generated), so their 200 answers are checked against the documents too
KNOWN: dict[str, dict[str, dict[str, str]]] = {
    "/api/3/action/package_show": {"query": {"id": "gemeinden"}},
    "/api/3/action/organization_show": {"query": {"id": "sozialamt"}},
    "/api/3/action/group_show": {"query": {"id": "regi"}},
    "/api/3/action/help_show": {"query": {"name": "package_search"}},
    "/api/datasets/{name}": {"path_parameters": {"name": "einrichtungen"}},
    "/api/orte/{slug}": {"path_parameters": {"slug": "finsterwalde"}},
    "/dataset/{ident}.{fmt}": {"path_parameters": {"ident": "gemeinden"}},
    "/collections/einrichtungen/items/{featureId}": {"path_parameters": {"featureId": "E0001"}},
}


def _fuzz(schema: schemathesis.BaseSchema, headers: dict[str, str], caller: str
          ) -> tuple[Counter[str], Counter[str]]:
    """Run every operation of `schema` with valid and with invalid requests; the number of
    requests made and of 200 answers, by caller, mode and operation."""
    made: Counter[str] = Counter()
    ok: Counter[str] = Counter()
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        runs = [(GenerationMode.POSITIVE, EXAMPLES, {}),
                (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, {})]
        if operation.path in KNOWN:
            runs.append((GenerationMode.POSITIVE, KNOWN_EXAMPLES, KNOWN[operation.path]))
        for mode, examples, fixed in runs:
            key = f"{caller} {mode.value}{' known' if fixed else ''} {operation.label}"
            made[key], ok[key] = _run(operation.as_strategy(mode, **fixed), examples, session,
                                      headers)
    return made, ok


def _run(cases: SearchStrategy[schemathesis.Case], examples: int, session: requests.Session,
         headers: dict[str, str]) -> tuple[int, int]:
    """Call and check up to `examples` cases; how many were called, how many answered 200."""
    calls, ok = 0, 0

    # no shrinking: each failure comes with its request (a curl line), and shrinking
    # against a live server can take minutes
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def call(case: schemathesis.Case) -> None:
        nonlocal calls, ok
        calls += 1
        response = case.call_and_validate(session=session, headers=headers, checks=CHECKS,
                                          timeout=30)
        ok += response.status_code == 200

    try:
        call()
    except Unsatisfiable:  # the schema rejects nothing that can be sent (no parameters)
        assert calls == 0
    return calls, ok


def _document(url: str) -> Any:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_document_is_valid_openapi_and_lists_every_read_action(site: FuzzSite) -> None:
    doc = _document(site.url + openapi.URL)
    validate(doc)
    assert doc["servers"] == [{"url": site.url}]
    reads = {name for name, (_, read) in ACTIONS.items() if read}
    assert set(openapi.PARAMETERS) == reads == set(openapi.RESULTS)
    assert {p.rsplit("/", 1)[1] for p in doc["paths"] if p.startswith("/api/3/action/")} \
        == reads


def test_generated_requests_conform_to_the_documents(site: FuzzSite) -> None:
    made: Counter[str] = Counter()
    ok: Counter[str] = Counter()
    for caller in (None, "vic"):  # anonymous and a viewer (who sees internal data)
        headers = {"Authorization": site.tokens[caller]} if caller else {}
        for path in (openapi.URL, "/ogc/api"):
            # the OGC document is built for who asks: its collections are the caller's
            schema = schemathesis.openapi.from_url(site.url + path, headers=headers)
            requests_made, answered = _fuzz(schema, headers, caller or "anonymous")
            made += requests_made
            ok += answered
    assert sum(made.values()) >= MINIMUM_REQUESTS, sum(made.values())
    known = {key for key in made if " known " in key}
    assert len(known) == 2 * len(KNOWN), sorted(known)  # each ran, for both callers
    assert all(ok[key] for key in known), {key: ok[key] for key in known}


# -- what the fuzzing found, pinned ---------------------------------------------------------

def test_a_feature_id_with_a_line_break_gets_the_ogc_404(site: FuzzSite) -> None:
    """Starlette's `path` convertor stops at a line break: such an id fell through to
    FastAPI's generic `{"detail": "Not Found"}`, which the OGC document does not describe."""
    for fmt, media in (("json", "application/json"), ("html", "text/html")):
        response = requests.get(f"{site.url}/ogc/collections/einrichtungen/items/a%0Ab",
                                params={"f": fmt}, timeout=30)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith(media)
        if fmt == "json":
            assert response.json()["code"] == "NotFound"


def test_the_ogc_document_describes_its_html_error_pages(site: FuzzSite) -> None:
    """A bad parameter with `f=html` answers a German error page: the document said JSON."""
    response = requests.get(f"{site.url}/ogc/collections/einrichtungen/items",
                            params={"f": "html", "limit": "x"}, timeout=30)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    operation = _document(site.url + "/ogc/api")["paths"][
        "/collections/einrichtungen/items"]["get"]
    assert set(operation["responses"]["400"]["content"]) == {"application/json", "text/html"}


def test_a_page_out_of_range_is_a_400_naming_it(site: FuzzSite) -> None:
    """FastAPI's validation answered 422 with a list of error objects, undocumented."""
    for page in ("0", "100001", "x"):
        response = requests.get(f"{site.url}/catalog.ttl", params={"page": page}, timeout=30)
        assert response.status_code == 400, (page, response.text)
        assert response.json()["detail"].startswith("page: "), response.text
