"""`hub.open(url)` against a real `hub serve`: the same answers as the local store seen by the
same user, read-only, visibility exactly the token's, the same errors (tests/client_site.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from client_site import ClientSite, build
from conftest import hub_server

import hub
from hub.client import InvalidFilter, InvalidQuery, NotAHub, NotAllowed, NotFound, VersionRemoved


@dataclass
class Served:
    site: ClientSite
    url: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    site = build(tmp_path_factory.mktemp("client-remote") / "project")
    with hub_server(site.root) as server:
        yield Served(site, server.url)


@pytest.mark.parametrize("user", [None, "anna", "bernd"])
def test_the_token_sees_what_the_user_sees_locally(served: Served, user: str | None) -> None:
    remote = hub.open(served.url, token=served.site.tokens[user] if user else None)
    local = hub.open(served.site.root, as_user=user) if user else None
    expected = local.names() if local else ["orte"]  # anonymous: the public data only
    assert remote.names() == expected
    if local:
        assert remote.datasets() == local.datasets()


def test_whole_reads_equal_local_reads(served: Served) -> None:
    remote, local = hub.open(served.url), hub.open(served.site.root, as_user="anna")
    for version in (None, 2):
        got, want = remote.read("orte", version), local.read("orte", version)
        assert list(got.columns) == list(want.columns)
        assert got.drop(columns="geometry").equals(want.drop(columns="geometry"))
        assert got.geometry.geom_equals(want.geometry).all()
        assert got.crs == want.crs
    assert remote.arrow("orte").schema.metadata[b"geo"] == local.arrow("orte").schema.metadata[
        b"geo"]


def test_bbox_and_filter_through_the_ogc_api_equal_local(served: Served) -> None:
    remote, local = hub.open(served.url), hub.open(served.site.root)
    x0 = local.read("orte").geometry.x.min()
    queries = [{"bbox": (x0 - 0.001, 51.0, x0 + 0.095, 52.0)},
               {"filter": "art = 'Hospiz' AND plaetze >= 20"},
               {"bbox": (x0 - 0.001, 51.0, x0 + 0.2, 52.0), "filter": "plaetze < 30"}]
    for query in queries:
        got = remote.read("orte", **query).sort_values("id").reset_index(drop=True)
        want = local.read("orte", **query).sort_values("id").reset_index(drop=True)
        assert len(want) > 0, query
        assert got.drop(columns="geometry").equals(want.drop(columns="geometry")), query
        assert got.geometry.geom_equals(want.geometry).all(), query


def test_sql_history_and_records_remotely(served: Served) -> None:
    remote = hub.open(served.url, token=served.site.tokens["bernd"])
    local = hub.open(served.site.root, as_user="bernd")
    query = ('SELECT count(*) FROM orte JOIN "orte@2" USING (id) JOIN geheim USING (id) '
             'WHERE orte.name <> "orte@2".name')
    assert remote.sql(query).fetchone() == local.sql(query).fetchone() == (40,)
    assert [v.version for v in remote.history("orte")] == [3, 2]  # kept files only
    assert remote.record("geheim")["name"] == local.record("geheim")["name"] == "geheim"
    names = {r["name"] for r in remote.search("Test", include_private=True)["results"]}
    assert names == {r["name"] for r in local.search("Test", include_private=True)["results"]}


def test_errors_remotely(served: Served) -> None:
    anonymous = hub.open(served.url)
    for name in ("intern", "geheim", "gibt-es-nicht"):  # hidden answers as unknown
        with pytest.raises(NotFound, match=f"no dataset named '{name}'"):
            anonymous.read(name)
        with pytest.raises(NotFound, match=f"no dataset named '{name}'"):
            anonymous.read(name, filter="id = 1")
        with pytest.raises(NotFound):
            anonymous.record(name)
    with pytest.raises(VersionRemoved, match="version 1 of 'orte' was removed"):
        anonymous.read("orte", 1)
    with pytest.raises(NotFound, match="no version 9"):
        anonymous.read("orte", 9)
    with pytest.raises(InvalidFilter, match="unknown property 'gibtsnicht'"):
        anonymous.read("orte", filter="gibtsnicht = 1")
    with pytest.raises(InvalidFilter, match="four numbers"):
        anonymous.read("orte", bbox=(1, 2))
    with pytest.raises(InvalidQuery, match="current version only"):
        anonymous.read("orte", 2, filter="id = 1")
    with pytest.raises(InvalidQuery, match="SQL"):
        anonymous.sql("SELEKT 1")
    with pytest.raises(NotFound):
        anonymous.sql('SELECT * FROM "geheim@1"')


def test_not_a_hub_bad_token_and_read_only(served: Served) -> None:
    with pytest.raises(NotAHub, match="not a hub"):
        hub.open(served.url + "/ogc")
    with pytest.raises(NotAHub, match="cannot be reached"):
        hub.open("http://127.0.0.1:9")
    with pytest.raises(NotAllowed, match="refused"):
        hub.open(served.url, token="hub_not-a-token")
    with pytest.raises(NotAllowed, match="as_user"):
        hub.open(served.url, as_user="anna")
    edith = hub.open(served.url, token=served.site.tokens["edith"])
    with pytest.raises(NotAllowed, match="read-only"):
        edith.register({"name": "x"})
    with pytest.raises(NotAllowed, match="read-only"):
        edith.update("orte", {"title": "x"})
    with pytest.raises(NotAllowed, match="read-only"):
        edith.run("orte")
