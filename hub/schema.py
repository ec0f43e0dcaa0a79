"""Frictionless Table Schemas: loading, and vectorised casting and validation of Arrow batches.

Every rule of a schema (type, required, enum, minimum/maximum, minLength/maxLength, pattern) is
checked column-wise with Arrow compute kernels; a cell that breaks a rule becomes a `Problem`
that names the rule, the rows and the offending values. `unique` and `primaryKey` span batches
and are checked by the ingest run once all rows are read.

Without parse options, the common German forms are read as well as ISO ones: dates `01.05.2019`
and `1.5.2019`, datetimes `01.05.2019 14:30[:00]`, booleans ja/nein, j/n, wahr/falsch, integers
`1.234` and numbers `1.234,5`. Only unambiguous forms: whether a number column uses a decimal
comma is decided from all of its values (see `NumberStyle`), and a value with two readings
(`1.234` in a column with decimal points, `01/02/2019`) is reported, never guessed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas  # noqa: F401 - pyarrow imports it when it first makes a scalar; pay that at start-up
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from hub import problem_codes
from hub.errors import PipelineError

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "year": pa.int32(),
}
GEOMETRY_TYPES = {"geojson", "geopoint", "geometry"}
RULES = ("required", "unique", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern")
PARSE_OPTIONS = ("format", "decimalChar", "groupChar", "trueValues", "falseValues",
                 "missingValues")
INTEGER_RE = {"integer": r"^[+-]?[0-9]{1,18}$", "year": r"^[+-]?[0-9]{1,9}$"}  # no overflow
NUMBER_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# German forms: 1.234 (thousands), 1.234,5 / 1,5 / ,5 (decimal comma), dates 1.5.2019
GROUPED_RE = r"^[+-]?[1-9][0-9]{0,2}(\.[0-9]{3})+$"
THREE_DECIMALS_RE = r"^\s*[+-]?(0[0-9]*|[0-9]{4,})?\.[0-9]{3}\s*$"  # 0.125, 1234.567
GERMAN_DECIMAL_RE = r"^[+-]?([0-9]+|[1-9][0-9]{0,2}(\.[0-9]{3})+)?,[0-9]+$"
GERMAN_DATE = "%d.%m.%Y"
GERMAN_DATETIMES = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")
# Booleans: Table Schema's defaults plus German words. `x` (a ticked box) is not among them:
# it has no false counterpart but an empty cell, which is a missing value; set trueValues.
TRUE_VALUES = ("true", "True", "TRUE", "1", "ja", "Ja", "JA", "j", "J", "wahr", "Wahr", "WAHR")
FALSE_VALUES = ("false", "False", "FALSE", "0", "nein", "Nein", "NEIN", "n", "N", "falsch",
                "Falsch", "FALSCH")


@dataclass(frozen=True)
class Field:
    """One column of a table schema."""

    name: str
    type: str = "string"
    format: str = "default"
    constraints: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    description: str = ""
    decimalChar: str | None = None  # None (and groupChar None): decided per column, see module
    groupChar: str | None = None
    trueValues: tuple[str, ...] = TRUE_VALUES
    falseValues: tuple[str, ...] = FALSE_VALUES
    geometryTypes: tuple[str, ...] = ()
    missingValues: tuple[str, ...] | None = None  # field-level (Table Schema v2); else schema's

    @property
    def is_geometry(self) -> bool:
        return self.type in GEOMETRY_TYPES

    @property
    def required(self) -> bool:
        return bool(self.constraints.get("required"))

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]

    def with_options(self, options: dict[str, Any]) -> Field:
        """This field with parse options (format, decimalChar, ...) from a pipeline's `casts`."""
        unknown = set(options) - set(PARSE_OPTIONS)
        if unknown:
            raise PipelineError(
                f"casts for {self.name!r}: unknown option(s) {sorted(unknown)}; "
                f"allowed: {', '.join(PARSE_OPTIONS)}"
            )
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        return replace(self, **opts)


