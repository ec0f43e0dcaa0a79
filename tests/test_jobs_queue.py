"""The job queue (hub.jobs.queue) on both backends of hub.db: SQLite and a real PostgreSQL
(deploy/postgres.py). Every test runs on each and expects the same answers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hub import audit
from hub.db import Database
from hub.jobs import JobError, LeaseLost, UnknownJob, get, kind, list_jobs, queue, submit
from hub.jobs.kinds import Context, ReportProgress


@kind("test.echo")
def echo(params: dict[str, Any], progress: ReportProgress, context: Context) -> dict[str, Any]:
    progress(0.5, "halb")
    return {"echo": params}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    from hub.db import migrate

    if request.param == "sqlite":
        (tmp_path / "store").mkdir()
        db = Database.for_store(tmp_path / "store")
    else:
        db = Database(request.getfixturevalue("postgres").database())
    migrate.upgrade(db)
    return db


def other(db: Database) -> Database:
    """A second process's view of the same database (its own connections)."""
    return Database(db.url)


def test_a_job_is_queued_with_what_it_was_given(database: Database) -> None:
    job_id = submit(database, "test.echo", {"dataset": "pflege", "n": 1}, by="ann",
                    organization="sozialamt")
    job = get(database, job_id)
    assert (job.kind, job.params, job.state, job.progress, job.attempts) == (
        "test.echo", {"dataset": "pflege", "n": 1}, "queued", 0.0, 0)
    assert (job.dataset, job.submitted_by, job.organization) == ("pflege", "ann", "sozialamt")
    assert job.started is None and job.finished is None and job.result is None
    assert [j.id for j in list_jobs(database, organization="sozialamt")] == [job_id]
    assert list_jobs(database, organization="bauamt") == []
    assert list_jobs(database, state="running") == []


def test_unknown_kinds_states_and_jobs_are_refused_by_name(database: Database) -> None:
    with pytest.raises(JobError, match=r"unknown job kind 'nope'.*ingest"):
        submit(database, "nope", {}, by="ann", organization="sozialamt")
    with pytest.raises(UnknownJob, match="no job 'f00'"):
        get(database, "f00")
    with pytest.raises(JobError, match="state 'lost'"):
        list_jobs(database, state="lost")
    assert list_jobs(database) == []


def test_a_claimed_job_runs_with_a_lease_and_ends_done_with_its_result(
        database: Database) -> None:
    job_id = submit(database, "test.echo", {}, by="ann", organization="sozialamt")
    job = queue.claim(database, "w1")
    assert job is not None and job.id == job_id
    assert (job.state, job.claimed_by, job.attempts) == ("running", "w1", 1)
    assert job.lease_expires is not None and job.lease_expires > job.heartbeat
    assert queue.claim(database, "w2") is None  # nothing else queued
    queue.beat(database, job, "w1", 0.25, "ein Viertel")
    assert (get(database, job_id).progress, get(database, job_id).message) == (
        0.25, "ein Viertel")
    done = queue.finish(database, job, "w1", {"rows": 3})
    assert (done.state, done.progress, done.result, done.claimed_by) == (
        "done", 1.0, {"rows": 3}, None)
    assert done.started is not None and done.finished >= done.started
    with pytest.raises(LeaseLost):  # ended: no more progress from anyone
        queue.beat(database, job, "w1", 0.5, "")
    [entry] = audit.entries(database, audit.Filter(action="job.run"))
    assert (entry.actor, entry.subject) == ("ann", f"job:{job_id}")
    assert json.loads(entry.after) == {"job": job_id, "kind": "test.echo", "state": "done",
                                       "attempts": 1, "worker": "w1", "error": None}
    assert audit.verify(database).entries == 1


