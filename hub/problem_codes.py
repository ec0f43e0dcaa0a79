"""The codes of the problems a run finds in single cells or rows, and their parameters.

A problem (`hub.schema.Problem`, `hub.errors.Violation`) keeps its English message for the
CLI, the logs and the JSON APIs, and beside it a code from `CODES` and the parameters as data,
so the workspace can say the same in the page's language (`hub.web.workspace.problems`).
A code is its rule (`required`, `type`, `enum`, ... `extent`), or the rule and a variant after
a dot (`type.date`, `geometry.wkt`): the rule is the part before the first dot.

A code is stable once runs have stored it: renaming one leaves old reports with a code
nothing renders (they fall back to the stored English message).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

# code -> the names of its parameters (besides the cell's value, which every problem has)
CODES: dict[str, tuple[str, ...]] = {
    "required": (),
    "required.coordinates": (),
    "required.geometry": (),
    "type.integer": (),
    "type.year": (),
    "type.number": ("decimal", "group"),  # the pipeline's decimalChar/groupChar, if set
    "type.number.ambiguous": (),
    "type.number.mixed": (),
    "type.date": ("example",),  # with a pipeline `format`: a date written in it
    "type.date.ambiguous": (),
    "type.datetime": ("example",),
    "type.datetime.ambiguous": (),
    "type.boolean": ("allowed",),
    "type.coordinate": ("column", "decimal"),
    "enum": ("allowed",),
    "minimum": ("limit",),
    "maximum": ("limit",),
    "minLength": ("limit",),
    "maxLength": ("limit",),
    "pattern": ("pattern",),
    "unique": ("first_row", "first_file"),  # first_file: None when it is the same file
    "geometry.wkt": (),
    "geometry.wkb": (),
    "geometry.type": ("allowed",),
    "crs": ("crs",),
    "swapped-axes": (),
    "extent": (),
    "row-structure": (),
}


# Errors that stop a run before it commits (the run's `error`), as codes with parameters too:
# those a data manager fixes in the mapping or the file. Others keep their English message.
FAILURES: dict[str, tuple[str, ...]] = {
    "no-column": ("file", "column", "field"),  # field: the required field it is mapped to
    "no-rows": ("files",),
    "filter-keeps-none": ("files", "rows"),
    "rejected": ("count",),
    "no-valid-rows": ("read", "quarantined", "skipped"),
    "no-geometry": ("file",),
    "unknown-crs": ("file",),
}
E = TypeVar("E", bound=BaseException)


def failing(exc: E, code: str, **params: Any) -> E:
    """`exc` with its failure code and parameters (`failure_code`, `failure_params`)."""
    if code not in FAILURES or set(params) - set(FAILURES[code]):
        raise ValueError(f"failure code {code!r} with {sorted(params)}: see FAILURES")
    exc.failure_code = code  # type: ignore[attr-defined]
    exc.failure_params = {k: _plain(v) for k, v in params.items()}  # type: ignore[attr-defined]
    return exc


def rule_of(code: str) -> str:
    return code.partition(".")[0]


def checked(code: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` for `code` as JSON data; an unknown code or parameter is a programming error."""
    if code not in CODES:
        raise ValueError(f"unknown problem code {code!r}: add it to hub.problem_codes.CODES")
    if unknown := set(params) - set(CODES[code]):
        raise ValueError(f"problem code {code!r} has no parameter(s) {sorted(unknown)}")
    return {k: _plain(v) for k, v in params.items()}


def _plain(value: Any) -> Any:
    """A value JSON keeps as it is (dates from a YAML schema become ISO text)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
