"""Cells that a spreadsheet program would run as a formula ("CSV injection", OWASP): every CSV
the hub writes for people to open passes its text cells through here.

The rule: a text cell that starts with `=`, `+`, `-`, `@`, tab or carriage return gets a
leading apostrophe (Excel and LibreOffice then show it as text and run nothing), unless the
whole cell is a plain number (`-12`, `+3.5`, `1,5e3`), which a spreadsheet reads as that
number and nothing else. Cells of number columns are never touched.

Which files: the data downloads (`hub.api.downloads.csv_text`, both dialects), the workspace's
quarantined rows and problems (`hub.intake.runs`), the audit trail (`hub.audit`), the usage
figures (`hub.usage`) and the quarterly report (`hub.web.workspace.report`): each holds text
that came from outside (source files, titles, names, user input). The inventory and pipeline
files the hub reads are not written by it.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

FORMULA = r"^[=+\-@\t\r]"
NUMBER = r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$"
_FORMULA, _NUMBER = re.compile(FORMULA), re.compile(NUMBER)


def safe_cell(value: Any) -> Any:
    """A cell as a spreadsheet may open it: risky text with an apostrophe in front; numbers,
    empty cells and other values as they are."""
    if isinstance(value, str) and _FORMULA.match(value) and not _NUMBER.match(value):
        return "'" + value
    return value


def safe_row(values: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [safe_cell(value) for value in values]


def safe_cells(values: pa.Array) -> pa.Array:
    """`safe_cell` for a column of text (Arrow); nulls stay null."""
    risky = pc.and_(pc.fill_null(pc.match_substring_regex(values, FORMULA), False),
                    pc.invert(pc.fill_null(pc.match_substring_regex(values, NUMBER), False)))
    return pc.if_else(risky, pc.binary_join_element_wise("'", values, ""), values)
