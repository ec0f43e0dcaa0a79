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
import json
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


# Errors that stop a run before it commits (the run's `error`), a file's preview or an upload,
# as codes with parameters too: those a data manager fixes in the mapping or the file. Others
# keep their English message.
FAILURES: dict[str, tuple[str, ...]] = {
    "no-column": ("file", "column", "field"),  # field: the required field it is mapped to
    "no-rows": ("files",),
    "filter-keeps-none": ("files", "rows"),
    "rejected": ("count",),
    "no-valid-rows": ("read", "quarantined", "skipped"),
    "no-geometry": ("file",),
    "unknown-crs": ("file",),
    # a file that cannot be read at all (hub.ingest.readers, .delimited, .sources): `file` is
    # the file's name as the run names it; `row` a row as a spreadsheet shows it, None if unknown
    "read.missing": ("file",),
    "read.too-large": ("file", "size", "limit"),  # sizes in bytes
    "read.empty": ("file",),
    "read.blank": ("file",),  # only blank lines
    "read.format": ("file", "formats"),  # the format cannot be told from the name
    "read.unsupported": ("file", "format"),
    "read.options": ("file", "options", "allowed"),
    "read.no-data": ("file",),  # a zip or folder with neither a Shapefile nor GTFS stops.txt
    "read.zip": ("file",),  # not a valid zip archive
    "read.no-stops": ("file",),  # a GTFS zip without stops.txt
    "read.utf16": ("file",),
    "read.binary": ("file", "offset"),
    "read.encoding": ("file", "row", "column", "encoding"),  # bytes not valid in `encoding`
    "read.encoding-unknown": ("file", "encoding"),  # a declared encoding the hub does not read
    "read.fields": ("file", "row", "expected", "found"),  # a ragged row (preview: it stops)
    "read.quote": ("file", "row"),  # a quote opened in `row` and never closed
    "read.csv": ("file", "row"),  # pyarrow cannot parse (an open quote): after `row`
    "read.header-row": ("file", "header_row", "last"),
    "read.xlsx": ("file",),  # not a readable workbook
    "read.no-sheet": ("file", "sheet", "sheets"),
    "read.empty-sheet": ("file", "sheet"),
    "read.no-layer": ("file", "layer", "layers"),
    "read.layers": ("file", "layers"),  # several layers (a zip with several Shapefiles)
    "read.geodata": ("file", "format"),  # GDAL cannot open it
    "read.feature": ("file", "row"),  # GDAL fails after feature `row`
    "read.parquet": ("file",),
    "read.parquet-encoding": ("file", "encoding"),
    # a remote source that cannot be fetched (hub.ingest.remote): `url` the address asked
    "fetch.resolve": ("host",),  # the name cannot be resolved
    "fetch.private": ("host", "address"),  # not a public address (HUB_FETCH_ALLOW)
    "fetch.timeout": ("url", "seconds"),  # no answer in time
    "fetch.connect": ("url",),
    "fetch.status": ("url", "status"),  # an HTTP error status
    "fetch.too-large": ("url", "limit"),  # limit in bytes
    "fetch.stalled": ("url", "seconds"),  # the download stopped for longer than the timeout
    "fetch.broken": ("url",),  # the download broke off
    "fetch.html": ("url",),  # an HTML page instead of data
    "fetch.ckan": ("url",),  # no JSON from a CKAN API
    "fetch.ckan-resource": ("url", "resource"),  # not found, or without a URL
    # WFS / OGC API Features pages (`page` counts from 1; `source` the source as the run names it)
    "fetch.geojson": ("url", "page"),  # not GeoJSON
    "fetch.features": ("url", "page"),  # no `features` list
    "fetch.returned": ("url", "page", "returned", "found"),  # numberReturned disagrees
    "fetch.changed": ("url", "page", "matched", "expected"),  # numberMatched changed
    "fetch.order": ("url", "page", "id", "first_page"),  # a feature on two pages
    "fetch.pages": ("source", "limit"),  # more pages than allowed
    "fetch.incomplete": ("source", "expected", "received", "pages"),
    # an upload the workspace refuses (hub.intake.files), nothing kept
    "upload.none": (),
    "upload.too-many": ("count", "limit"),
    "upload.same-name": (),
    "upload.no-name": (),
    "upload.folder": ("file",),
    "upload.hidden": ("file",),
    "upload.kind": ("file", "formats"),
    "upload.too-large": ("file", "limit"),  # limit in bytes; file None: the body
    "upload.empty": ("file",),
    "upload.binary": ("file", "format"),
    "upload.geojson": ("file",),
    "upload.gpkg": ("file",),
    "upload.xlsx": ("file",),
    "upload.not-zip": ("file",),
    "upload.zip": ("file",),  # damaged or unsupported
    "upload.zip-entries": ("file", "count", "limit"),
    "upload.zip-path": ("file", "member"),
    "upload.zip-bomb": ("file", "member", "limit"),
    "upload.zip-unpacked": ("file", "limit"),
    "upload.no-shapefile": ("file",),
    "upload.no-dbf": ("file",),
    # a mapping form that cannot become a pipeline (hub.intake.mapping)
    "mapping.schema": ("schemas",),  # none or an unknown one chosen; schemas: those offered
    "mapping.choice": ("field", "value", "allowed"),  # a value the form does not offer
    "mapping.coordinates": (),  # lon/lat without both columns
    "mapping.wkt": (),
    "mapping.crs": (),
    "mapping.source": (),  # neither a file nor a remote source
    # a run the guard refuses (hub.ingest.guard): `reasons` lists the codes below with their
    # parameters; shares in percent (`share` found, `max_share` allowed)
    "guard": ("reasons",),
    "guard.quarantined": ("quarantined", "read", "outside", "share", "max_share"),
    "guard.outside": ("outside", "read", "share", "max_share"),
    "guard.shrink": ("rows", "current", "share", "max_share"),
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
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# The quarantine file keeps beside each row's English `_errors` its problems as data: a JSON
# list of {"column", "code", "params", "value"} in this column (the workspace's download says
# them in the page's language; quarantines written before it have none).
CODES_COLUMN = "_codes"
VALUE_KEPT = 200  # characters of a cell's value kept there (the row holds all of it)


def noted(column: str, code: str, params: dict[str, Any], value: Any) -> dict[str, Any]:
    """One problem of a quarantined row, as `CODES_COLUMN` lists it."""
    shown = None if value is None else str(value)[:VALUE_KEPT]
    return {"column": column, "code": code, "params": checked(code, params), "value": shown}


def dumped(problems: list[dict[str, Any]]) -> str | None:
    return json.dumps(problems, ensure_ascii=False) if problems else None
