"""`hub backup` and `hub restore`: a consistent snapshot taken while a real `hub serve` answers
and ingests commit, restored on a fresh checkout with every dataset, version, file, record, user
and token equal; damaged or incomplete backups refused with nothing written.

The source hub is the CKAN demo project (tests/ckan_project.py: data, 87 records, four users
with tokens) plus a quarantine file, several versions of one dataset (the oldest purged by
retention) and a file uploaded through the CKAN API.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ckanapi
import httpx
import pytest
from ckan_project import Hub, build, run_hub
from conftest import serving, serving_side_by_side
from typer.testing import CliRunner

from hub.backup import MANIFEST, BackupError, backup, read_manifest, state_tables, verify
from hub.catalog.index import DERIVED_TABLES
from hub.cli import app
from hub.db import Database
from hub.store.faults import wait_stopped
from hub.store.versions import Store

UPLOAD = bytes(range(256)) * 8 + "Straße;Müller\r\n".encode("cp1252")
UPLOADED_TO = "stadtplan-finsterwalde"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    root = tmp_path_factory.mktemp("backup") / "source"
    tokens = build(root)
    add_quarantining_pipeline(root)
    run_hub(root, "ingest", "spielplaetze")
    for _ in range(2):
        run_hub(root, "ingest", "gemeinden", "--force")
    Store(root / "store").apply_retention("gemeinden", keep=2)  # v1 purged, v2 and v3 kept
    with serving(root) as url:
        ckanapi.RemoteCKAN(url, apikey=tokens["ann"]).action.resource_create(
            package_id=UPLOADED_TO, name="Datei", upload=("tabelle.csv", io.BytesIO(UPLOAD)))
    return Hub(root, "", tokens)


def add_quarantining_pipeline(root: Path) -> None:
    """A dataset with a row in quarantine (so the version has a quarantine file)."""
    (root / "schemas" / "spielplaetze.json").write_text(json.dumps({"fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "name", "type": "string"},
        {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]}))
    (root / "pipelines" / "data" / "spielplaetze.csv").write_text(
        "id,name,lon,lat\n1,Am Markt,13.47,51.62\nzwei,Schulhof,13.5,51.6\n3,Waldweg,13.3,51.5\n")
    (root / "pipelines" / "spielplaetze.yaml").write_text(json.dumps({
        "dataset": "spielplaetze", "title": "Spielplätze", "organization": "sozialamt",
        "access": "public", "schema": "spielplaetze", "on_error": "quarantine",
        "max_quarantined_share": 0.5,
        "sources": [{"path": "data/spielplaetze.csv", "crs": "OGC:CRS84",
                     "geometry": {"lon": "lon", "lat": "lat"}}]}))


def checkout(source: Path, root: Path) -> Path:
    """A fresh checkout of the source's project: its files, no store."""
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("store"))
    return root


