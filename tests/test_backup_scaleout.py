"""Backup and restore across deployments (issue 14, test e): a single-machine hub (SQLite and
the store folder) restores into a PostgreSQL + S3 deployment (a real PostgreSQL, moto's S3
server) and a backup of that deployment restores into a single-machine hub again, each with the
same datasets, versions (checksums), files, records, accounts and audit chain (`hub audit
verify` passes) and the same API answers. A backup of the PostgreSQL + S3 deployment taken
while it serves and a pipeline commits holds the version before the commit.

The source hub is test_backup's (the CKAN demo project: data, 87 records, users with tokens, a
quarantine file, a purged version, a file uploaded through the CKAN API) plus a source file
uploaded in the workspace.
"""

from __future__ import annotations

import contextlib
import io
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ckan_project import Hub, run_hub
from conftest import free_port, serving, serving_side_by_side
from test_backup import (
    UPLOAD,
    Traffic,
    answers,
    checkout,
    ingest,
    snapshot_of,
    source,  # noqa: F401  (the source hub, a fixture)
    tables_of,
)
from typer.testing import CliRunner

from hub.catalog.uploads import Received, Uploads
from hub.cli import app
from hub.config import load_settings
from hub.intake.files import Intake
from hub.storage import for_store
from hub.store.faults import wait_stopped
from hub.store.versions import Store

PREFIX = "hub"
WORKSPACE_FILE = "Messstellen;Wert\r\nSee;1,5\r\n".encode("cp1252")


@contextlib.contextmanager
def deployment(env: dict[str, str]) -> Iterator[None]:
    """This process's environment as the deployment's (none of the variables: single machine)."""
    with pytest.MonkeyPatch.context() as patch:
        for key in ("HUB_DATABASE_URL", "HUB_STORAGE_URL"):
            patch.delenv(key, raising=False)
        for key, value in env.items():
            patch.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def s3_server() -> Iterator[Any]:
    """An S3 endpoint of this module's own (deploy/s3.py): the copies of the demo store put into
    its buckets go with it, and the session's server stays as light as its other tests expect
    (moto keeps every object in memory)."""
    from deploy.s3 import S3

    with S3.started(free_port()) as server:
        yield server


@pytest.fixture
def scaled(postgres: Any, s3_server: Any) -> dict[str, str]:
    """The environment of an empty PostgreSQL + S3 deployment."""
    return {**s3_server.environment(), "HUB_DATABASE_URL": postgres.database(),
            "HUB_STORAGE_URL": f"s3://{s3_server.bucket()}/{PREFIX}"}


# -- what is compared ---------------------------------------------------------------------------