@dataclass(frozen=True)
class TableSchema:
    """A Frictionless Table Schema, with the geometry column as a `geojson` field."""

    name: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()
    missing_values: tuple[str, ...] = ("",)
    source: str = ""

    @property
    def columns(self) -> list[Field]:
        """The attribute (non-geometry) fields."""
        return [f for f in self.fields if not f.is_geometry]

    @property
    def geometry(self) -> Field | None:
        return next((f for f in self.fields if f.is_geometry), None)

    @property
    def unique_keys(self) -> list[tuple[str, ...]]:
        """Column sets whose values must be unique over the whole dataset."""
        keys = [(f.name,) for f in self.columns if f.constraints.get("unique")]
        if self.primary_key and self.primary_key not in keys:
            keys.append(self.primary_key)
        return keys

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(f.name, f.arrow_type) for f in self.columns])

    def as_dict(self) -> dict[str, Any]:
        """The schema as Frictionless JSON (for version metadata)."""
        out: dict[str, Any] = {"fields": []}
        for f in self.fields:
            d: dict[str, Any] = {"name": f.name, "type": f.type}
            if f.title:
                d["title"] = f.title
            if f.description:
                d["description"] = f.description
            if f.format != "default":
                d["format"] = f.format
            if f.constraints:
                d["constraints"] = f.constraints
            if f.geometryTypes:
                d["geometryTypes"] = list(f.geometryTypes)
            out["fields"].append(d)
        if self.primary_key:
            out["primaryKey"] = list(self.primary_key)
        return out


def load_schema(path: Path) -> TableSchema:
    """Read a Table Schema from JSON or YAML, with a message naming the file on any error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"schema file not found: {path}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PipelineError(f"{path}: not a valid schema file: {exc}") from None
    return parse_schema(raw, str(path), path.stem)


def parse_schema(raw: Any, source: str, name: str) -> TableSchema:
    if not isinstance(raw, dict) or not isinstance(raw.get("fields"), list) or not raw["fields"]:
        raise PipelineError(f"{source}: a table schema needs a non-empty list 'fields'")
    fields = []
    for i, spec in enumerate(raw["fields"], 1):
        if not isinstance(spec, dict) or not spec.get("name"):
            raise PipelineError(f"{source}: field #{i} needs a 'name'")
        ftype = spec.get("type", "string")
        if ftype not in ARROW_TYPES and ftype not in GEOMETRY_TYPES:
            raise PipelineError(
                f"{source}: field {spec['name']!r} has unsupported type {ftype!r}; "
                f"use one of {', '.join([*ARROW_TYPES, *sorted(GEOMETRY_TYPES)])}"
            )
        constraints = spec.get("constraints") or {}
        unknown = set(constraints) - set(RULES)
        if unknown:
            raise PipelineError(
                f"{source}: field {spec['name']!r}: unknown constraint(s) {sorted(unknown)}"
            )
        opts = {k: spec[k] for k in PARSE_OPTIONS if k in spec}
        f = Field(
            name=spec["name"],
            type=ftype,
            constraints=constraints,
            title=spec.get("title", ""),
            description=spec.get("description", ""),
            geometryTypes=tuple(spec.get("geometryTypes", ())),
        )
        fields.append(f.with_options(opts) if opts else f)
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise PipelineError(f"{source}: duplicate field names")
    if sum(f.is_geometry for f in fields) > 1:
        raise PipelineError(f"{source}: at most one geometry field is supported")
    pk = raw.get("primaryKey") or ()
    pk = (pk,) if isinstance(pk, str) else tuple(pk)
    if missing := set(pk) - set(names):
        raise PipelineError(f"{source}: primaryKey names unknown field(s) {sorted(missing)}")
    return TableSchema(
        name=name,
        fields=tuple(fields),
        primary_key=pk,
        missing_values=tuple(raw.get("missingValues", ("",))),
        source=source,
    )


@dataclass
class Problem:
    """Rows of one column that break one rule (indices relative to the batch): the English
    `message`, and the same as a `code` with `params` (see `hub.problem_codes`)."""

    column: str
    code: str
    message: str
    rows: np.ndarray
    values: pa.Array
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = problem_codes.checked(self.code, self.params)

    @property
    def rule(self) -> str:
        """The rule broken: required, type, enum, ..., geometry, crs, extent."""
        return problem_codes.rule_of(self.code)


def problem_rows(length: int, problems: list[Problem]) -> np.ndarray:
    """A boolean mask of the rows that have at least one problem."""
    mask = np.zeros(length, dtype=bool)
    for p in problems:
        mask[p.rows] = True
    return mask


@dataclass
class Checked:
    """A batch cast to the schema's types, with every problem found in it."""

    columns: dict[str, pa.Array]
    problems: list[Problem]


