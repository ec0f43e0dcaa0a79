"""The whole hub on PostgreSQL: the demo project built and served with HUB_DATABASE_URL
pointing at a real PostgreSQL 15 (tests/postgres.py), driven with ckanapi and httpx, and the
same project on the SQLite default beside it: both give the same search answers (hits, their
order, counts, facets), and the PostgreSQL hub takes a write with a token and serves OGC API
Features from the version log it keeps there."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import ckanapi
import httpx
import pytest
from ckan_project import Hub, build
from conftest import serving
from sqlalchemy import make_url

# (q, fq, sort) as clients send them: German and Lower Sorbian folding, prefixes, phrases,
# fields, facets, sorting and paging
SEARCHES: list[dict[str, Any]] = [
    {"q": ""}, {"q": "*:*", "sort": "title_string asc"},
    {"q": "Gemeinden"}, {"q": "gemeinde"}, {"q": "Strasse"}, {"q": "Straße"},
    {"q": "Muehlberg"}, {"q": "Mühlberg"}, {"q": "Muhlberg"}, {"q": "Chóśebuz"},
    {"q": "Schule OR Kita"}, {"q": '"Bebauungspläne"'}, {"q": "title:Karte*"},
    {"q": "abfall", "sort": "metadata_modified desc"}, {"q": "Daten", "rows": 7, "start": 3},
    {"fq": "organization:sozialamt"}, {"fq": "res_format:CSV", "sort": "name desc"},
    {"q": "tags:Umwelt"}, {"q": "-organization:sozialamt", "rows": 50},
]
FACETS = ["organization", "groups", "tags", "res_format", "license_id"]


def answer(ckan: ckanapi.RemoteCKAN, search: dict[str, Any]) -> dict[str, Any]:
    found = ckan.action.package_search(**{"rows": 20, **search},
                                       **{"facet.field": FACETS, "facet.limit": -1})
    return {"count": found["count"], "names": [p["name"] for p in found["results"]],
            "facets": found["search_facets"]}


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory, postgres: Any
         ) -> Iterator[tuple[Hub, Hub, str]]:
    """The demo project on SQLite and on PostgreSQL (with the database's URL), served."""
    base = tmp_path_factory.mktemp("db-serve")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("HUB_DATABASE_URL", raising=False)
        local_tokens = build(base / "sqlite")
        url = postgres.database()
        patch.setenv("HUB_DATABASE_URL", url)
        tokens = build(base / "postgresql")
        assert not (base / "postgresql" / "store" / "hub.sqlite").exists()  # all in PostgreSQL
        patch.delenv("HUB_DATABASE_URL")
        with serving(base / "sqlite") as local, \
                serving(base / "postgresql", HUB_DATABASE_URL=url) as remote:
            yield (Hub(base / "sqlite", local, local_tokens),
                   Hub(base / "postgresql", remote, tokens), url)


@pytest.mark.parametrize("user", [None, "sam", "ann"])
def test_search_answers_alike_on_both_backends(hubs: tuple[Hub, Hub, str],
                                               user: str | None) -> None:
    local, remote, _ = hubs
    for search in SEARCHES:
        expected = answer(local.ckan(user), search)
        assert answer(remote.ckan(user), search) == expected, search
    assert answer(local.ckan(user), {"q": "Gemeinden"})["count"] > 0  # the searches find


def test_lists_and_show_alike_on_both_backends(hubs: tuple[Hub, Hub, str]) -> None:
    local, remote, _ = hubs
    for action, params in (("package_list", {}), ("organization_list", {"all_fields": True}),
                           ("tag_list", {}), ("group_list", {}),
                           ("package_autocomplete", {"q": "ge"})):
        assert getattr(remote.ckan().action, action)(**params) == getattr(
            local.ckan().action, action)(**params), action
    for name in ("gemeinden", "zuckerwatte-sozial", "abfallkalender"):
        assert shown(remote, name) == shown(local, name)


def shown(hub: Hub, name: str) -> Any:
    """`package_show` for an admin, apart from the server's address and the times of the
    build (each hub was built at its own time)."""
    text = json.dumps(hub.ckan("ann").action.package_show(id=name)).replace(hub.url, "BASE")
    return re.sub(r'"\d{4}-\d\d-\d\dT[\d:.]+Z?"', '"TIME"', text)


def test_the_postgresql_hub_takes_a_write_with_a_token_and_serves_ogc(
        hubs: tuple[Hub, Hub, str], postgres: Any) -> None:
    _, remote, url = hubs
    sam = remote.ckan("sam")

    def tagged(q: str) -> int:
        found = remote.ckan().action.package_search(q=q, **{"facet.field": ["tags"]})
        return {t["name"]: t["count"] for t in found["search_facets"]["tags"]["items"]
                }.get("Spielplatz", 0)

    before = {q: tagged(q) for q in ("Spielplatze", "chosebuz", "spielpl")}
    created = sam.action.package_create(
        name="spielplaetze-pg", title="Spielplätze auf Chóśebuz-Art", owner_org="sozialamt",
        notes="Öffentliche Spielplätze.", license_id="dl-by-de/2.0",
        tags=[{"name": "Spielplatz"}])
    assert created["name"] == "spielplaetze-pg"
    for q in ("Spielplatze", "chosebuz", "spielpl"):  # folded, prefix: at once, anonymous
        found = remote.ckan().action.package_search(q=q, **{"facet.field": ["tags"]})
        assert "spielplaetze-pg" in [p["name"] for p in found["results"]], q
        assert tagged(q) == before[q] + 1
    with pytest.raises(ckanapi.NotAuthorized):
        remote.ckan().action.package_patch(id="spielplaetze-pg", title="ohne Token")
    with postgres.connect(make_url(url).database) as conn:  # the record is PostgreSQL's
        assert conn.execute("SELECT count(*) FROM catalog_records WHERE name = %s",
                            ("spielplaetze-pg",)).fetchone() == (1,)
    with httpx.Client(base_url=remote.url, timeout=60) as http:
        collections = {c["id"] for c in http.get("/ogc/collections").json()["collections"]}
        assert "gemeinden" in collections
        items = http.get("/ogc/collections/gemeinden/items", params={"limit": 5}).json()
        assert items["numberMatched"] == 33 and len(items["features"]) == 5
        first = items["features"][0]
        assert http.get(f"/ogc/collections/gemeinden/items/{first['id']}").json()[
            "properties"] == first["properties"]
