"""Errors the hub reports to people: each names where the problem is (file, row, column)."""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule in one cell: what `reject` reports and `quarantine` keeps."""

    file: str
    row: int  # row as the source shows it (sheet row, CSV row as a spreadsheet shows it,
    # feature number); 0 for problems of the whole file
    column: str
    value: str | None
    rule: str  # type, required, unique, enum, minimum, ..., geometry, crs, extent
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row}" if self.row else self.file
        if self.column:
            where += f", column {self.column!r}"
        shown = "" if self.value is None else f" (value {_shorten(self.value)!r})"
        return f"{where}: {self.message}{shown} [rule: {self.rule}]"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