@dataclass
class NumberStyle:
    """What the values of one number column read so far say about its decimal mark.

    A value such as `1,5` or `1.234,5` (or `1.234.567`) speaks for a decimal comma, one such as
    `1.5` or `0.125` for a decimal point; `1.234` speaks for neither. The column follows the
    side with more values; the other side's values are reported as mixing the two. `1.234` is
    read as 1234 in a column with a decimal comma, as 1.234 in a column with a decimal point
    that also writes three decimals where they cannot be a thousands group (`0.125`,
    `1234.567`), and is reported as ambiguous otherwise (beside `1.5` alone it may still be a
    German 1234). The counts carry over from one batch of a file to the next.
    """

    comma: int = 0
    point: int = 0
    three_decimals: int = 0  # values like 0.125 or 1234.567: a point before three digits

    @property
    def decimal(self) -> str | None:
        if self.comma == self.point:
            return None
        return "," if self.comma > self.point else "."


@dataclass
class Failure:
    """Cells of one column that could not be cast, for one reason (a `type…` code)."""

    message: str
    rows: np.ndarray
    code: str
    params: dict[str, Any] = field(default_factory=dict)


def check_columns(raw: dict[str, pa.Array], fields: list[Field], missing: tuple[str, ...],
                  length: int, styles: dict[str, NumberStyle] | None = None) -> Checked:
    """Cast raw columns to their fields' types and check every per-cell rule.

    `styles` keeps what number columns have shown so far (pass the same dict for every batch
    of one file).
    """
    columns: dict[str, pa.Array] = {}
    problems: list[Problem] = []
    styles = {} if styles is None else styles
    for f in fields:
        arr = raw.get(f.name)
        if arr is None:
            columns[f.name] = pa.nulls(length, f.arrow_type)
            if f.required:
                problems.append(Problem(f.name, "required", "a value is required",
                                        np.arange(length), pa.nulls(length, pa.string())))
            continue
        typed, failures = cast_array(arr, f, missing, styles.setdefault(f.name, NumberStyle()))
        for failure in failures:
            problems.append(Problem(f.name, failure.code, failure.message, failure.rows,
                                    arr.take(failure.rows), failure.params))
        bad = (np.sort(np.concatenate([x.rows for x in failures])) if failures else None)
        columns[f.name] = typed
        problems.extend(_constraint_problems(f, typed, arr, bad))
    return Checked(columns, problems)


def _casts(f: Field, options: str) -> str:
    return f"set casts: {{{f.name}: {{{options}}}}} in the pipeline"


def _type_failure(f: Field, rows: np.ndarray) -> Failure:
    """Cells that are not of `f`'s type: what was expected, and the pipeline setting that
    reads other forms."""
    if f.type in ("date", "datetime") and f.format not in ("default", "any"):
        example = dt.datetime(2019, 5, 1, 14, 30).strftime(f.format)
        return Failure(f"not a {f.type} in the format {f.format!r} (like {example}); "
                       f"check casts: {{{f.name}: {{format: ...}}}} in the pipeline", rows,
                       f"type.{f.type}", {"example": example})
    if f.type == "date":
        return Failure("expected a date like 2019-05-01 or 01.05.2019; "
                       + _casts(f, "format: '%d/%m/%Y'"), rows, "type.date")
    if f.type == "datetime":
        return Failure("expected a datetime like 2019-05-01T14:30:00Z or 01.05.2019 14:30; "
                       + _casts(f, "format: '%d/%m/%Y %H:%M'"), rows, "type.datetime")
    if f.type == "boolean":
        allowed = [*f.trueValues[:6], *f.falseValues[:6]]
        return Failure(f"not a boolean (expected one of {', '.join(allowed)}, …); "
                       + _casts(f, "trueValues: [x], falseValues: ['-']"), rows,
                       "type.boolean", {"allowed": allowed})
    if f.type == "integer":
        return Failure("expected an integer like 1234 or 1.234 (at most 18 digits); for "
                       "placeholders such as 'k. A.' " + _casts(f, "missingValues: ['k. A.']"),
                       rows, "type.integer")
    if f.type == "year":
        return Failure("expected a year like 2019; " + _casts(f, "missingValues: ['k. A.']"),
                       rows, "type.year")
    if f.decimalChar is not None or f.groupChar is not None:
        return Failure(f"expected a number with decimal mark {f.decimalChar or '.'!r}"
                       + (f" and thousands separator {f.groupChar!r}" if f.groupChar else "")
                       + "; check casts: {" + f.name + ": {decimalChar, groupChar}} in the "
                       "pipeline", rows, "type.number",
                       {"decimal": f.decimalChar or ".", "group": f.groupChar})
    return Failure("expected a number like 1234.5 or 1.234,5; "
                   + _casts(f, "decimalChar: ',', groupChar: '.'"), rows, "type.number")


