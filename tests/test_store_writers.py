"""One writer per dataset across machines (hub.db.locks): two `hub ingest` processes with store
folders of their own, sharing one PostgreSQL database and one S3 bucket (moto's server) as two
machines would, never write one dataset at once; a SIGKILLed holder's lock is released; a run
whose lock went with its database session does not commit. The single-machine (SQLite, flock)
cases are in test_store_faults.py; a rollback takes the lock too, on both backends."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import test_store_faults
from sqlalchemy import text
from test_store_faults import write_points

from hub.config import load_settings
from hub.db import Database
from hub.db.locks import NAMESPACE
from hub.errors import StoreError
from hub.ingest.pipeline import load_pipeline
from hub.ingest.run import ingest
from hub.store.faults import wait_stopped
from hub.store.versions import Store
from soak.faults import hub_process, kill, output

project = test_store_faults.project  # the fault tests' points project, as a fixture here
PREFIX = "hub"


@pytest.fixture
def shared(postgres: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of two machines sharing one database and one bucket (also set here)."""
    env = {**s3_server.environment(), "HUB_DATABASE_URL": postgres.database(),
           "HUB_STORAGE_URL": f"s3://{s3_server.bucket()}/{PREFIX}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def open_store(folder: Path) -> Store:
    return Store(folder, load_settings(folder.parent, folder).database())


def stored(s3: Any, env: dict[str, str]) -> list[str]:
    bucket = env["HUB_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    return [k.removeprefix(f"{PREFIX}/") for k in s3.keys(bucket, f"{PREFIX}/data/")
            if not k.endswith("/")]


@pytest.mark.parametrize("point", ["first-batch-staged", "version-renamed"])
def test_two_machines_never_write_one_dataset_at_once(project: Path, shared: dict[str, str],
                                                      s3_server: Any, point: str) -> None:
    """Machine A's run is held mid-write; machine B (another store folder, so another flock
    file) is refused with the usual message; A then commits; B's next run finds it."""
    write_points(project / "data" / "points.csv", 2000)
    a, b = project / "machine-a", project / "machine-b"
    first = hub_process(project, a, "ingest", "points", HUB_FAULT_POINT=point)
    wait_stopped(first.pid)
    second = hub_process(project, b, "ingest", "points")
    text_b = output(second)
    assert second.returncode == 1, text_b
    assert "another run is writing dataset 'points' right now" in text_b, text_b
    os.kill(first.pid, signal.SIGCONT)
    text_a = output(first)
    assert first.returncode == 0 and "committed" in text_a, text_a
    write_points(project / "data" / "points.csv", 3000, seed=2)
    again = hub_process(project, b, "ingest", "points")
    text_b = output(again)
    assert again.returncode == 0 and "committed" in text_b, text_b
    store = open_store(b)
    assert [v.version for v in store.versions("points")] == [2, 1]
    assert store.current("points").rows == 3000
    assert stored(s3_server, shared) == ["data/points/v1/data.parquet",
                                         "data/points/v2/data.parquet"]


def test_a_killed_holder_releases_the_lock(project: Path, shared: dict[str, str],
                                           s3_server: Any, postgres: Any) -> None:
    """Machine A is SIGKILLed after publishing its files, before its commit: its session ends
    with it, so machine B may write at once; B removes A's unrecorded files and commits."""
    write_points(project / "data" / "points.csv", 2000)
    a, b = project / "machine-a", project / "machine-b"
    first = hub_process(project, a, "ingest", "points", HUB_FAULT_POINT="version-renamed")
    wait_stopped(first.pid)
    assert stored(s3_server, shared) == ["data/points/v1/data.parquet"]  # published, unrecorded
    assert advisory_holders(shared) == 1
    kill(first)
    second = hub_process(project, b, "ingest", "points")
    text_b = output(second)
    assert second.returncode == 0 and "committed" in text_b, text_b
    store = open_store(b)
    current = store.current("points")
    assert current is not None and current.version == 1 and current.rows == 2000
    store.ensure_sound(current)
    assert stored(s3_server, shared) == ["data/points/v1/data.parquet"]
    assert advisory_holders(shared) == 0


def advisory_holders(env: dict[str, str]) -> int:
    """How many sessions hold one of the hub's advisory locks (PostgreSQL's own view). A
    session ended by a killed client is gone once the server has noticed; the server notices
    a closed socket at once, and this waits for nothing."""
    db = Database(env["HUB_DATABASE_URL"])
    try:
        with db.connection() as conn:
            return conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :ns AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"), {"ns": NAMESPACE}).scalar_one()
    finally:
        db.close()


def test_a_run_that_lost_its_lock_does_not_commit(project: Path, shared: dict[str, str],
                                                  s3_server: Any) -> None:
    """The lock's session is ended on the server (an administrator's pg_terminate_backend, a
    network cut) while the run is held after publishing its files: the run fails at its commit
    saying so, nothing is committed, and the next run removes the files and commits."""
    write_points(project / "data" / "points.csv", 500)
    run = hub_process(project, project / "store", "ingest", "points",
                      HUB_FAULT_POINT="version-renamed")
    wait_stopped(run.pid)
    admin = Database(shared["HUB_DATABASE_URL"])
    try:
        with admin.connection() as conn:
            ended = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND classid = :ns"), {"ns": NAMESPACE}).scalars().all()
    finally:
        admin.close()
    assert ended == [True]
    os.kill(run.pid, signal.SIGCONT)
    said = output(run)
    assert run.returncode == 1 and "was lost" in said and "Traceback" not in said, said
    store = open_store(project / "store")
    assert store.current("points") is None
    again = hub_process(project, project / "store", "ingest", "points")
    said = output(again)
    assert again.returncode == 0 and "committed" in said, said
    assert stored(s3_server, shared) == ["data/points/v1/data.parquet"]


def test_a_rollback_waits_for_no_writer(project: Path, backend: str) -> None:
    """A rollback is a write: refused with the same message while a run holds the dataset
    (retention after that run's commit could purge the version it makes current); then done."""
    write_points(project / "data" / "points.csv", 100)
    folder = project / "store"
    settings = load_settings(project, folder)
    pipeline = load_pipeline(project / "pipelines" / "points.yaml")
    store = Store(folder, settings.database())
    for seed in (1, 2):
        write_points(project / "data" / "points.csv", 100 + seed, seed=seed)
        assert ingest(pipeline, store, settings).status == "committed"
    other = Store(folder, settings.database())  # another process or replica
    with store.writing("points"), pytest.raises(StoreError) as refused:
        other.rollback("points", 1, who="test")
    assert "another run is writing dataset 'points' right now" in str(refused.value)
    assert other.current("points").version == 2
    assert other.rollback("points", 1, who="test").version == 1
    assert store.current("points").rows == 101
