"""The whole hub on PostgreSQL: the demo project built and served with HUB_DATABASE_URL
pointing at a real PostgreSQL 15 (deploy/postgres.py), driven with ckanapi and httpx, and the
same project on the SQLite default beside it: both give the same search answers (hits, their
order, counts, facets), and the PostgreSQL hub takes a write with a token and serves OGC API
Features from the version log it keeps there."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ckanapi
import httpx
import pytest
import sqlalchemy as sa
from ckan_project import Hub, build, copy_project, run_hub
from conftest import serving, serving_side_by_side
from sqlalchemy import make_url

from hub.backup import state_tables
from hub.db import Database

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

# a public dataset passes the publication checklist (a metadata-only one)
READY = {"maintainer": "Sozialamt", "maintainer_email": "daten@example.org", "extras": [
    {"key": "frequency", "value": "ANNUAL"}, {"key": "data_held", "value": "false"},
    {"key": "access_note", "value": "Beim Sozialamt."}]}


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
        with serving_side_by_side((base / "sqlite", {}),
                                  (base / "postgresql", {"HUB_DATABASE_URL": url})) \
                as (local, remote):
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
        tags=[{"name": "Spielplatz"}], **READY)
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


def state(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every table that holds state, its rows sorted, its columns by name."""
    with database.connection() as db:
        tables = {}
        for name in state_tables(db):
            columns = sorted(c["name"] for c in sa.inspect(db).get_columns(name))
            found = sa.table(name, *(sa.column(c) for c in columns))
            tables[name] = sorted(map(tuple, db.execute(sa.select(*found.c))), key=repr)
    database.close()
    return tables


def test_a_backup_restores_into_the_other_backend(hubs: tuple[Hub, Hub, str], postgres: Any,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14 (e): from PostgreSQL into a single-machine SQLite store and the other way
    round, with identical datasets, versions, records and accounts; the restored hub
    serves the same answers."""
    local, remote, url = hubs
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    run_hub(remote.root, "backup", str(tmp_path / "from-postgresql"))
    monkeypatch.delenv("HUB_DATABASE_URL")
    into_sqlite = copy_project(tmp_path / "sqlite")
    run_hub(into_sqlite, "restore", str(tmp_path / "from-postgresql"))
    restored = state(Database.for_store(into_sqlite / "store"))
    assert restored == state(Database(url))
    assert {"datasets", "versions", "catalog_records", "users", "tokens"} <= {
        name for name, rows in restored.items() if rows}
    assert (into_sqlite / "store" / "data" / "gemeinden" / "v1" / "data.parquet").is_file()

    run_hub(local.root, "backup", str(tmp_path / "from-sqlite"))
    target = postgres.database()
    monkeypatch.setenv("HUB_DATABASE_URL", target)
    into_postgresql = copy_project(tmp_path / "postgresql")
    run_hub(into_postgresql, "restore", str(tmp_path / "from-sqlite"))
    assert state(Database(target)) == state(Database.for_store(local.root / "store"))
    with serving(into_postgresql) as served:
        again = Hub(into_postgresql, served, local.tokens)
        for search in SEARCHES[:6]:
            assert answer(again.ckan("sam"), search) == answer(local.ckan("sam"), search)
        created = again.ckan("sam").action.package_create(  # new keys follow the restored
            name="nach-der-wiederherstellung", title="Nach der Wiederherstellung",
            owner_org="sozialamt", notes="Neu.", license_id="dl-by-de/2.0", **READY)
        assert again.ckan().action.package_show(id=created["id"])["name"] == created["name"]