def _nonzero(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.flatnonzero(np.asarray(pc.fill_null(mask, False)))


def _constraint_problems(f: Field, typed: pa.Array, raw: pa.Array,
                         bad: np.ndarray | None) -> list[Problem]:
    out: list[Problem] = []
    c = f.constraints

    def add(rule: str, message: str, mask: pa.Array, **params: Any) -> None:
        rows = _nonzero(mask)
        if rows.size:
            out.append(Problem(f.name, rule, message, rows, raw.take(rows), params))

    if c.get("required") and typed.null_count:
        isnull = pc.is_null(typed)
        if bad is not None and bad.size:  # a cell that failed its type is not also "missing"
            isnull = pc.and_(isnull, pc.invert(pa.array(np.isin(np.arange(len(typed)), bad))))
        add("required", "a value is required", isnull)
    if "enum" in c:
        allowed = pa.array(c["enum"]).cast(typed.type)
        add("enum", f"not one of the allowed values {c['enum']}",
            pc.and_(pc.is_valid(typed), pc.invert(pc.is_in(typed, value_set=allowed))),
            allowed=c["enum"])
    for rule, op, word in (("minimum", pc.less, "below"), ("maximum", pc.greater, "above")):
        if rule in c:
            bound = pa.scalar(c[rule]).cast(typed.type)
            add(rule, f"{word} the {rule} {c[rule]}", op(typed, bound), limit=c[rule])
    if f.type == "string":
        if "minLength" in c:
            add("minLength", f"shorter than {c['minLength']} characters",
                pc.less(pc.utf8_length(typed), pa.scalar(c["minLength"], pa.int32())),
                limit=c["minLength"])
        if "maxLength" in c:
            add("maxLength", f"longer than {c['maxLength']} characters",
                pc.greater(pc.utf8_length(typed), pa.scalar(c["maxLength"], pa.int32())),
                limit=c["maxLength"])
        if "pattern" in c:
            add("pattern", f"does not match the pattern {c['pattern']!r}",
                pc.invert(pc.match_substring_regex(typed, f"^(?:{c['pattern']})$")),
                pattern=c["pattern"])
    return out


def cast_array(arr: pa.Array, f: Field, missing: tuple[str, ...],
               style: NumberStyle | None = None) -> tuple[pa.Array, list[Failure]]:
    """Cast one raw column to `f`'s type; return the typed array and the cells that failed."""
    target = f.arrow_type
    if arr.type == target and f.type != "string":
        return arr, []
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target), []
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if f.type == "string":
            return _native_to_string(arr), []
        try:
            return arr.cast(target), []
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            arr = _native_to_string(arr)
    missing = f.missingValues if f.missingValues is not None else missing
    text = _missing_to_null(arr, missing)
    if f.type == "string":
        return text, []  # strings are kept as given (Table Schema: no trimming)
    if f.type in ("integer", "year"):
        if f.type == "integer" and f.groupChar is None and _has_byte(text, "."):
            text = pc.utf8_trim_whitespace(text)  # 1.234: a dot in an integer groups digits
            text = pc.if_else(pc.match_substring_regex(text, GROUPED_RE),
                              pc.replace_substring(text, ".", ""), text)
        return _failed(f, *_cast_checked(_strip_group(text, f), target, INTEGER_RE[f.type]))
    if f.type == "number":
        if f.decimalChar is None and f.groupChar is None:
            return _cast_number(text, f, style or NumberStyle())
        mark = f.decimalChar or "."
        if mark != "." and f.groupChar != "." and _has_byte(text, "."):
            # a point that is neither the decimal mark nor the group mark: not read as either
            text = pc.if_else(pc.match_substring(text, "."), pa.scalar("?"), text)
        text = _decimal_point(_strip_group(text, f), mark)
        return _failed(f, *_cast_checked(text, target, NUMBER_RE))
    text = pc.utf8_trim_whitespace(text)
    if f.type == "boolean":
        true = pc.is_in(text, value_set=pa.array(f.trueValues))
        false = pc.is_in(text, value_set=pa.array(f.falseValues))
        valid = pc.or_(true, false)
        typed = pc.if_else(valid, true, pa.scalar(None, pa.bool_()))
        return _failed(f, typed, _nonzero(pc.and_(pc.is_valid(text), pc.invert(valid))))
    return _cast_temporal(text, f)


