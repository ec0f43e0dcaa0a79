"""Jobs run by a worker: kind "ingest" through the core with its progress, failures with
their reason, and a real `hub worker` process killed mid-job (SIGKILL): the previous version
stays current, the job is taken again after the lease expired and commits once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import Project
from source_server import SourceServer, points_csv, points_pipeline

from bench._serve import HUB
from hub.jobs import Context, get, kind, list_jobs, submit
from hub.jobs.kinds import ReportProgress, handler
from hub.jobs.worker import Worker


@pytest.fixture
def source() -> Iterator[SourceServer]:
    server = SourceServer(points_csv(5000))
    yield server
    server.close()


@pytest.fixture
def project(ingest_project: Project, source: SourceServer) -> Project:
    points_pipeline(ingest_project, source.url())
    return ingest_project


def worker(project: Project, **options: Any) -> Worker:
    return Worker(project.settings(), project.store, name="test-worker", **options)


SEEN: list[tuple[float, str]] = []


@kind("test.watched-ingest")
def watched_ingest(params: dict[str, Any], progress: ReportProgress,
                   context: Context) -> dict[str, Any]:
    """Kind "ingest", with every progress report kept in SEEN."""
    def report(fraction: float, message: str) -> None:
        SEEN.append((fraction, message))
        progress(fraction, message)
    return handler("ingest")(params, report, context)


def test_an_ingest_job_runs_the_pipeline_and_reports_its_progress(project: Project) -> None:
    SEEN.clear()
    job_id = submit(project.store.db, "test.watched-ingest", {"dataset": "orte"}, by="ann",
                    organization="Testamt")
    job = worker(project).run_next()
    assert job is not None and job.id == job_id and job.state == "done", job.error
    assert job.result["status"] == "committed" and job.result["version"] == 1
    assert job.result["rows_valid"] == 5000 and job.progress == 1.0
    assert project.current("orte").run_by == "ann"
    fractions = [f for f, _ in SEEN]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] > 0.9
    messages = [m for _, m in SEEN]
    assert "Quelle wird abgerufen" in messages and "Neue Version wird gespeichert" in messages
    assert any(m.startswith("Daten werden gelesen: daten.csv (") for m in messages)


def test_a_failing_run_fails_the_job_with_its_reason_and_keeps_the_version(
        project: Project, source: SourceServer) -> None:
    running = worker(project)
    submit(project.store.db, "ingest", {"dataset": "orte"}, by="ann", organization="Testamt")
    first = running.run_next()
    assert first is not None and first.state == "done"
    source.body = b"id;name;lon;lat\n"  # a header only
    job_id = submit(project.store.db, "ingest", {"dataset": "orte"}, by="ann",
                    organization="Testamt")
    failed = running.run_next()
    assert failed is not None and failed.id == job_id and failed.state == "failed"
    assert "no data rows" in (failed.error or "")
    assert failed.result["status"] == "failed"
    assert project.current("orte").version == 1
    missing = submit(project.store.db, "ingest", {"dataset": "gibtsnicht"}, by="ann",
                     organization="Testamt")
    ended = running.run_next()
    assert ended is not None and ended.id == missing and ended.state == "failed"
    assert "gibtsnicht.yaml" in (ended.error or "")


def test_an_unchanged_source_costs_one_conditional_request_and_no_version(
        project: Project, source: SourceServer) -> None:
    running = worker(project)
    for _ in range(2):
        submit(project.store.db, "ingest", {"dataset": "orte"}, by="ann",
               organization="Testamt")
        running.run_next()
    jobs = list_jobs(project.store.db)
    assert [j.result["status"] for j in reversed(jobs)] == ["committed", "unchanged"]
    assert source.not_modified == 1 and len(source.requests) == 2
    assert [v.version for v in project.store.versions("orte")] == [1]


def start_worker(project: Project, lease: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HUB, "worker", "--lease", str(lease), "--beat", "0.2",
         "--poll", "0.2", "--root", str(project.root), "--store", str(project.store_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def wait_for(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout  # guards a hang only
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_worker_killed_mid_job_leaves_the_version_and_the_job_is_retried_once(
        project: Project, source: SourceServer) -> None:
    assert project.ingest("orte").status == "committed"
    before = project.current("orte")
    source.body = points_csv(5000, tag=" (neu)")
    source.hold.set()
    job_id = submit(project.store.db, "ingest", {"dataset": "orte"}, by="ann",
                    organization="Testamt")
    first = start_worker(project, lease=2)
    try:
        wait_for(source.holding.is_set, "the first worker's download")
        assert get(project.store.db, job_id).state == "running"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert project.current("orte") == before  # nothing half-done is visible
    assert get(project.store.db, job_id).state == "running"  # its lease runs out
    source.hold.clear()
    source.release.set()
    second = start_worker(project, lease=2)
    try:
        wait_for(lambda: get(project.store.db, job_id).ended, "the retried job")
        second.send_signal(signal.SIGTERM)  # a graceful stop
        assert second.wait(timeout=60) == 0, second.stdout.read()
    finally:
        if second.poll() is None:
            second.kill()
    job = get(project.store.db, job_id)
    assert (job.state, job.attempts, job.result["version"]) == ("done", 2, 2), job
    assert [v.version for v in project.store.versions("orte")] == [2, 1]  # committed once
    assert project.table("orte").column("name")[0].as_py().endswith("(neu)")


def test_sigterm_lets_the_running_job_finish_before_the_worker_stops(
        project: Project, source: SourceServer) -> None:
    source.hold.set()
    job_id = submit(project.store.db, "ingest", {"dataset": "orte"}, by="ann",
                    organization="Testamt")
    running = start_worker(project, lease=30)
    try:
        wait_for(source.holding.is_set, "the worker's download")
        running.send_signal(signal.SIGTERM)
        source.release.set()  # the download completes after the stop was asked for
        assert running.wait(timeout=120) == 0, running.stdout.read()
    finally:
        if running.poll() is None:
            running.kill()
    job = get(project.store.db, job_id)
    assert (job.state, job.attempts, job.result["version"]) == ("done", 1, 1)
    assert project.current("orte").version == 1