def tables(root: Path, env: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every table that holds state, and the derived facets, sorted (on either backend)."""
    with deployment(env):
        database = load_settings(root, root / "store").database()
    return tables_of(database)


def files(root: Path, env: dict[str, str], s3: Any) -> dict[str, bytes]:
    """Version files and uploads as the storage holds them (export caches are derived)."""
    if "HUB_STORAGE_URL" not in env:
        store = root / "store"
        return {p.relative_to(store).as_posix(): p.read_bytes()
                for sub in ("data", "uploads") for p in sorted((store / sub).rglob("*"))
                if p.is_file() and "exports" not in p.parts and ".staging" not in p.parts}
    bucket = env["HUB_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    client = s3.client()
    return {key.removeprefix(f"{PREFIX}/"): client.get_object(Bucket=bucket, Key=key)[
                "Body"].read()
            for key in s3.keys(bucket, f"{PREFIX}/")
            if not key.endswith("/") and "/exports/" not in key}


def versions(root: Path, env: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    with deployment(env):
        settings = load_settings(root, root / "store")
        s = Store(settings.store, settings.database())
        return {d.name: [(v.version, v.rows, v.quarantined, v.checksum, v.purged, v.broken)
                         for v in s.versions(d.name)] for d in s.datasets()}


def hub(root: Path, env: dict[str, str], *args: str) -> str:
    with deployment(env):
        return run_hub(root, *args)


def upload_in_workspace(root: Path, env: dict[str, str], dataset: str) -> None:
    """A source file kept for `dataset` as the workspace's upload page keeps it."""
    with deployment(env):
        store = root / "store"
        uploads = Uploads(store, 1 << 20, for_store(store))
        intake = Intake(uploads, store)
        received: Received = uploads.receive(io.BytesIO(WORKSPACE_FILE), "messwerte.csv")
        intake.keep(dataset, [(received, "csv")])


def same_hub(a: tuple[Path, dict[str, str]], b: tuple[Path, dict[str, str]], s3: Any,
             token: str) -> None:
    """Every row, version, stored file and API answer of hub `a` is hub `b`'s."""
    before = tables(*a)
    assert {"versions", "datasets", "catalog_records", "users", "tokens", "audit"} <= before.keys()
    assert before["tokens"] and before["audit"] and before["catalog_facets"]
    assert tables(*b) == before
    assert versions(*b) == versions(*a)
    stored = files(*a, s3)
    assert files(*b, s3) == stored
    kinds = {Path(p).name for p in stored}
    assert {"data.parquet", "quarantine.parquet", "tabelle.csv", "messwerte.csv"} <= kinds
    for root, env in (a, b):
        assert "The audit trail is intact" in hub(root, env, "audit", "verify")
        hub(root, env, "check")  # every version sound where it is stored
    with serving_side_by_side(a, b) as (old, new):
        expected = answers(old, token)
        assert expected["admin search Zuckerwatte"]["count"] == 3
        assert answers(new, token) == expected


# -- the round trip -----------------------------------------------------------------------------

def test_single_machine_to_postgresql_s3_and_back(source: Hub, scaled: dict[str, str],  # noqa: F811
                                                  s3_server: Any, tmp_path: Path) -> None:
    local: dict[str, str] = {}
    upload_in_workspace(source.root, local, "gemeinden")
    hub(source.root, local, "backup", str(tmp_path / "from-sqlite"))

    big = checkout(source.root, tmp_path / "scaled")
    out = hub(big, scaled, "restore", str(tmp_path / "from-sqlite"))
    assert "Restored" in out
    assert not (big / "store" / "hub.sqlite").exists()  # the rows went to PostgreSQL
    assert not (big / "store" / "data").exists() or not any(
        p.is_file() for p in (big / "store" / "data").rglob("*"))  # the files to S3
    same_hub((source.root, local), (big, scaled), s3_server, source.tokens["ann"])

    # the deployment lives on: a new version and a new workspace upload, made there
    assert "committed" in hub(big, scaled, "ingest", "gemeinden", "--force")
    upload_in_workspace(big, scaled, "spielplaetze")
    hub(big, scaled, "backup", str(tmp_path / "from-postgresql"))

    small = checkout(source.root, tmp_path / "small")
    out = hub(small, local, "restore", str(tmp_path / "from-postgresql"))
    assert "Restored" in out
    same_hub((big, scaled), (small, local), s3_server, source.tokens["ann"])
    assert [v[0] for v in versions(small, local)["gemeinden"]] == [4, 3, 2, 1]


def test_a_restore_into_object_storage_in_use_needs_force(source: Hub, scaled: dict[str, str],  # noqa: F811
                                                          s3_server: Any, tmp_path: Path) -> None:
    """A bucket prefix that holds files is a store in use even with an empty database."""
    hub(source.root, {}, "backup", str(tmp_path / "backup"))
    bucket = scaled["HUB_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    s3_server.client().put_object(Bucket=bucket, Key=f"{PREFIX}/data/alt/v1/data.parquet",
                                  Body=b"old")
    target = checkout(source.root, tmp_path / "target")
    with deployment(scaled):
        refused = CliRunner().invoke(app, ["restore", str(tmp_path / "backup"), "--root",
                                           str(target)], env={"COLUMNS": "400"})
    said = " ".join(refused.output.split())
    assert refused.exit_code == 1 and "files under data/ in s3://" in said, said
    hub(target, scaled, "restore", str(tmp_path / "backup"), "--force")
    assert "data/alt/v1/data.parquet" not in files(target, scaled, s3_server)
    assert versions(target, scaled) == versions(source.root, {})


# -- consistency while serving and committing ---------------------------------------------------

def test_a_backup_of_postgresql_s3_while_serving_and_committing(
        source: Hub, scaled: dict[str, str], s3_server: Any, tmp_path: Path) -> None:  # noqa: F811
    """The deployment serves readers while an ingest is held between putting its files into
    S3 and its commit: a backup then holds the version before, one after the commit the new
    one; each restores into a single machine whose `hub check` and audit chain pass."""
    hub(source.root, {}, "backup", str(tmp_path / "seed"))
    root = checkout(source.root, tmp_path / "live")
    hub(root, scaled, "restore", str(tmp_path / "seed"))
    before = versions(root, scaled)["gemeinden"][0][0]
    with serving(root, **scaled) as url, Traffic(url, source.tokens["sam"]) as traffic:
        writer = ingest(root, HUB_FAULT_POINT="version-renamed", **scaled)
        wait_stopped(writer.pid)  # the new version's files are in S3, the log does not know it
        bucket = scaled["HUB_STORAGE_URL"].removeprefix("s3://").split("/")[0]
        assert s3_server.keys(bucket, f"{PREFIX}/data/gemeinden/v{before + 1}/")
        hub(root, scaled, "backup", str(tmp_path / "during"))
        writer.send_signal(signal.SIGCONT)
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
        hub(root, scaled, "backup", str(tmp_path / "after"))
    assert traffic.count and not traffic.failures
    during, after = snapshot_of(tmp_path / "during"), snapshot_of(tmp_path / "after")
    assert during["current"] == before and during["folders"] == during["kept"]
    assert before + 1 not in during["folders"]
    assert after["current"] == before + 1 and after["folders"] == after["kept"]
    for name in ("during", "after"):
        small = checkout(source.root, tmp_path / f"small-{name}")
        hub(small, {}, "restore", str(tmp_path / name))
        hub(small, {}, "check")
        assert "The audit trail is intact" in hub(small, {}, "audit", "verify")
    assert versions(tmp_path / "small-after", {})["gemeinden"][0][0] == before + 1
    upload = next(p for p in files(tmp_path / "small-after", {}, s3_server)
                  if p.endswith("tabelle.csv"))
    assert files(tmp_path / "small-after", {}, s3_server)[upload] == UPLOAD