def _failed(f: Field, typed: pa.Array, bad: np.ndarray) -> tuple[pa.Array, list[Failure]]:
    return typed, [_type_failure(f, bad)] if bad.size else []


def _has_byte(text: pa.Array, char: str) -> bool:
    """Whether any cell may contain `char` (a fast scan of the bytes; True when unsure)."""
    if isinstance(text, pa.ChunkedArray) or not pa.types.is_string(text.type):
        return True
    data = text.buffers()[2]
    if data is None:
        return False
    return bool((np.frombuffer(data, dtype=np.uint8) == ord(char)).any())


def _mask(text: pa.Array, regex: str) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.match_substring_regex(text, regex), False))


def _count(text: pa.Array, char: str) -> int:
    return int(pc.sum(pc.match_substring(text, char)).as_py() or 0)


def _cast_number(text: pa.Array, f: Field, style: NumberStyle) -> tuple[pa.Array, list[Failure]]:
    """A number column without parse options: decimal point or comma, decided per column."""
    target = f.arrow_type
    comma, point = _has_byte(text, ","), _has_byte(text, ".")
    if not comma and not point:  # integers (or no numbers at all)
        return _failed(f, *_cast_checked(text, target, NUMBER_RE))
    if comma and not point and not style.point:  # 1,5: decimal commas, nothing against them
        style.comma += _count(text, ",")
        return _failed(f, *_cast_checked(_decimal_point(text, ","), target, NUMBER_RE))
    if point and not comma and not style.comma \
            and not _mask(text, r"^\s*[+-]?[1-9][0-9]{0,2}(\.[0-9]{3})+\s*$").any():
        style.point += _count(text, ".")  # 1.5: decimal points, and no 1.234 to doubt
        style.three_decimals += int(_mask(text, THREE_DECIMALS_RE).sum())
        return _failed(f, *_cast_checked(text, target, NUMBER_RE))
    t = pc.utf8_trim_whitespace(text)
    whole = _mask(t, r"^[+-]?[0-9]+$")
    grouped = _mask(t, GROUPED_RE)  # 1.234 or 1.234.567
    several = grouped & (np.asarray(pc.fill_null(pc.count_substring(t, "."), 0)) > 1)
    german = _mask(t, GERMAN_DECIMAL_RE) | several
    plain = _mask(t, NUMBER_RE) & ~whole & ~grouped
    style.comma += int(german.sum())
    style.point += int(plain.sum())
    style.three_decimals += int((plain & _mask(t, THREE_DECIMALS_RE)).sum())
    ambiguous = grouped & ~several
    if style.decimal == ",":
        ok, mixed, ambiguous = whole | german | grouped, plain, np.zeros_like(whole)
        t = _decimal_point(pc.replace_substring(t, ".", ""), ",")
    elif style.decimal == "." and style.three_decimals:
        ok, mixed, ambiguous = whole | plain | ambiguous, german, np.zeros_like(whole)
    elif style.decimal == ".":
        ok, mixed = whole | plain, german
    else:
        ok, mixed = whole, german | plain
    typed = pc.if_else(pa.array(ok), t, None).cast(target)
    invalid = np.asarray(pc.is_valid(t)) & ~(ok | mixed | ambiguous)
    failures = [_type_failure(f, np.flatnonzero(invalid))]
    failures.append(Failure(
        "ambiguous number: 1.234 is 1234 with a thousands separator or 1.234 with a decimal "
        "point, and the column's other values do not tell; "
        + _casts(f, "groupChar: '.', decimalChar: ','") + " (or decimalChar: '.')",
        np.flatnonzero(ambiguous), "type.number.ambiguous"))
    failures.append(Failure(
        "the column mixes decimal commas (1,5 or 1.234,5) and decimal points (1.5); "
        + _casts(f, "decimalChar: ','") + " (or '.') to say which is meant",
        np.flatnonzero(mixed), "type.number.mixed"))
    return typed, [failure for failure in failures if failure.rows.size]


