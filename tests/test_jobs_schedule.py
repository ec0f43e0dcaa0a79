"""Keeping data current (hub.jobs.schedule): remote pipelines are queued when their update
frequency has passed and asked with conditional requests, so an unchanged source costs one
request and no version; file-based pipelines put "new file due" on their organisation's to-do
list until a new version arrives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Project
from source_server import SourceServer, points_csv, points_pipeline

from hub.db import Database
from hub.jobs import list_jobs
from hub.jobs.schedule import tick
from hub.jobs.todo import open_items
from hub.jobs.worker import Worker
from hub.store.versions import Store

DAY = dt.timedelta(days=1)


@pytest.fixture
def source() -> Iterator[SourceServer]:
    server = SourceServer(points_csv(50))
    yield server
    server.close()


@pytest.fixture
def project(ingest_project: Project, source: SourceServer) -> Project:
    points_pipeline(ingest_project, source.url(), organization="sozialamt")
    (ingest_project.data / "datei.csv").write_bytes(points_csv(20))
    ingest_project.pipeline("datei", "points", {
        "path": "data/datei.csv", "crs": "EPSG:4326",
        "geometry": {"lon": "lon", "lat": "lat"}}, update_frequency="monthly",
        organization="bauamt", title="Bauanträge")
    ingest_project.pipeline("einmal", "points", {
        "url": source.url("/einmal.csv"), "format": "csv", "crs": "EPSG:4326",
        "geometry": {"lon": "lon", "lat": "lat"}}, update_frequency="irregular")
    return ingest_project


def statuses(project: Project) -> list[str]:
    return [j.result["status"] for j in reversed(list_jobs(project.store.db, dataset="orte"))]


def test_a_due_remote_source_is_run_and_an_unchanged_one_costs_nothing(
        project: Project, source: SourceServer) -> None:
    store, worker = project.store, Worker(project.settings(), project.store, name="w")
    assert tick(project.settings(), store).submitted == ["orte"]  # never run: due
    assert tick(project.settings(), store).submitted == []  # already queued: not twice
    worker.run_next()
    assert statuses(project) == ["committed"] and len(source.requests) == 1
    now = dt.datetime.now(dt.UTC)
    assert tick(project.settings(), store, now + DAY / 2).submitted == []  # not due yet
    assert tick(project.settings(), store, now + DAY).submitted == ["orte"]
    worker.run_next()
    assert statuses(project) == ["committed", "unchanged"]
    assert len(source.requests) == 2 and source.not_modified == 1  # a conditional request
    assert source.requests[1]["If-None-Match"] == source.etag
    assert [v.version for v in store.versions("orte")] == [1]  # and no version
    source.conditional = False  # a server that ignores validators: same bytes, same checksum
    assert tick(project.settings(), store, now + 2 * DAY).submitted == ["orte"]
    worker.run_next()
    assert statuses(project) == ["committed", "unchanged", "unchanged"]
    assert [v.version for v in store.versions("orte")] == [1]
    source.body = points_csv(50, tag=" (neu)")
    assert tick(project.settings(), store, now + 3 * DAY).submitted == ["orte"]
    worker.run_next()
    assert statuses(project)[-1] == "committed"
    assert [v.version for v in store.versions("orte")] == [2, 1]
    assert all(j.submitted_by == "zeitplan" and j.organization == "sozialamt"
               for j in list_jobs(store.db, dataset="orte"))
    assert list_jobs(store.db, dataset="einmal") == []  # irregular: never scheduled


def test_a_file_based_pipeline_that_is_due_goes_on_its_organisations_to_do_list(
        project: Project) -> None:
    store, settings = project.store, project.settings()
    assert tick(settings, store).due_files == ["datei"]  # no version yet
    assert tick(settings, store).due_files == ["datei"]  # still due: one item, not two
    [item] = open_items(store.db, ["bauamt"])
    assert (item.kind, item.dataset, item.organization) == ("file_due", "datei", "bauamt")
    assert "Bauanträge" in item.detail
    assert open_items(store.db, ["sozialamt"]) == []
    assert project.ingest("datei").status == "committed"
    tick(settings, store)
    assert open_items(store.db, ["bauamt"]) == []  # the new file arrived: resolved
    later = dt.datetime.now(dt.UTC) + 31 * DAY
    assert tick(settings, store, later).due_files == ["datei"]
    [again] = open_items(store.db, ["bauamt"])
    assert again.since > item.since


def test_a_failed_run_stays_on_the_list_until_a_run_of_the_dataset_succeeds(
        project: Project, source: SourceServer) -> None:
    store, worker = project.store, Worker(project.settings(), project.store, name="w")
    source.body = b"id;name;lon;lat\n"  # a header only
    tick(project.settings(), store)
    failed = worker.run_next()
    assert failed is not None and failed.state == "failed"
    [item] = [i for i in open_items(store.db, ["sozialamt"]) if i.dataset == "orte"]
    assert (item.kind, item.job) == ("run_failed", failed.id)
    assert "no data rows" in item.detail
    assert all(i.kind == "file_due" for i in open_items(store.db, ["bauamt"]))  # not theirs
    source.body = points_csv(50)
    tick(project.settings(), store, dt.datetime.now(dt.UTC) + DAY)
    assert worker.run_next().state == "done"
    assert [i for i in open_items(store.db, ["sozialamt"]) if i.dataset == "orte"] == []


def test_scheduling_on_postgresql_queues_a_due_run_once(project: Project, postgres: Any) -> None:
    store = Store(project.store_dir, database=Database(postgres.database()))
    settings = project.settings()
    assert tick(settings, store).submitted == ["orte"]
    assert tick(settings, store).submitted == []  # pending (under the scheduler's lock)
    assert [(j.dataset, j.state) for j in list_jobs(store.db)] == [("orte", "queued")]
    assert tick(settings, store).due_files == ["datei"]
    assert [i.dataset for i in open_items(store.db, ["bauamt"])] == ["datei"]
