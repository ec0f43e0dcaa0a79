"""The kinds of jobs a worker can run, registered by name (`@kind("ingest")`).

A handler takes the job's parameters, a `progress(fraction, message)` callback (fraction 0–1;
it raises LeaseLost when another worker took the job over, which ends the handler) and the
`Context` it runs in; it returns the job's result (a JSON-able dict) or raises a HubError
whose message becomes the job's error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hub.jobs.queue import JobError

if TYPE_CHECKING:
    from hub.config import Settings
    from hub.jobs.queue import Job
    from hub.store.versions import Store

ReportProgress = Callable[[float, str], None]


@dataclass(frozen=True)
class Context:
    """Where a job runs: the project's settings, its store (and the store's database)."""

    settings: Settings
    store: Store
    job: Job


class Handler(Protocol):
    def __call__(self, params: dict[str, Any], progress: ReportProgress,
                 context: Context) -> dict[str, Any]: ...


_KINDS: dict[str, Handler] = {}


def kind(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of jobs of kind `name`."""

    def register(function: Handler) -> Handler:
        if name in _KINDS and _KINDS[name] is not function:
            raise ValueError(f"job kind {name!r} is registered twice")
        _KINDS[name] = function
        return function

    return register


def handler(name: str) -> Handler:
    """The handler of a kind (the hub's own kinds are registered on first use)."""
    _builtin()
    try:
        return _KINDS[name]
    except KeyError:
        raise JobError(f"unknown job kind {name!r}; known: {', '.join(sorted(_KINDS))}") \
            from None


def known() -> list[str]:
    _builtin()
    return sorted(_KINDS)


def _builtin() -> None:
    import hub.jobs.pipelines  # noqa: F401 - registers "ingest"