def _decimal_point(text: pa.Array, mark: str) -> pa.Array:
    """Decimal commas to points; a one-byte mark is swapped in the data buffer (same lengths)."""
    if mark == ".":
        return text
    if len(mark.encode()) != 1 or not pa.types.is_string(text.type) or text.offset:
        return pc.replace_substring(text, mark, ".")
    validity, offsets, data = text.buffers()
    if data is None:
        return text
    raw = np.frombuffer(data, dtype=np.uint8).copy()
    raw[raw == ord(mark)] = ord(".")
    return pa.StringArray.from_buffers(len(text), offsets, pa.py_buffer(raw), validity,
                                       text.null_count)


def _missing_to_null(text: pa.Array, missing: tuple[str, ...]) -> pa.Array:
    """Cells equal to a missing value become null; the common case reads only the offsets."""
    if tuple(missing) == ("",) and pa.types.is_string(text.type):
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[
            text.offset:text.offset + len(text) + 1]
        empty = np.diff(offsets) == 0
        return pc.if_else(pa.array(empty), None, text) if empty.any() else text
    found = pc.is_in(pc.utf8_trim_whitespace(text), value_set=pa.array(missing, pa.string()))
    return pc.if_else(found, None, text)


def _native_to_string(arr: pa.Array) -> pa.Array:
    if pa.types.is_floating(arr.type):  # 12.0 from a spreadsheet is "12", not "12.0"
        values = arr.to_numpy(zero_copy_only=False)
        whole = np.isfinite(values) & (np.mod(values, 1) == 0) & (np.abs(values) < 2**53)
        as_int = pc.cast(pc.if_else(pa.array(whole), arr, None), pa.int64(), safe=False)
        return pc.if_else(pa.array(whole), pc.cast(as_int, pa.string()), pc.cast(arr, pa.string()))
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        return pc.cast(arr, pa.string())
    return arr.cast(pa.string())


def _strip_group(text: pa.Array, f: Field) -> pa.Array:
    return pc.replace_substring(text, f.groupChar, "") if f.groupChar else text


