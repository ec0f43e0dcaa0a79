"""A whole version as CSV, written batch by batch with Arrow kernels.

Columns: the attributes, then `wkt` (the geometry as WKT, CRS84) and, for point layers, `lon`
and `lat`. Two dialects:

- default (RFC 4180): UTF-8 without BOM, `,` between cells, `.` as decimal mark, CRLF;
- `excel`: what German Excel opens correctly by double-click: UTF-8 *with* BOM, `;` between
  cells, decimal comma in number columns, CRLF.

Text cells are quoted only when they hold the separator, a quote or a line break (quotes
doubled); numbers, dates and booleans are never quoted. Spreadsheet formulas are neutralised
in both dialects by the hub's one rule (`hub.spreadsheet`): a text cell that starts with `=`,
`+`, `-`, `@`, tab or CR gets a leading apostrophe (OWASP "CSV injection") unless it is a
plain number, header names included. Number columns are left alone, so negative numbers stay
numbers. Missing values are empty cells.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from hub.api.downloads.columns import (
    Source,
    buffer_bytes,
    iso_text,
    join,
    lon_lat,
    number_text,
    wkt_geometries,
)
from hub.spreadsheet import safe_cells

BOM = "\ufeff".encode()
EOL = "\r\n"


@dataclass(frozen=True)
class Dialect:
    name: str
    delimiter: str
    decimal_comma: bool
    bom: bool


DIALECTS = {"default": Dialect("default", ",", False, False),
            "excel": Dialect("excel", ";", True, True)}


def quoted(values: pa.Array, dialect: Dialect) -> pa.Array:
    """Text cells in quotes (inner quotes doubled) where they need them."""
    special = f'[{re.escape(dialect.delimiter)}"\r\n]'
    needs = pc.fill_null(pc.match_substring_regex(values, special), False)
    return pc.if_else(needs, join('"', pc.replace_substring(values, '"', '""'), '"'), values)


def header(source: Source) -> list[str]:
    """Column names: attributes, then the geometry columns (renamed if an attribute has
    the same name)."""
    names = list(source.attributes)
    extra = ["wkt", "lon", "lat"] if source.only_points else ["wkt"]
    if source.has_geometry:
        names += [n if n not in source.attributes else f"geometry_{n}" for n in extra]
    return names


def _number(values: pa.Array, dialect: Dialect) -> pa.Array:
    text = number_text(values)
    return pc.replace_substring(text, ".", ",") if dialect.decimal_comma else text


def _text(values: pa.Array, dialect: Dialect) -> pa.Array:
    return quoted(safe_cells(values), dialect)


def _cells(batch: pa.RecordBatch, source: Source, dialect: Dialect) -> list[pa.Array]:
    cells = []
    for name in source.attributes:
        values = batch.column(name)
        kind = values.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            text = _text(values, dialect)
        elif pa.types.is_floating(kind):
            text = _number(values, dialect)
        elif pa.types.is_integer(kind):
            text = number_text(values)
        elif pa.types.is_boolean(kind):
            text = pc.if_else(values, "true", "false")
        elif pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            text = iso_text(values)
        else:  # types the store does not write today
            text = _text(pc.cast(values, pa.string()), dialect)
        cells.append(text)
    if source.has_geometry:
        wkb = batch.column("geometry")
        cells.append(quoted(wkt_geometries(wkb), dialect))
        if source.only_points:
            cells += [_number(c, dialect) for c in lon_lat(wkb)]
    return [pc.fill_null(c, "") for c in cells]


def _line(cells: list[pa.Array], dialect: Dialect) -> bytes:
    rows = pc.binary_join_element_wise(*cells, dialect.delimiter)
    return buffer_bytes(join(rows, EOL))


def stream(source: Source, dialect: Dialect) -> Iterator[bytes]:
    """The file in chunks of one batch each, the header first."""
    names = [_text(pa.array([n]), dialect) for n in header(source)]
    yield (BOM if dialect.bom else b"") + _line(names, dialect)
    for batch in source.batches():
        if batch.num_rows:
            yield _line(_cells(batch, source, dialect), dialect)
