"""`hub.open` on a store whose files live in S3 (HUB_STORAGE_URL=s3://…, moto's server): the
same answers as the same project built on local storage — listing, reads (GeoDataFrame, Arrow,
DuckDB relation, SQL, bbox and filter), history, records and visibility
(projects: tests/client_site.py; storage: hub/storage/s3.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import shapely
from client_site import ClientSite, build
from geopandas.testing import assert_geodataframe_equal

import hub
from hub.client import NotFound, VersionRemoved

PREFIX = "hub"


@dataclass
class Twins:
    local: ClientSite
    s3: ClientSite
    bucket: str
    server: Any


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory, s3_server: Any) -> Iterator[Twins]:
    """The same project twice: files in the store folder, and files in a bucket."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("HUB_STORAGE_URL", raising=False)
        local = build(tmp_path_factory.mktemp("client-local") / "project")
        bucket = s3_server.bucket()
        for key, value in {**s3_server.environment(),
                           "HUB_STORAGE_URL": f"s3://{bucket}/{PREFIX}"}.items():
            env.setenv(key, value)
        yield Twins(local, build(tmp_path_factory.mktemp("client-s3") / "project"), bucket,
                    s3_server)


@pytest.fixture(scope="module")
def both(twins: Twins) -> Iterator[tuple[hub.client.Hub, hub.client.Hub]]:
    with hub.open(twins.local.root) as local, hub.open(twins.s3.root) as s3:
        yield local, s3


def test_the_files_are_in_the_bucket_only(twins: Twins) -> None:
    keys = twins.server.keys(twins.bucket, f"{PREFIX}/data/")
    assert f"{PREFIX}/data/orte/v3/data.parquet" in keys
    assert f"{PREFIX}/data/orte/v1/data.parquet" not in keys  # removed by retention
    assert not list((twins.s3.root / "store").rglob("*.parquet"))  # no local copy is read


def _same(info: Any) -> Any:
    """Listing and history facts without the times (the twins were built seconds apart)."""
    return dataclasses.replace(info, modified="") if hasattr(info, "modified") else \
        dataclasses.replace(info, committed="")


TIMES = {"metadata_created", "metadata_modified", "created", "last_modified"}


def _untimed(value: Any) -> Any:
    """A record without the times it was made at (the twins were built seconds apart)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMES}
    return [_untimed(v) for v in value] if isinstance(value, list) else value


def test_listing_and_history(both: tuple[hub.client.Hub, hub.client.Hub]) -> None:
    local, s3 = both
    assert s3.names() == local.names() == ["geheim", "intern", "orte"]
    assert [_same(d) for d in s3.datasets()] == [_same(d) for d in local.datasets()]
    assert [_same(v) for v in s3.history("orte")] == [_same(v) for v in local.history("orte")]
    assert [(v.version, v.removed) for v in s3.history("orte")] == [(3, False), (2, False),
                                                                    (1, True)]


@pytest.mark.parametrize("version", [None, 2])
def test_reads_as_geodataframe_and_arrow(both: tuple[hub.client.Hub, hub.client.Hub],
                                         version: int | None) -> None:
    local, s3 = both
    ours = s3.read("orte", version)
    assert len(ours) == 40
    assert_geodataframe_equal(ours, local.read("orte", version), check_less_precise=False)
    assert s3.arrow("orte", version).equals(local.arrow("orte", version), check_metadata=True)
    box, cql = (13.0, 51.0, 14.5, 52.5), "art = 'Hospiz' AND plaetze >= 20"
    assert_geodataframe_equal(s3.read("orte", version, bbox=box, filter=cql),
                              local.read("orte", version, bbox=box, filter=cql))


def test_removed_and_unknown_versions(both: tuple[hub.client.Hub, hub.client.Hub]) -> None:
    _, s3 = both
    with pytest.raises(VersionRemoved, match="version 1 of 'orte' was removed"):
        s3.read("orte", 1)
    with pytest.raises(NotFound, match="no version 7"):
        s3.arrow("orte", 7)


def test_duckdb_relation_and_sql(both: tuple[hub.client.Hub, hub.client.Hub]) -> None:
    local, s3 = both
    query = ('SELECT o.id, o.name, p.name AS vorher, ST_X(o.geometry) AS x FROM orte o '
             'JOIN "orte@2" p USING (id) ORDER BY o.id')
    assert s3.sql(query).fetchall() == local.sql(query).fetchall()
    relation = s3.relation("orte")
    assert "bbox" not in relation.columns
    assert relation.aggregate("count(*), max(ST_Y(geometry))").fetchall() == \
        local.relation("orte").aggregate("count(*), max(ST_Y(geometry))").fetchall()
    point = shapely.from_wkb(s3.relation("orte", 2).project("ST_AsWKB(geometry)").fetchone()[0])
    assert isinstance(point, shapely.Point)


def test_records_and_who_sees_what(twins: Twins,
                                   both: tuple[hub.client.Hub, hub.client.Hub]) -> None:
    local, s3 = both
    assert _untimed(s3.record("orte")) == _untimed(local.record("orte"))
    assert [r["name"] for r in s3.search("Test", rows=50)["results"]] == \
        [r["name"] for r in local.search("Test", rows=50)["results"]]
    anna = hub.open(twins.s3.root, token=twins.s3.tokens["anna"])
    assert anna.names() == ["intern", "orte"]
    with pytest.raises(NotFound, match="no dataset named 'geheim'"):
        anna.read("geheim")
    assert_geodataframe_equal(anna.read("intern"), local.read("intern"))
