"""Errors the hub reports to people: each names where the problem is (file, row, column)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.problem_codes import CODES


class HubError(Exception):
    """A problem caused by input or configuration, explained in one precise message."""


class PipelineError(HubError):
    """A pipeline definition is invalid."""


class SourceError(HubError):
    """A source cannot be fetched or read (missing file, timeout, HTML instead of data, ...)."""


class ValidationFailed(HubError):
    """Rows violate the table schema and the pipeline's policy is `reject`."""


class StoreError(HubError):
    """The store refuses an operation (unknown dataset or version, lock held, ...)."""


class Forbidden(HubError):
    """The caller may not do this (see `hub.access`): HTTP 403, CLI exit code 1."""

    http_status = 403


class Conflict(HubError):
    """The change is based on an outdated state (another change came first): HTTP 409."""

    http_status = 409


class Unavailable(HubError):
    """What the answer depends on cannot be read now (e.g. a broken catalog): HTTP 503.
    Access decisions fail closed: the caller gets this, never a wider view."""

    http_status = 503


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule in one cell: what `reject` reports and `quarantine` keeps."""

    file: str
    row: int  # row as the source shows it (sheet row, CSV row as a spreadsheet shows it,
    # feature number); 0 for problems of the whole file
    column: str
    value: str | None
    rule: str  # type, required, unique, enum, minimum, ..., geometry, crs, extent
    message: str  # in English, for the CLI, the logs and the JSON APIs
    code: str = ""  # the rule or a variant of it, as `hub.problem_codes` lists them
    params: dict[str, Any] = field(default_factory=dict, compare=False)  # the code's data

    def __post_init__(self) -> None:
        if self.code and self.code not in CODES:
            raise ValueError(f"unknown problem code {self.code!r}: add it to "
                             "hub.problem_codes.CODES")

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row}" if self.row else self.file
        if self.column:
            where += f", column {self.column!r}"
        shown = "" if self.value is None else f" (value {_shorten(self.value)!r})"
        return f"{where}: {self.message}{shown} [rule: {self.rule}]"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