@pytest.fixture(scope="module")
def taken(source: Hub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of the source hub, taken through the CLI."""
    folder = tmp_path_factory.mktemp("taken") / "backup"
    out = run_hub(source.root, "backup", str(folder))
    assert "Backed up" in out, out
    return folder


def hub(root: Path, *args: str) -> Any:
    """`hub ARGS --root ROOT` in this process, unchecked (for the failures)."""
    return CliRunner().invoke(app, [*args, "--root", str(root)], env={"COLUMNS": "400"})


# -- what is compared --------------------------------------------------------------------------

def tables(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the store's database that holds state, and the derived facets, sorted."""
    return tables_of(Database.for_store(store))


def tables_of(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """`tables` of an opened database (either backend), which it closes."""
    try:
        with database.connection() as db:
            names = state_tables(db)
            names += ["catalog_facets"] if "catalog_records" in names else []
            return {name: sorted(map(tuple, db.exec_driver_sql(f'SELECT * FROM "{name}"')),
                                 key=repr) for name in names}
    finally:
        database.close()


def files(store: Path) -> dict[str, bytes]:
    """Version files and uploads (export caches are derived and rebuilt on demand)."""
    return {p.relative_to(store).as_posix(): p.read_bytes()
            for sub in ("data", "uploads") for p in sorted((store / sub).rglob("*"))
            if p.is_file() and "exports" not in p.relative_to(store).parts}


def versions(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    s = Store(store)
    return {d.name: [(v.version, v.rows, v.quarantined, v.checksum, v.purged, v.broken)
                     for v in s.versions(d.name)] for d in s.datasets()}


def answers(url: str, token: str) -> dict[str, Any]:
    """What the CKAN Action API and OGC API answer (anonymous and as an admin by token)."""
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        for who, headers in (("anon", {}), ("admin", {"Authorization": token})):
            names = http.get("/api/3/action/package_list", headers=headers).json()["result"]
            out[f"{who} list"] = names
            for name in names:
                out[f"{who} {name}"] = http.get("/api/3/action/package_show",
                                                params={"id": name}, headers=headers).json()
            for q in ("Gemeinde", "Zuckerwatte", ""):  # full text (rebuilt), everything
                out[f"{who} search {q}"] = http.get(
                    "/api/3/action/package_search", headers=headers,
                    params={"q": q, "rows": 1000, "include_private": "true"}).json()["result"]
        for collection in ("gemeinden", "spielplaetze"):
            items = http.get(f"/ogc/collections/{collection}/items", params={"limit": 1000},
                             headers={"Authorization": token}).json()
            out[f"ogc {collection}"] = (items["numberMatched"], items["features"])
    return json.loads(json.dumps(out).replace(url, "BASE"))


# -- the round trip ----------------------------------------------------------------------------

def test_restore_on_a_fresh_checkout_gives_the_same_hub(source: Hub, taken: Path,
                                                        tmp_path: Path) -> None:
    fresh = checkout(source.root, tmp_path / "fresh")
    out = run_hub(fresh, "restore", str(taken))
    assert "Restored" in out
    src, dst = source.root / "store", fresh / "store"
    before = tables(src)
    assert {"versions", "datasets", "catalog_records", "users", "tokens"} <= before.keys()
    assert before == tables(dst)  # every row of every table, facets rebuilt alike
    assert before["tokens"] and before["catalog_facets"]
    assert versions(src) == versions(dst)
    assert [v[4] for v in versions(dst)["gemeinden"]] == [False, False, True]  # v1 purged
    assert files(src) == files(dst)  # version data, quarantine, the upload: byte-equal
    kinds = {Path(p).name for p in files(dst)}
    assert {"data.parquet", "quarantine.parquet", "tabelle.csv"} <= kinds
    run_hub(fresh, "check")  # `hub check` finds every restored version sound
    with serving_side_by_side((source.root, {}), (fresh, {})) as (old, new):
        expected = answers(old, source.tokens["ann"])
        assert expected[f"admin {UPLOADED_TO}"]["result"]["resources"]
        assert answers(new, source.tokens["ann"]) == expected  # the same token works
        assert expected["anon search "]["count"] < expected["admin search "]["count"]
        assert expected["admin search Zuckerwatte"]["count"] == 3
        with httpx.Client(base_url=new, timeout=60) as http:
            res = next(r for r in expected[f"admin {UPLOADED_TO}"]["result"]["resources"]
                       if r["name"] == "Datei")
            got = http.get(res["url"].replace("BASE", ""),
                           headers={"Authorization": source.tokens["ann"]})
            assert got.status_code == 200 and got.content == UPLOAD


def test_a_store_in_use_is_replaced_only_with_force(source: Hub, taken: Path,
                                                    tmp_path: Path) -> None:
    fresh = checkout(source.root, tmp_path / "fresh")
    run_hub(fresh, "user", "add", "zoe", "--org", "sozialamt", "--role", "viewer")
    refused = hub(fresh, "restore", str(taken))
    text = " ".join(refused.output.split())
    assert refused.exit_code == 1 and ("is not empty (1 rows in table audit, 1 rows in table "
                                       "users)") in text, text  # (the audit entry of the add)
    assert "--force" in text
    assert [u[0] for u in tables(fresh / "store")["users"]] == ["zoe"]  # untouched
    run_hub(fresh, "restore", str(taken), "--force")
    assert tables(fresh / "store")["users"] == tables(source.root / "store")["users"]
    assert not [p for p in fresh.iterdir() if p.name.startswith(".store.")]  # nothing left


# -- consistency while serving and ingesting ----------------------------------------------------

def ingest(root: Path, *extra: str, **env: str) -> subprocess.Popen:
    code = "import sys; from hub.cli import app; sys.exit(app())"
    return subprocess.Popen(
        [sys.executable, "-c", code, "ingest", "gemeinden", "--force", *extra, "--root",
         str(root)], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def snapshot_of(folder: Path) -> dict[str, Any]:
    """The gemeinden dataset as a backup holds it: current pointer, kept versions, files."""
    manifest = read_manifest(folder)
    verify(folder, manifest)  # every file present, sound and agreeing with the version log

    def rows(table: str) -> list[dict[str, Any]]:
        spec = manifest["tables"][table]
        names = [c["name"] for c in spec["columns"]]
        lines = (folder / spec["file"]).read_text(encoding="utf-8").splitlines()
        return [dict(zip(names, json.loads(line), strict=True)) for line in lines]

    [dataset] = [d for d in rows("datasets") if d["name"] == "gemeinden"]
    kept = sorted(v["version"] for v in rows("versions")
                  if v["dataset"] == "gemeinden" and not v["purged"])
    folders = sorted({int(Path(p).parts[3][1:]) for p in manifest["files"]
                      if p.startswith("files/data/gemeinden/")})
    return {"current": dataset["current_version"], "kept": kept, "folders": folders}


class Traffic:
    """Readers of a running hub in a thread (CKAN with a token, OGC items), all answered."""

    def __init__(self, url: str, token: str):
        self.url, self.token, self.done, self.failures = url, token, threading.Event(), []
        self.count = 0
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.done.is_set():
                for path in ("/api/3/action/package_list", "/ogc/collections/gemeinden/items",
                             f"/api/3/action/package_show?id={UPLOADED_TO}"):
                    got = http.get(path, headers={"Authorization": self.token})
                    self.count += 1
                    if got.status_code != 200:
                        self.failures.append((path, got.status_code, got.text[:200]))

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=120)  # a hang guard only


@pytest.fixture
def live(source: Hub, tmp_path: Path) -> Iterator[tuple[Path, Traffic]]:
    """A copy of the source hub, served and read while the test ingests and backs up."""
    root = tmp_path / "live"
    shutil.copytree(source.root, root)
    with serving(root) as url, Traffic(url, source.tokens["sam"]) as traffic:
        yield root, traffic
    assert traffic.count and not traffic.failures


def test_a_backup_during_a_commit_holds_the_version_before_it(live: tuple[Path, Traffic],
                                                              tmp_path: Path) -> None:
    root, _ = live
    before = Store(root / "store").current("gemeinden").version
    writer = ingest(root, HUB_FAULT_POINT="version-renamed")
    wait_stopped(writer.pid)  # the new version's folder is in place, the log does not know it
    assert (root / "store" / "data" / "gemeinden" / f"v{before + 1}").is_dir()
    run_hub(root, "backup", str(tmp_path / "during"))
    writer.send_signal(signal.SIGCONT)
    assert writer.wait(timeout=120) == 0, writer.stderr.read()
    run_hub(root, "backup", str(tmp_path / "after"))
    during, after = snapshot_of(tmp_path / "during"), snapshot_of(tmp_path / "after")
    assert during["current"] == before and during["folders"] == during["kept"]
    assert before + 1 not in during["folders"]
    assert after["current"] == before + 1 and after["folders"] == after["kept"]


def test_a_version_purged_while_its_files_are_copied_gives_a_fresh_snapshot(
        live: tuple[Path, Traffic], tmp_path: Path) -> None:
    """Retention marks a version purged and then deletes its folder; a backup whose snapshot
    still keeps that version finds the folder gone, and starts again from a new snapshot."""
    root, _ = live
    writer = ingest(root, HUB_FAULT_POINT="committed", HUB_RETENTION="1")
    wait_stopped(writer.pid)  # committed; retention has not run yet
    store = Store(root / "store")
    new = store.current("gemeinden").version
    assert len([v for v in store.versions("gemeinden") if not v.purged]) > 1

    class Purging:
        """Lets the writer run its retention between the snapshot and the copying."""

        def start(self, name: str, total: int, unit: str) -> None:
            if name == "files" and writer.returncode is None:
                writer.send_signal(signal.SIGCONT)
                assert writer.wait(timeout=120) == 0, writer.stderr.read()

        def advance(self, amount: int) -> None:
            pass

        def done(self) -> None:
            pass

    summary = backup(root / "store", tmp_path / "backup", Purging())
    assert summary.attempts == 2
    taken = snapshot_of(tmp_path / "backup")
    assert taken == {"current": new, "kept": [new], "folders": [new]}


def test_backups_while_ingests_commit_and_purge_are_each_consistent(
        live: tuple[Path, Traffic], tmp_path: Path) -> None:
    root, traffic = live
    commits = []

    def write() -> None:
        for _ in range(3):
            proc = ingest(root, HUB_RETENTION="2")
            commits.append(proc.wait(timeout=300))

    writer = threading.Thread(target=write)
    writer.start()
    taken = []
    while writer.is_alive() or not taken:
        folder = tmp_path / f"b{len(taken)}"
        backup(root / "store", folder)
        taken.append(snapshot_of(folder))
    writer.join()
    assert commits == [0, 0, 0]
    for snap in taken:  # the pointer, the log and the files agree in every one
        assert snap["current"] in snap["kept"] and snap["folders"] == snap["kept"]
        assert len(snap["kept"]) <= 3
    assert traffic.count


# -- damaged and incomplete backups ---------------------------------------------------------------

def flip_byte(folder: Path) -> str:
    path = next(folder.glob("files/data/gemeinden/v*/data.parquet"))
    body = bytearray(path.read_bytes())
    body[len(body) // 2] ^= 0x01
    path.write_bytes(bytes(body))
    return f"{path} is damaged"


def remove_upload(folder: Path) -> str:
    path = next(folder.glob("files/uploads/**/tabelle.csv"))
    path.unlink()
    return f"{path} is missing from the backup"


def truncate_table(folder: Path) -> str:
    path = folder / "tables" / "catalog_records.jsonl"
    path.write_bytes(path.read_bytes()[:-500])
    return f"{path} has"


def newer_format(folder: Path) -> str:
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format": 99, "hub_version": "9.0"}))
    return "the backup has format 99, made by a newer hub (version 9.0)"


def no_manifest(folder: Path) -> str:
    (folder / MANIFEST).unlink()
    return "is not a complete backup"


def escaping_path(folder: Path) -> str:
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"]["files/../../outside"] = {"sha256": "0" * 64, "bytes": 1}
    path.write_text(json.dumps(manifest))
    return "the path 'files/../../outside' leaves the backup folder"


def unfit_rows(folder: Path) -> str:
    """Checksums that agree, rows that break the schema: found while the store is built."""
    path, manifest_path = folder / "tables" / "users.jsonl", folder / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    names = [c["name"] for c in manifest["tables"]["users"]["columns"]]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[-1][names.index("organization")] = None  # NOT NULL
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    path.write_bytes(body)
    manifest["tables"]["users"] |= {"sha256": hashlib.sha256(body).hexdigest(),
                                    "bytes": len(body)}
    manifest_path.write_text(json.dumps(manifest))
    return f"{path}: its rows do not fit table 'users' of this hub"


@pytest.mark.parametrize("damage", [flip_byte, remove_upload, truncate_table, newer_format,
                                    no_manifest, escaping_path, unfit_rows])
def test_a_damaged_backup_is_refused_and_nothing_is_written(source: Hub, taken: Path,
                                                            tmp_path: Path, damage: Any) -> None:
    folder = tmp_path / "backup"
    shutil.copytree(taken, folder)
    expected = damage(folder)
    fresh = checkout(source.root, tmp_path / "fresh")
    result = hub(fresh, "restore", str(folder))
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and expected in text, text
    assert "Traceback" not in text
    assert not (fresh / "store").exists()
    assert not [p for p in fresh.iterdir() if p.name.startswith(".store.")]
    if damage is not unfit_rows:
        with pytest.raises(BackupError):
            verify(folder, read_manifest(folder))


def test_derived_tables_are_rebuilt_not_copied(taken: Path) -> None:
    manifest = read_manifest(taken)
    assert not set(DERIVED_TABLES) & manifest["tables"].keys()
    assert not [t for t in manifest["tables"] if t.startswith("catalog_text")]
    assert not [f for f in manifest["files"] if "/exports/" in f]


def test_a_backup_never_overwrites(source: Hub, taken: Path) -> None:
    result = hub(source.root, "backup", str(taken))
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "exists and is not empty" in text, text


def test_a_damaged_version_stops_the_backup_until_hub_check_marks_it(source: Hub,
                                                                     tmp_path: Path) -> None:
    root = tmp_path / "hub"
    shutil.copytree(source.root, root)
    damaged = root / "store" / "data" / "gemeinden" / "v2" / "data.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    result = hub(root, "backup", str(tmp_path / "refused"))
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "data/gemeinden/v2/data.parquet has SHA-256" in text, text
    assert "hub check" in text and not (tmp_path / "refused").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".refused.")]
    assert hub(root, "check").exit_code == 1  # marks v2 broken
    run_hub(root, "backup", str(tmp_path / "backup"))
    fresh = checkout(source.root, tmp_path / "fresh")
    out = CliRunner().invoke(app, ["restore", str(tmp_path / "backup"), "--root", str(fresh)],
                             env={"COLUMNS": "400"})
    assert out.exit_code == 0, out.output
    assert "restored as broken (as in the backup): gemeinden v2" in " ".join(out.output.split())
    restored = {v[0]: v[5] for v in versions(fresh / "store")["gemeinden"]}
    assert restored[2] and "checksum mismatch" in restored[2] and restored[3] is None
    assert files(fresh / "store") == files(root / "store")  # the damaged file as it was


def test_an_upload_whose_hash_was_edited_is_backed_up_as_found(source: Hub,
                                                               tmp_path: Path) -> None:
    """CKAN lets an editor set a resource's `hash`; the file stays the uploaded one. That is
    no damage of the store: the backup keeps the file with a note instead of refusing."""
    root = tmp_path / "hub"
    shutil.copytree(source.root, root)
    with serving(root) as url:
        ann = ckanapi.RemoteCKAN(url, apikey=source.tokens["ann"])
        res = next(r for r in ann.action.package_show(id=UPLOADED_TO)["resources"]
                   if r["name"] == "Datei")
        ann.action.resource_patch(id=res["id"], hash="sha256:" + "0" * 64)
    result = hub(root, "backup", str(tmp_path / "backup"))
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "uploaded file backed up as found" in text, text
    assert "tabelle.csv has SHA-256" in text
    fresh = checkout(source.root, tmp_path / "fresh")
    run_hub(fresh, "restore", str(tmp_path / "backup"))
    assert files(fresh / "store") == files(root / "store")
    assert tables(fresh / "store") == tables(root / "store")


def test_a_store_that_only_ingested_is_backed_up_and_restored(source: Hub,
                                                              tmp_path: Path) -> None:
    """No catalog records yet (nothing but `hub ingest` ran; the migrations made every table):
    the backup takes what there is, and the restore gives a store the server can open."""
    root = checkout(source.root, tmp_path / "hub")
    run_hub(root, "ingest", "spielplaetze")
    assert tables(root / "store")["catalog_records"] == []
    run_hub(root, "backup", str(tmp_path / "backup"))
    fresh = checkout(source.root, tmp_path / "fresh")
    run_hub(fresh, "restore", str(tmp_path / "backup"))
    restored, original = tables(fresh / "store"), tables(root / "store")
    assert original.pop("catalog_meta") == []  # bookkeeping a catalog writes when it opens
    assert {k: v for k, v in restored.items() if k in original} == original
    assert versions(fresh / "store") == versions(root / "store")
    assert files(fresh / "store") == files(root / "store")


def test_a_full_disk_fails_clearly_and_leaves_nothing(source: Hub, taken: Path,
                                                      tmp_path: Path) -> None:
    from test_store_faults import small_filesystem  # a real full disk (tmpfs), or skipped

    small = tmp_path / "small"
    with small_filesystem(small, "96k"):  # the backup takes about 0.3 MB
        result = hub(source.root, "backup", str(small / "backup"))
        text = " ".join(result.output.split())
        assert result.exit_code == 1 and "No space left on device" in text, text
        assert f"the backup to {small / 'backup'} failed" in text
        assert not list(small.iterdir())  # no partial backup
        fresh = checkout(source.root, tmp_path / "fresh")
        result = CliRunner().invoke(app, ["restore", str(taken), "--root", str(fresh),
                                          "--store", str(small / "store")])
        text = " ".join(result.output.split())
        assert result.exit_code == 1 and "nothing was changed" in text, text
        assert "No space left on device" in text or "disk is full" in text
        assert not list(small.iterdir())


def test_tables_this_code_does_not_know_are_taken_and_restored_with_their_types(
        source: Hub, tmp_path: Path) -> None:
    """Tables are enumerated, not listed: one added later (by another part of the hub, or
    lazily) comes along, BLOBs, reals, NULLs and text intact, and a column a newer hub added
    to a known table is kept."""
    root = tmp_path / "hub"
    shutil.copytree(source.root, root)
    rows = [(1, b"\x00\xffbin\n", 0.1 + 0.2, None, "Straße ✓"), (2, None, -1e300, 7, "")]
    db = sqlite3.connect(root / "store" / "hub.sqlite")
    with db:
        db.execute("CREATE TABLE later_sessions (id INTEGER PRIMARY KEY, blob BLOB, "
                   "score REAL, n INTEGER, note TEXT NOT NULL)")
        db.executemany("INSERT INTO later_sessions VALUES (?,?,?,?,?)", rows)
        db.execute("ALTER TABLE users ADD COLUMN later_flag INTEGER DEFAULT 3")
    db.close()
    run_hub(root, "backup", str(tmp_path / "backup"))
    fresh = checkout(source.root, tmp_path / "fresh")
    run_hub(fresh, "restore", str(tmp_path / "backup"))
    restored = tables(fresh / "store")
    assert restored["later_sessions"] == sorted(rows, key=repr)
    assert restored == tables(root / "store")
    with serving(fresh) as url:  # the restored store still serves
        assert ckanapi.RemoteCKAN(url, apikey=source.tokens["ann"]).action.package_show(
            id=UPLOADED_TO)["name"] == UPLOADED_TO