def _cast_checked(text: pa.Array, target: pa.DataType, regex: str) -> tuple[pa.Array, np.ndarray]:
    """Cast strings; fast when all are valid, precise (row by row) when some are not."""
    try:
        return text.cast(target), np.empty(0, dtype=np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = pc.utf8_trim_whitespace(text)
    ok = pc.match_substring_regex(text, regex)
    typed = pc.if_else(ok, text, None).cast(target)
    return typed, _nonzero(pc.and_(pc.is_valid(text), pc.invert(ok)))


def _cast_temporal(text: pa.Array, f: Field) -> tuple[pa.Array, list[Failure]]:
    """Dates and datetimes: vectorised when the column is clean, strict row by row otherwise.

    Arrow's strptime rolls impossible dates over (30.02. becomes 01.03.), so every value whose
    parse does not format back to itself is checked again with Python's strict parser.
    """
    target = f.arrow_type
    if f.format in ("default", "any"):
        if _has_byte(text, "-"):  # ISO 8601; German forms have no '-'
            try:
                if f.type == "date":
                    return text.cast(target), []
                zoned = pc.match_substring_regex(text, r"(Z|[+-][0-9]{2}:?[0-9]{2})$")
                if pc.all(pc.fill_null(zoned, True)).as_py():
                    return text.cast(target), []
                if not pc.any(pc.fill_null(zoned, False)).as_py():
                    naive = text.cast(pa.timestamp("us"))
                    return naive.cast(target), []
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        return _german_or_iso(text, f)
    parsed = pc.strptime(text, format=f.format, unit="us", error_is_null=True)
    doubtful = pc.and_(pc.is_valid(text), pc.invert(pc.fill_null(
        pc.equal(pc.strftime(parsed, format=f.format), text), False)))
    if not pc.any(doubtful).as_py():
        typed = parsed.cast(pa.date32()) if f.type == "date" else \
            pc.assume_timezone(parsed, "UTC") if parsed.type.tz is None else parsed
        return typed, []
    return _failed(f, *_strict(text, f, f.format))


def _german_or_iso(text: pa.Array, f: Field) -> tuple[pa.Array, list[Failure]]:
    """`01.05.2019`, `1.5.2019` (and `01.05.2019 14:30[:00]`) vectorised, ISO 8601 row by row.

    Both readings are unambiguous, so a column may mix them. Values with slashes (01/02/2019:
    1 February or January 2?) are reported as ambiguous with the setting that decides.
    """
    padded = pc.replace_substring_regex(text, r"^([0-9])\.", r"0\1.")
    padded = pc.replace_substring_regex(padded, r"^([0-9]{2})\.([0-9])\.", r"\1.0\2.")
    if f.type == "datetime":
        padded = pc.replace_substring_regex(padded, r"^([0-9.]{10}) ([0-9]):", r"\1 0\2:")
    n = len(text)
    parsed = pa.nulls(n, pa.timestamp("us"))
    ok = np.zeros(n, dtype=bool)
    shapes = ([(GERMAN_DATE, r"^[0-9]{2}\.[0-9]{2}\.[0-9]{4}$")] if f.type == "date" else
              [(GERMAN_DATETIMES[0], r"^[0-9]{2}\.[0-9]{2}\.[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}$"),
               (GERMAN_DATETIMES[1], r"^[0-9]{2}\.[0-9]{2}\.[0-9]{4} [0-9]{2}:[0-9]{2}$")])
    for fmt, shape in shapes:
        fits = _mask(padded, shape)
        if not fits.any():
            continue
        value = pc.strptime(pc.if_else(pa.array(fits), padded, None), format=fmt, unit="us",
                            error_is_null=True)
        exact = fits & _same_parts(padded, value, fmt)  # 31.02. rolls over to 03.03.
        parsed = pc.if_else(pa.array(exact), value, parsed)
        ok |= exact
    rest = np.flatnonzero(np.asarray(pc.is_valid(text)) & ~ok)
    if f.type == "date":
        typed = parsed.cast(pa.date32())
    else:
        typed = pc.assume_timezone(parsed, "UTC").cast(f.arrow_type)
    if not rest.size:
        return typed, []
    iso, bad = _strict(text.take(pa.array(rest)), f, None)
    parsed_rest = np.setdiff1d(np.arange(rest.size), bad)
    if parsed_rest.size:
        mask = np.zeros(n, dtype=bool)
        mask[rest[parsed_rest]] = True
        typed = pc.replace_with_mask(typed, pa.array(mask), iso.take(pa.array(parsed_rest)))
    bad = rest[bad]
    slashed = _mask(text.take(pa.array(bad)), r"^\s*[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}\b")
    fmt = "%d/%m/%Y" + ("" if f.type == "date" else " %H:%M")
    failures = [_type_failure(f, bad[~slashed]),
                Failure(f"ambiguous {f.type}: is 01/02/2019 the 1st of February or January "
                        "2nd? " + _casts(f, f"format: '{fmt}'") + " (or '%m/%d/%Y')",
                        bad[slashed], f"type.{f.type}.ambiguous")]
    return typed, [failure for failure in failures if failure.rows.size]


def _same_parts(text: pa.Array, value: pa.Array, fmt: str) -> np.ndarray:
    """Whether day, month (hour, minute, second) of `value` are those written in `text`."""
    parts = [(0, pc.day), (3, pc.month)]
    if "%H" in fmt:
        parts += [(11, pc.hour), (14, pc.minute)]
    if "%S" in fmt:
        parts.append((17, pc.second))
    same = np.ones(len(text), dtype=bool)
    for start, part in parts:
        written = pc.utf8_slice_codeunits(text, start, start + 2)
        written = pc.cast(pc.if_else(pc.match_substring_regex(written, r"^[0-9]{2}$"), written,
                                     None), pa.int64())
        same &= np.asarray(pc.fill_null(pc.equal(written, part(value)), False))
    return same


def _strict(text: pa.Array, f: Field, fmt: str | None) -> tuple[pa.Array, np.ndarray]:
    """Row-by-row parsing with Python's datetime (ISO 8601 when `fmt` is None)."""
    values, bad = [], []
    for i, value in enumerate(text.to_pylist()):
        if value is None:
            values.append(None)
            continue
        try:
            if fmt is None:
                parsed = (dt.date.fromisoformat(value) if f.type == "date"
                          else dt.datetime.fromisoformat(value.replace(" ", "T", 1)))
            else:
                parsed = dt.datetime.strptime(value, fmt)
                parsed = parsed.date() if f.type == "date" else parsed
        except ValueError:
            values.append(None)
            bad.append(i)
            continue
        if isinstance(parsed, dt.datetime):
            parsed = (parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None
                      else parsed.astimezone(dt.UTC))
        values.append(parsed)
    return pa.array(values, f.arrow_type), np.array(bad, dtype=np.int64)