def test_a_failed_job_keeps_its_reason_and_is_not_taken_again(database: Database) -> None:
    submit(database, "test.echo", {}, by="ann", organization="sozialamt")
    job = queue.claim(database, "w1")
    assert job is not None
    failed = queue.fail(database, job, "w1", "Quelle nicht erreichbar", {"rows_read": 0})
    assert (failed.state, failed.error, failed.result) == (
        "failed", "Quelle nicht erreichbar", {"rows_read": 0})
    assert queue.claim(database, "w2") is None


def test_two_concurrent_workers_take_every_job_exactly_once(database: Database) -> None:
    ids = [submit(database, "test.echo", {"i": i}, by="ann", organization="sozialamt")
           for i in range(30)]
    taken: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def work(name: str) -> None:
        db = other(database)
        start.wait()
        while (job := queue.claim(db, name)) is not None:
            taken[name].append(job.id)
            queue.finish(db, job, name, {})
        db.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)  # guards a hang only
    everything = taken["a"] + taken["b"]
    assert sorted(everything) == sorted(ids)  # each once: no job twice, none left
    assert all(j.state == "done" and j.attempts == 1 for j in list_jobs(database, limit=100))


def test_one_job_per_dataset_runs_at_a_time(database: Database) -> None:
    first = submit(database, "test.echo", {"dataset": "pflege"}, by="ann",
                   organization="sozialamt")
    second = submit(database, "test.echo", {"dataset": "pflege"}, by="ann",
                    organization="sozialamt")
    third = submit(database, "test.echo", {"dataset": "schulen"}, by="ann",
                   organization="schulamt")
    a = queue.claim(database, "w1")
    b = queue.claim(other(database), "w2")
    assert (a.id, b.id) == (first, third)  # pflege is being written: its second job waits
    assert queue.claim(database, "w3") is None
    queue.finish(database, a, "w1", {})
    c = queue.claim(database, "w3")
    assert c is not None and c.id == second


def test_an_expired_lease_is_taken_over_and_the_old_worker_cannot_finish(
        database: Database) -> None:
    job_id = submit(database, "test.echo", {"dataset": "pflege"}, by="ann",
                    organization="sozialamt")
    lost = queue.claim(database, "w1", lease=0.2)
    assert lost is not None and queue.claim(database, "w2") is None  # leased
    time.sleep(0.4)  # the lease runs out (w1 stopped beating)
    taken = queue.claim(other(database), "w2")
    assert taken is not None and (taken.id, taken.attempts, taken.claimed_by) == (
        job_id, 2, "w2")
    with pytest.raises(LeaseLost):
        queue.beat(database, lost, "w1", 0.9, "")
    with pytest.raises(LeaseLost):
        queue.finish(database, lost, "w1", {"by": "w1"})
    done = queue.finish(database, taken, "w2", {"by": "w2"})
    assert (done.state, done.result, done.attempts) == ("done", {"by": "w2"}, 2)


def test_a_job_whose_workers_keep_dying_fails_after_its_last_attempt(
        database: Database) -> None:
    job_id = submit(database, "test.echo", {}, by="ann", organization="sozialamt",
                    max_attempts=2)
    for worker in ("w1", "w2"):
        assert queue.claim(database, worker, lease=0.1) is not None
        time.sleep(0.2)
    assert queue.claim(database, "w3") is None
    job = get(database, job_id)
    assert (job.state, job.attempts) == ("failed", 2)
    assert "stopped answering 2 time(s)" in (job.error or "")
    [entry] = audit.entries(database, audit.Filter(action="job.run"))
    assert json.loads(entry.after)["state"] == "failed"


def test_a_released_job_goes_back_to_the_queue_untouched(database: Database) -> None:
    job_id = submit(database, "test.echo", {}, by="ann", organization="sozialamt")
    job = queue.claim(database, "w1")
    assert job is not None
    queue.release(database, job, "w1")
    back = get(database, job_id)
    assert (back.state, back.attempts, back.claimed_by) == ("queued", 0, None)
    again = queue.claim(database, "w2")
    assert again is not None and again.attempts == 1
