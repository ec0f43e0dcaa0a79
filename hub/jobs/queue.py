"""The job queue: jobs in the hub's database (hub.db, table `jobs`), taken by any worker.

A job goes queued → running → done | failed. A worker claims the oldest queued job in one
transaction and holds a lease on it (`claimed_by`, `lease_expires`), renewed by its heartbeat
(`beat`, which also writes the progress). A worker that dies (SIGKILL, power cut) stops
renewing; when the lease has expired, another worker claims the job again, up to
`max_attempts` claims. Work a killed worker left half-done is never visible: a job's effect is
one atomic commit (an ingest run commits a version in one transaction, see hub.store), and a
worker whose lease was taken over cannot finish the job any more (`finish` and `beat` check
the lease).

Claiming is atomic on both backends: on SQLite `Database.write()` starts with BEGIN IMMEDIATE
(one writer at a time); on PostgreSQL the candidate row is locked with SELECT … FOR UPDATE
SKIP LOCKED, so concurrent workers take different jobs without waiting. One writer per dataset
on every machine: the partial unique index `jobs_one_writer` allows one running job per
dataset; a claim that would start a second one is refused by the database and the worker
takes the next job.

Why not procrastinate (PyPI): it runs on PostgreSQL only, and the single-machine mode runs on
SQLite, so the hub needs this queue there anyway; one queue on the database seam serves both
with the same code and the same tests.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Insert, and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from hub import audit
from hub.db import Database
from hub.db.schema import jobs
from hub.errors import HubError

STATES = ("queued", "running", "done", "failed")
LEASE_S = 30.0  # a running job's lease; its worker renews it far more often
CLAIM_TRIES = 5


class JobError(HubError):
    """A job cannot be submitted or found."""


class UnknownJob(JobError):
    """No such job (or not one the caller may see): HTTP 404."""

    http_status = 404


class LeaseLost(Exception):  # not a HubError: a handler must not catch it as one
    """Another worker took the job over (this worker's lease expired): stop working on it."""


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    params: dict[str, Any]
    organization: str
    dataset: str | None
    submitted_by: str
    state: str
    progress: float
    message: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    max_attempts: int
    claimed_by: str | None
    heartbeat: str | None
    lease_expires: str | None
    created: str
    started: str | None
    finished: str | None

    @property
    def ended(self) -> bool:
        return self.state in ("done", "failed")

    def as_dict(self) -> dict[str, Any]:
        """What the job page's JSON twin shows (no lease internals)."""
        return {"id": self.id, "kind": self.kind, "dataset": self.dataset,
                "organization": self.organization, "state": self.state,
                "progress": self.progress, "message": self.message, "result": self.result,
                "error": self.error, "attempts": self.attempts, "created": self.created,
                "started": self.started, "finished": self.finished}


def stamp(at: dt.datetime | None = None) -> str:
    """A UTC time as the hub stores it (fixed width, so texts compare like times)."""
    at = at or dt.datetime.now(dt.UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _later(seconds: float) -> str:
    return stamp(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


def _job(row: Any) -> Job:
    values = dict(row)
    values["params"] = json.loads(values["params"])
    values["result"] = json.loads(values["result"]) if values["result"] else None
    return Job(**values)


def submit(db: Database, kind: str, params: dict[str, Any], *, by: str, organization: str,
           dataset: str | None = None, max_attempts: int = 3) -> str:
    """Queue a job of a registered kind; returns its id. `dataset`: the dataset the job
    writes (default: params["dataset"]); at most one job per dataset runs at a time."""
    job_id, statement = new_job(kind, params, by=by, organization=organization,
                                dataset=dataset, max_attempts=max_attempts)
    with db.write() as conn:
        conn.execute(statement)
    return job_id


def new_job(kind: str, params: dict[str, Any], *, by: str, organization: str,
            dataset: str | None = None, max_attempts: int = 3) -> tuple[str, Insert]:
    """A new queued job's id and its INSERT (for `submit`, or in a caller's transaction)."""
    from hub.jobs.kinds import handler

    handler(kind)  # an unknown kind is refused here, not by a worker later
    if max_attempts < 1:
        raise JobError(f"max_attempts {max_attempts}: must be at least 1")
    job_id = uuid.uuid4().hex
    return job_id, jobs.insert().values(
        id=job_id, kind=kind, params=json.dumps(params, sort_keys=True),
        organization=organization,
        dataset=dataset if dataset is not None else params.get("dataset"), submitted_by=by,
        state="queued", max_attempts=max_attempts, created=stamp())


def get(db: Database, job_id: str) -> Job:
    with db.connection() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise UnknownJob(f"no job {job_id!r}")
    return _job(row)


def list_jobs(db: Database, *, organization: str | None = None, state: str | None = None,
              dataset: str | None = None, limit: int = 50) -> list[Job]:
    """The newest jobs first, optionally of one organisation, state or dataset."""
    query = select(jobs).order_by(jobs.c.created.desc(), jobs.c.id).limit(limit)
    if organization is not None:
        query = query.where(jobs.c.organization == organization)
    if state is not None:
        if state not in STATES:
            raise JobError(f"state {state!r}: expected one of {', '.join(STATES)}")
        query = query.where(jobs.c.state == state)
    if dataset is not None:
        query = query.where(jobs.c.dataset == dataset)
    with db.connection() as conn:
        return [_job(row) for row in conn.execute(query).mappings()]


def claim(db: Database, worker: str, lease: float = LEASE_S) -> Job | None:
    """Take the oldest job that is queued, or running with an expired lease, whose dataset
    no other job is writing; None when there is none. A job whose lease expired after its
    last allowed attempt is marked failed instead."""
    for _ in range(CLAIM_TRIES):
        try:
            return _claim(db, worker, lease)
        except IntegrityError:  # another worker started a job of the same dataset first
            continue
    return None


def _claim(db: Database, worker: str, lease: float) -> Job | None:
    with db.write() as conn:
        at = stamp()
        busy = select(jobs.c.dataset).where(jobs.c.state == "running",
                                            jobs.c.dataset.is_not(None))
        candidates = (
            select(jobs)
            .where(or_(and_(jobs.c.state == "queued",
                            or_(jobs.c.dataset.is_(None), jobs.c.dataset.not_in(busy))),
                       and_(jobs.c.state == "running", jobs.c.lease_expires < at)))
            .order_by(jobs.c.created, jobs.c.id).limit(1).with_for_update(skip_locked=True))
        while True:
            row = conn.execute(candidates).mappings().first()
            if row is None:
                return None
            if row["attempts"] < row["max_attempts"]:
                break
            error = (f"the worker running it stopped answering {row['attempts']} time(s) "
                     "(killed or lost); not tried again")
            conn.execute(update(jobs).where(jobs.c.id == row["id"]).values(
                state="failed", finished=at, claimed_by=None, lease_expires=None,
                error=error))
            _audit(db, conn, _job(row), "failed", error, None)
        values = {"state": "running", "claimed_by": worker, "attempts": row["attempts"] + 1,
                  "heartbeat": at, "lease_expires": _later(lease), "progress": 0.0,
                  "message": ""}
        if row["started"] is None:
            values["started"] = at
        conn.execute(update(jobs).where(jobs.c.id == row["id"]).values(**values))
        claimed = conn.execute(select(jobs).where(jobs.c.id == row["id"])).mappings().one()
    return _job(claimed)


def _mine(job: Job, worker: str) -> Any:
    return and_(jobs.c.id == job.id, jobs.c.state == "running", jobs.c.claimed_by == worker,
                jobs.c.attempts == job.attempts)


def beat(db: Database, job: Job, worker: str, progress: float, message: str,
         lease: float = LEASE_S) -> None:
    """Renew the lease and write the progress; LeaseLost if another worker took the job."""
    with db.write() as conn:
        changed = conn.execute(update(jobs).where(_mine(job, worker)).values(
            progress=min(max(progress, 0.0), 1.0), message=message[:500], heartbeat=stamp(),
            lease_expires=_later(lease))).rowcount
    if not changed:
        raise LeaseLost(f"job {job.id}: the lease of {worker} was taken over")


def finish(db: Database, job: Job, worker: str, result: dict[str, Any],
           message: str = "") -> Job:
    """Mark the job done with its result (LeaseLost if it is not this worker's any more)."""
    return _end(db, job, worker, state="done", progress=1.0, message=message,
                result=json.dumps(result, sort_keys=True, default=str))


def fail(db: Database, job: Job, worker: str, error: str,
         result: dict[str, Any] | None = None) -> Job:
    """Mark the job failed with the reason (it is not tried again)."""
    return _end(db, job, worker, state="failed", error=error, message="",
                result=json.dumps(result, sort_keys=True, default=str) if result else None)


def release(db: Database, job: Job, worker: str) -> None:
    """Give the job back to the queue untouched (the worker is stopping before it began)."""
    with db.write() as conn:
        conn.execute(update(jobs).where(_mine(job, worker)).values(
            state="queued", claimed_by=None, lease_expires=None, heartbeat=None,
            attempts=job.attempts - 1, progress=0.0, message=""))


def _end(db: Database, job: Job, worker: str, **values: Any) -> Job:
    with db.write() as conn:
        changed = conn.execute(update(jobs).where(_mine(job, worker)).values(
            finished=stamp(), claimed_by=None, lease_expires=None, **values)).rowcount
        if not changed:
            raise LeaseLost(f"job {job.id}: the lease of {worker} was taken over")
        _audit(db, conn, job, values["state"], values.get("error"), worker)
    return get(db, job.id)


def _audit(db: Database, conn: Connection, job: Job | Any, state: str, error: str | None,
           worker: str | None) -> None:
    """The job's run in the audit trail ("job.run"), in the transaction that ends it."""
    audit.record(db, actor=job.submitted_by, action="job.run",
                 subject=job.dataset or f"job:{job.id}", connection=conn,
                 after={"job": job.id, "kind": job.kind, "state": state,
                        "attempts": job.attempts, "worker": worker, "error": error})
