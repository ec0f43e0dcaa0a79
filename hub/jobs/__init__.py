"""Jobs: work that runs in `hub worker` processes, not in a request (pipeline runs, scheduled
runs). The queue lives in the hub's database (hub.jobs.queue; SQLite or PostgreSQL), job kinds
are registered by name (hub.jobs.kinds), the worker takes and runs them (hub.jobs.worker)."""

from hub.jobs.kinds import Context, kind
from hub.jobs.queue import Job, JobError, LeaseLost, UnknownJob, get, list_jobs, submit

__all__ = ["Context", "Job", "JobError", "LeaseLost", "UnknownJob", "get", "kind", "list_jobs",
           "submit"]
