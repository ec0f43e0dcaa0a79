"""Workspace uploads through the storage seam (hub.intake.files): on a PostgreSQL + S3
deployment (a real PostgreSQL, moto's S3 server) a file uploaded on one replica is in the
bucket, listed by every other replica, and read by a job worker on another machine (a store
folder of its own) that runs the saved definition; a new upload on another replica replaces it
everywhere. On the default storage the folder is the stored files (test_workspace_daten.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import test_store_faults
from test_store_faults import write_points

from hub.catalog.uploads import Uploads
from hub.config import load_settings
from hub.ingest.definitions import Definitions
from hub.intake import runs
from hub.intake.files import Intake
from hub.jobs.queue import submit
from hub.jobs.worker import Worker
from hub.store.versions import Store

project = test_store_faults.project  # the fault tests' points project, as a fixture here
PREFIX = "hub"
DEFINITION = """\
dataset: punkte
title: Punkte aus dem Arbeitsbereich
organization: test
access: public
schema: points
on_error: reject
outside_extent: keep
sources:
  - path: punkte.csv
    geometry: {lon: rechtswert, lat: hochwert}
    crs: EPSG:25833
"""


@pytest.fixture
def bucket(postgres: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """One database and one bucket that every replica and worker of the test shares."""
    name = s3_server.bucket()
    env = {**s3_server.environment(), "HUB_DATABASE_URL": postgres.database(),
           "HUB_STORAGE_URL": f"s3://{name}/{PREFIX}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return name


def stored(s3: Any, bucket: str) -> list[str]:
    """The uploaded files in the bucket (without the folder markers S3 clients leave)."""
    return [k.removeprefix(f"{PREFIX}/") for k in s3.keys(bucket, f"{PREFIX}/uploads/")
            if not k.endswith("/")]


class Machine:
    """A replica or worker: the project, a store folder of its own, the shared database and
    bucket (from the environment)."""

    def __init__(self, project: Path, name: str):
        self.settings = load_settings(project, project / name)
        self.store = Store(self.settings.store, self.settings.database())
        self.intake = Intake(Uploads(self.settings.store, 1 << 24, self.store.files),
                             self.settings.store)

    def upload(self, dataset: str, name: str, body: bytes) -> list[str]:
        received = self.intake.uploads.receive(io.BytesIO(body), name)
        return [k.name for k in self.intake.keep(dataset, [(received, "csv")])]

    def listed(self, dataset: str) -> dict[str, bytes]:
        return {k.name: k.path.read_bytes() for k in self.intake.files(dataset)}


def test_an_upload_on_one_replica_is_run_by_a_worker_on_another(
        project: Path, bucket: str, s3_server: Any, tmp_path: Path) -> None:
    write_points(tmp_path / "punkte.csv", 300)
    body = (tmp_path / "punkte.csv").read_bytes()
    replica, other, worker = (Machine(project, n) for n in ("replica", "other", "worker"))
    assert replica.upload("punkte", "punkte.csv", body) == ["punkte.csv"]
    assert stored(s3_server, bucket) == ["uploads/workspace/punkte/punkte.csv"]
    Definitions(replica.store, replica.settings.pipelines_dir,
                replica.settings.schemas_dir).save("punkte", DEFINITION, by="sam")
    submit(replica.store.db, "ingest", {"dataset": "punkte"}, by="sam", organization="test")

    assert not (worker.settings.store / "uploads").exists()  # nothing on the worker's disk
    job = Worker(worker.settings, worker.store).run_next()
    assert job is not None and job.state == "done", job and job.error
    current = worker.store.current("punkte")
    assert current is not None and current.rows == 300
    assert other.listed("punkte") == {"punkte.csv": body}  # another replica's page

    # a new upload on the other replica replaces the file in the bucket and on every machine
    write_points(tmp_path / "neu.csv", 120, seed=3)
    newer = (tmp_path / "neu.csv").read_bytes()
    assert other.upload("punkte", "neu.csv", newer) == ["neu.csv"]
    assert stored(s3_server, bucket) == ["uploads/workspace/punkte/neu.csv"]
    assert replica.listed("punkte") == {"neu.csv": newer}
    assert not (replica.intake.folder("punkte") / "punkte.csv").exists()
    Definitions(other.store, other.settings.pipelines_dir, other.settings.schemas_dir).save(
        "punkte", DEFINITION.replace("punkte.csv", "neu.csv"), by="sam")
    submit(other.store.db, "ingest", {"dataset": "punkte"}, by="sam", organization="test")
    job = Worker(worker.settings, worker.store).run_next()
    assert job is not None and job.state == "done", job and job.error
    assert worker.store.current("punkte").rows == 120
    assert not (worker.intake.folder("punkte") / "punkte.csv").exists()  # gone there too


def test_quarantined_rows_download_on_any_replica(project: Path, bucket: str,
                                                  tmp_path: Path) -> None:
    """The worker's version keeps a bad row in quarantine (in the bucket, with the version);
    a replica that never saw the run's files offers it as CSV."""
    write_points(tmp_path / "punkte.csv", 50)
    body = (tmp_path / "punkte.csv").read_bytes() + "999;Falsch;-5;380000;5710000\n".encode(
        "cp1252")
    replica, worker = Machine(project, "replica"), Machine(project, "worker")
    replica.upload("punkte", "punkte.csv", body)
    Definitions(replica.store, replica.settings.pipelines_dir,
                replica.settings.schemas_dir).save(
        "punkte", DEFINITION.replace("on_error: reject", "on_error: quarantine"), by="sam")
    runs.start(replica.store, "punkte", "test", 1, by="sam")
    assert Worker(worker.settings, worker.store).run_next().state == "done"
    assert worker.store.current("punkte").quarantined == 1
    assert not list(replica.settings.store.glob("data/**/quarantine.parquet"))
    run = runs.last(replica.store, "punkte")
    assert run is not None and run.status == "committed"
    found = runs.quarantined_csv(replica.store, run)
    assert found is not None
    table = list(csv.DictReader(io.StringIO(b"".join(found).decode("utf-8-sig"))))
    assert [(r["id"], r["wert"]) for r in table] == [("999", "-5")]
    assert "minimum" in table[0]["_errors"], table[0]["_errors"]
