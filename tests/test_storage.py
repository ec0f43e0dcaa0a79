"""The version store on both storages of hub.storage: the store folder (the default) and
S3-compatible object storage (moto's standalone server over HTTP, deploy/s3.py). Every test
runs on each and expects the same answers; the server test is the end-to-end run of
`hub serve` with HUB_STORAGE_URL=s3://…"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ckanapi
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_store_faults
import yaml
from conftest import CENTRE, DISTRICT_BBOX, Project, hub_server
from downloads_site import POINT_FIELDS
from downloads_site import write_points as write_csv_points
from test_store_faults import cli, run, write_points

from hub.config import load_settings
from hub.errors import PipelineError, StoreError
from hub.store.faults import wait_stopped
from hub.store.integrity import CorruptVersion
from hub.store.query import connect
from hub.store.versions import Draft, Store, Version, now
from soak.faults import kill

META = {"title": "Messstellen", "organization": "umweltamt", "access": "public",
        "update_frequency": "monthly", "pipeline": "pipelines/messstellen.yaml",
        "attribution": "© Landkreis"}
PREFIX = "hub"  # HUB_STORAGE_URL=s3://<bucket>/hub
project = test_store_faults.project  # the fault tests' points project, as a fixture here


@dataclass
class Place:
    """Where a test's store keeps its files, and how to look there without the hub."""

    kind: str
    env: dict[str, str]
    s3: Any = None  # deploy/s3.py's S3 (kind "s3")
    bucket: str = ""

    def stored(self, store_dir: Path, folder: str = "data") -> list[str]:
        """The keys of the files under `folder` as the storage itself lists them."""
        if self.s3 is None:
            return sorted(p.relative_to(store_dir).as_posix()
                          for p in (store_dir / folder).rglob("*") if p.is_file())
        return [k.removeprefix(f"{PREFIX}/") for k in self.s3.keys(
            self.bucket, f"{PREFIX}/{folder}/") if not k.endswith("/")]  # no folder markers

    def overwrite(self, store_dir: Path, key: str, body: bytes) -> None:
        if self.s3 is None:
            (store_dir / key).write_bytes(body)
        else:
            self.s3.client().put_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}", Body=body)


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Place:
    if request.param == "local":
        monkeypatch.delenv("HUB_STORAGE_URL", raising=False)
        return Place("local", {})
    s3 = request.getfixturevalue("s3_server")
    bucket = s3.bucket()
    env = {**s3.environment(), "HUB_STORAGE_URL": f"s3://{bucket}/{PREFIX}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Place("s3", env, s3, bucket)


def commit(store: Store, name: str, rows: int) -> Version:
    """A run of `name` that stages a small Parquet file (and a quarantine) and commits it."""
    with store.writing(name) as staging:
        pq.write_table(pa.table({"n": list(range(rows))}), staging / "data.parquet")
        pq.write_table(pa.table({"_errors": ["zu groß"]}), staging / "quarantine.parquet")
        draft = Draft(rows=rows, quarantined=1, schema={"fields": [{"name": "n"}]},
                      bbox=None, geometry_types=[], source_crs=[],
                      source_fingerprint=f"sha256:{rows}", source_state={},
                      pipeline_hash="p1", started=now(), run_by="pytest", report={})
        return store.commit(staging, name, META, draft)


def files_of(name: str, *numbers: int) -> list[str]:
    return sorted(f"data/{name}/v{n}/{f}" for n in numbers
                  for f in ("data.parquet", "quarantine.parquet"))


def test_commit_read_history_and_rollback(place: Place, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for rows in (3, 5, 7):
        commit(store, "mess", rows)
    assert [v.version for v in store.versions("mess")] == [3, 2, 1]
    assert [pq.read_table(v.source()).num_rows for v in store.versions("mess")] == [7, 5, 3]
    assert pq.read_table(store.current("mess").source("quarantine.parquet")).column(
        "_errors").to_pylist() == ["zu groß"]
    assert place.stored(store.root) == files_of("mess", 1, 2, 3)
    if place.kind == "s3":  # the store folder keeps no version file of its own
        assert not list((store.root / "data").rglob("*.parquet"))
    store.rollback("mess", 1, who="pytest")
    assert store.current("mess").version == 1
    assert pq.read_table(store.current("mess").source())["n"].to_pylist() == [0, 1, 2]
    assert [e["kind"] for e in store.events("mess")] == ["rollback", "commit", "commit",
                                                         "commit"]


def test_retention_deletes_the_files_of_old_versions(place: Place, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for rows in (3, 5, 7):
        commit(store, "mess", rows)
    assert store.apply_retention("mess", 1) == [2, 1]
    assert place.stored(store.root) == files_of("mess", 3)
    assert [(v.version, v.purged, v.exists()) for v in store.versions("mess")] == [
        (3, False, True), (2, True, False), (1, True, False)]
    with pytest.raises(StoreError, match="removed by the retention policy"):
        store.rollback("mess", 1, who="pytest")


def test_files_of_a_run_killed_before_its_commit_are_removed(place: Place,
                                                             ingest_project: Project) -> None:
    store = Store(ingest_project.store_dir)
    commit(store, "mess", 3)
    # what a run killed between publishing its files and its commit leaves (fault point
    # "version-renamed"): version files that no row of the version log refers to
    dead = ingest_project.root / "dead"
    dead.mkdir()
    pq.write_table(pa.table({"n": list(range(99))}), dead / "data.parquet")
    store.files.publish(dead, "data/mess/v2")
    assert place.stored(store.root) == [*files_of("mess", 1), "data/mess/v2/data.parquet"]
    assert store.versions("mess")[0].version == 1  # readers never see it
    checked = ingest_project.cli("check")
    assert checked.exit_code == 0, checked
    assert "removed data/mess/v2" in checked.text and "died before its commit" in checked.text
    assert place.stored(store.root) == files_of("mess", 1)
    # and the next writer cleans up by itself too: its version 2 is its own file
    dead.mkdir()
    pq.write_table(pa.table({"n": list(range(99))}), dead / "data.parquet")
    store.files.publish(dead, "data/mess/v2")
    second = commit(store, "mess", 4)
    assert second.version == 2 and pq.read_table(second.source()).num_rows == 4
    assert place.stored(store.root) == files_of("mess", 1, 2)


def test_a_damaged_file_is_found_and_not_served(place: Place, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    version = commit(store, "mess", 3)
    store.ensure_sound(version)
    assert store.check(version, "pytest") is None
    place.overwrite(store.root, f"{version.key}/data.parquet", b"PAR1 kaputt")
    reason = store.check(version, "pytest")
    assert reason is not None and reason.startswith("checksum mismatch")
    with pytest.raises(CorruptVersion):
        Store(store.root).ensure_sound(store.current("mess"))


def test_duckdb_reads_the_current_versions(place: Place, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    commit(store, "mess", 3)
    commit(store, "mess", 5)
    con = connect(store, spatial=False)
    assert con.sql("SELECT count(*), sum(n) FROM mess").fetchone() == (5, 10)


def test_a_derived_pipeline_reads_its_inputs(place: Place, ingest_project: Project) -> None:
    p = ingest_project
    point = {"name": "geometry", "type": "geojson", "constraints": {"required": True}}
    p.schema("orte", [{"name": "ags", "type": "string"}, {"name": "name", "type": "string"},
                      point])
    p.schema("zahl", [{"name": "ags", "type": "string"}, {"name": "orte", "type": "integer"},
                      point])
    (p.data / "orte.csv").write_text(
        "ags,name,lon,lat\n" + "".join(f"1206200{i % 2},Ort {i},{CENTRE[0] + i / 100},"
                                       f"{CENTRE[1]}\n" for i in range(5)), encoding="utf-8")
    p.pipeline("orte", "orte", {"path": "data/orte.csv", "crs": "EPSG:4326",
                                "geometry": {"lon": "lon", "lat": "lat"}}, access="public")
    p.pipeline("zahl", "zahl", {"sql": "SELECT ags, count(*) AS orte, "
                                       "ST_Centroid(ST_Collect(list(geometry))) AS geometry "
                                       "FROM orte GROUP BY ags"}, access="public")
    ran = p.cli("ingest", "--all")
    assert ran.exit_code == 0, ran
    derived = Store(p.store_dir).current("zahl")
    rows = pq.read_table(derived.source(), columns=["ags", "orte"]).to_pylist()
    assert sorted((r["ags"], r["orte"]) for r in rows) == [("12062000", 3), ("12062001", 2)]
    assert "data/zahl/v1/data.parquet" in place.stored(p.store_dir)


def test_hub_serve_reads_versions_from_its_storage(place: Place,
                                                   ingest_project: Project) -> None:
    """OGC items, streamed downloads (gzip), exports with ranges, on each storage."""
    p = ingest_project
    (p.root / "catalog" / "district.yaml").write_text(yaml.safe_dump({
        "name": "Testkreis", "ags": "12062", "bbox": DISTRICT_BBOX, "extent_buffer_km": 5,
        "default_license": "dl-by-de/2.0"}), encoding="utf-8")
    p.schema("punkte", POINT_FIELDS, primaryKey=["id"])
    rng = np.random.default_rng(20261202)
    write_csv_points(p.data / "punkte.csv", rng, 50, "P")
    p.pipeline("punkte", "punkte", {"path": "data/punkte.csv", "crs": "EPSG:4326",
                                    "geometry": {"lon": "lon", "lat": "lat"}},
               access="public", organization="sozialamt")
    assert p.ingest("punkte").status == "committed"
    write_csv_points(p.data / "punkte.csv", rng, 20, "Q")
    assert p.ingest("punkte").status == "committed"
    assert p.cli("catalog", "load").exit_code == 0
    assert p.cli("user", "add", "chefin", "--org", "sozialamt", "--role", "admin").exit_code == 0
    token = p.cli("token", "create", "chefin").output.strip().splitlines()[-1]
    with hub_server(p.root, p.store_dir, **place.env) as server, \
            httpx.Client(base_url=server.url, timeout=120) as http:
        def first_and_later(path: str, params: dict[str, str]) -> None:
            """The first answer (from the version's file, by ranged reads of its row groups on
            S3, while the layer is read) is the one given later."""
            answers = [http.get(path, params=params) for _ in ("cold", "warm")]
            bodies = [a.json() for a in answers]
            assert [a.status_code for a in answers] == [200, 200], answers[0].text
            for body in bodies:
                body.pop("timeStamp", None)
            assert bodies[0] == bodies[1]
        first_and_later("/ogc/collections/punkte/items",
                        {"bbox": ",".join(map(str, DISTRICT_BBOX)), "limit": "7", "offset": "3"})
        first_and_later("/ogc/collections/punkte/items/Q0005", {})
        items = http.get("/ogc/collections/punkte/items", params={"limit": 100})
        assert items.status_code == 200, items.text
        assert sorted(f["id"] for f in items.json()["features"]) == [
            f"Q{i:04d}" for i in range(1, 21)]
        for number, rows in ((1, 50), (2, 20)):
            zipped = http.get(f"/downloads/punkte/v{number}.geojson",
                              headers={"Accept-Encoding": "gzip"})
            assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip"
            assert len(zipped.json()["features"]) == rows  # httpx unzipped it
            text = http.get(f"/downloads/punkte/v{number}.csv",
                            headers={"Accept-Encoding": "gzip"})
            assert text.headers["content-encoding"] == "gzip"
            assert [r[0] for r in csv.reader(io.StringIO(text.text))][1:] == [
                f"{'P' if number == 1 else 'Q'}{i:04d}" for i in range(1, rows + 1)]
        whole = http.get("/downloads/punkte/v2.parquet")
        assert whole.status_code == 200
        head = http.get("/downloads/punkte/v2.parquet", headers={"Range": "bytes=0-1023"})
        tail = http.get("/downloads/punkte/v2.parquet", headers={"Range": "bytes=-200"})
        assert head.status_code == tail.status_code == 206
        assert head.content == whole.content[:1024] and tail.content == whole.content[-200:]
        assert pq.read_table(pa.BufferReader(whole.content)).num_rows == 20
        gpkg = http.get("/downloads/punkte/v1.gpkg")
        assert gpkg.status_code == 200 and gpkg.content.startswith(b"SQLite format 3")
        viewer = http.get("/karten/daten/punkte")  # its list reads row groups of the file
        assert viewer.status_code == 200 and "Q0001" in viewer.text, viewer.text[-500:]
        uploads_through_ckan(place, p, server.url, token)
    exports = [k for k in place.stored(p.store_dir) if "/exports/" in k]
    assert sorted(Path(k).suffix for k in exports) == [  # GeoJSON and CSV gzipped per version
        ".gpkg", *[".gz"] * 4, ".parquet", *[".sha256"] * 6]
    assert {k.split("/")[2] for k in exports} == {"v1", "v2"}
    if place.kind == "s3":  # what is in the bucket is what was served
        [key] = [k for k in exports if k.endswith(".parquet")]
        body = place.s3.client().get_object(Bucket=place.bucket,
                                            Key=f"{PREFIX}/{key}")["Body"].read()
        assert body == whole.content


def uploads_through_ckan(place: Place, p: Project, url: str, token: str) -> None:
    """A file uploaded as a distribution is kept in the storage, served (with ranges) by a
    replica that did not receive it, and replaced by a new upload."""
    ckan = ckanapi.RemoteCKAN(url, apikey=token)
    ckan.action.package_create(  # public: it passes the publication checklist (metadata only)
        name="mit-datei", title="Mit Datei", notes="Eine Datei.", owner_org="sozialamt",
        license_id="dl-by-de/2.0", maintainer="Team Daten",
        maintainer_email="daten@lkee.example.org",
        extras=[{"key": "frequency", "value": "ANNUAL"}, {"key": "data_held", "value": "false"},
                {"key": "access_note", "value": "Die Daten liegen im Fachverfahren."}])
    first = ckan.action.resource_create(package_id="mit-datei", name="Tabelle",
                                        upload=("tabelle.csv", io.BytesIO(b"a;b\n1;2\n")))
    folder = f"uploads/{first['package_id']}/{first['id']}"
    assert [k for k in place.stored(p.store_dir, "uploads") if k.startswith(folder)] == [
        f"{folder}/tabelle.csv"]
    if place.kind == "s3":  # the local copy is gone (another replica received the file)
        (p.store_dir / folder / "tabelle.csv").unlink()
    got = httpx.get(first["url"], headers={"Range": "bytes=2-4"}, timeout=30)
    assert got.status_code == 206 and got.content == b"b\n1"
    ckan.action.resource_patch(id=first["id"], upload=("neu.csv", io.BytesIO(b"neu;1\n")))
    assert [k for k in place.stored(p.store_dir, "uploads") if k.startswith(folder)] == [
        f"{folder}/neu.csv"]
    assert httpx.get(first["url"], timeout=30).status_code == 404
    assert httpx.get(first["url"].replace("tabelle.csv", "neu.csv"),
                     timeout=30).content == b"neu;1\n"


@pytest.mark.parametrize("url", ["ftp://bucket/hub", "/srv/hub", "s3://"])
def test_a_storage_url_that_is_not_s3_is_refused_by_name(url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_STORAGE_URL", url)
    with pytest.raises(StoreError, match=r"HUB_STORAGE_URL=.*s3://<bucket>/<prefix>"):
        Store(tmp_path / "store")
    if not url.startswith("s3://"):
        with pytest.raises(PipelineError, match="HUB_STORAGE_URL"):
            load_settings(tmp_path, tmp_path / "store")


def test_a_missing_bucket_is_named_and_nothing_is_committed(s3_server: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    for key, value in {**s3_server.environment(),
                       "HUB_STORAGE_URL": "s3://kein-eimer/hub"}.items():
        monkeypatch.setenv(key, value)
    store = Store(tmp_path / "store")
    with pytest.raises(StoreError, match="s3://kein-eimer/hub: could not write"):
        commit(store, "mess", 3)
    assert store.current("mess") is None and not list((tmp_path / "store" / "staging").iterdir())


@pytest.mark.parametrize("place", ["s3"], indirect=True)  # the store folder: test_store_faults
def test_a_writer_killed_between_its_put_and_its_commit_on_s3(place: Place,
                                                              project: Path) -> None:
    data = project / "data" / "points.csv"
    write_points(data, 1000)
    assert run(project).version == 1
    write_points(data, 50_000, seed=7)
    proc = cli(project, "ingest", "points", HUB_FAULT_POINT="version-renamed")
    wait_stopped(proc.pid)  # its files are in the bucket, the version log does not know them
    store = Store(project / "store")
    assert "data/points/v2/data.parquet" in place.stored(store.root)
    assert store.current("points").version == 1
    kill(proc)
    current = store.current("points")
    assert current.version == 1 and current.rows == 1000
    store.ensure_sound(current)
    write_points(data, 2000, seed=8)
    after = run(project)  # no manual cleanup needed
    assert after.status == "committed" and after.version == 2, after.error
    assert pq.read_table(store.current("points").source()).num_rows == 2000
    assert sorted({k.split("/")[2] for k in place.stored(store.root)}) == ["v1", "v2"]
