"""CQL2 text (OGC 21-065, Features Part 3 `filter=`): parsed into a typed, hashable tree.

    tree = parse("art = 'Hospiz' AND plaetze > 20", queryables, "geometry", crs_mod.DEFAULT)

Supported: basic CQL2 (`=`, `<>`, `<`, `<=`, `>`, `>=`, `AND`, `OR`, `NOT`, parentheses,
`IS [NOT] NULL`, `TRUE`/`FALSE`), the advanced comparison operators (`[NOT] LIKE` with `%`, `_`
and `\\` as escape, `[NOT] BETWEEN`, `[NOT] IN (…)`), `CASEI(…)` and `S_INTERSECTS(geometry, …)`
with a `BBOX(…)` or any WKT literal, whose coordinates are in `filter-crs` (its axis order).
One side of a comparison is a queryable property, the other a literal of the property's type
(`DATE('2025-01-31')` for dates, `TIMESTAMP('…Z')` for date-times; a quoted RFC 3339 date is
accepted too, 0/1 for booleans, and `ILIKE` as `CASEI(…) LIKE CASEI(…)`: GDAL writes these).
Every problem is a
`BadParameter("filter", "at character N: …")`. Nothing here builds SQL: `cql2_eval` evaluates the
tree with Arrow compute kernels over the layer in memory.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import shapely

from hub.api.ogc import crs as crs_mod
from hub.api.ogc.params import Area, BadParameter, make_area
from hub.schema import Field

MAX_LENGTH = 40_000  # characters of filter text (uvicorn refuses request lines over ~64 kB)
MAX_DEPTH = 32  # nested parentheses / NOT
MAX_PREDICATES = 256  # conditions in one filter (each is a pass over the candidate rows)
MAX_LIST = 10_000  # values in one IN list

NUMERIC = ("integer", "number", "year")
COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
KIND_OF_FIELD = {"string": "string", "integer": "number", "number": "number", "year": "number",
                 "boolean": "boolean", "date": "date", "datetime": "timestamp"}
WKT_TYPES = ("POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON",
             "GEOMETRYCOLLECTION")
SPATIAL_OTHERS = ("S_CONTAINS", "S_CROSSES", "S_DISJOINT", "S_EQUALS", "S_OVERLAPS",
                  "S_TOUCHES", "S_WITHIN")
KEYWORDS = {"AND", "OR", "NOT", "LIKE", "ILIKE", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE",
            "CASEI", "DATE", "TIMESTAMP", "S_INTERSECTS", "BBOX", *WKT_TYPES, *SPATIAL_OTHERS}

# -- the tree (frozen, hashable: it is part of the selection cache key) ---------------------------


@dataclass(frozen=True)
class And:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    part: Any


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class Compare:
    op: str  # one of COMPARISONS, the property on the left
    prop: str
    value: Any
    casei: bool = False


@dataclass(frozen=True)
class Like:
    prop: str
    pattern: str
    casei: bool = False


@dataclass(frozen=True)
class Between:
    prop: str
    low: Any
    high: Any


@dataclass(frozen=True)
class In:
    prop: str
    values: tuple[Any, ...]
    casei: bool = False


@dataclass(frozen=True)
class IsNull:
    prop: str


@dataclass(frozen=True)
class Intersects:
    """S_INTERSECTS(geometry, literal): a box (as an `Area`) or a geometry given as WKB in
    `crs` with lon/lat (x/y) axis order."""

    area: Area | None
    wkb: bytes | None
    crs: crs_mod.Crs


# -- tokens ----------------------------------------------------------------------------------------

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")+")
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d][\w.:]*)
  | (?P<op><>|<=|>=|!=|[=<>(),+\-*/%^|])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # string, quoted, number, word, op, end
    text: str
    at: int  # 0-based offset in the filter text

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def tokens(text: str) -> list[Token]:
    out, at = [], 0
    while at < len(text):
        match = TOKEN.match(text, at)
        if match is None:
            snippet = text[at] if text[at].isprintable() else repr(text[at])
            if text[at] in "'\"":
                raise _error(at, f"unterminated {'string' if text[at] == chr(39) else 'name'}")
            raise _error(at, f"unexpected character {snippet!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append(Token(kind, match.group(), at))
        at = match.end()
    out.append(Token("end", "", len(text)))
    return out


def _error(at: int, message: str) -> BadParameter:
    return BadParameter("filter", f"at character {at + 1}: {message}")


# -- literals with their CQL2 kind ----------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, boolean, date, timestamp
    value: Any
    at: int
    casei: bool = False


@dataclass(frozen=True)
class Property:
    name: str
    field: Field | None  # None: the geometry
    at: int
    casei: bool = False


# -- the parser ------------------------------------------------------------------------------


class Parser:
    """Recursive descent over the CQL2 text grammar (the subset named in the module doc)."""

    def __init__(self, text: str, queryables: dict[str, Field], geometry: str | None,
                 crs: crs_mod.Crs):
        self.text, self.queryables, self.geometry, self.crs = text, queryables, geometry, crs
        self.toks = tokens(text)
        self.i = 0
        self.depth = 0
        self.predicates = 0

    # token helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def word(self, *words: str) -> bool:
        if self.tok.upper in words:
            self.take()
            return True
        return False

    def expect(self, text: str) -> Token:
        tok = self.tok
        if tok.text.upper() != text or tok.kind not in ("op", "word"):
            found = "the end of the filter" if tok.kind == "end" else repr(tok.text)
            raise _error(tok.at, f"expected {text!r}, found {found}")
        return self.take()

    def fail(self, message: str, tok: Token | None = None) -> BadParameter:
        return _error((tok or self.tok).at, message)

    # grammar
    def parse(self) -> Any:
        tree = self.disjunction()
        if self.tok.kind != "end":
            raise self.fail(f"unexpected {self.tok.text!r} (missing AND/OR?)")
        return tree

    def disjunction(self) -> Any:
        parts = [self.conjunction()]
        while self.word("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Any:
        parts = [self.negation()]
        while self.word("AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep")

    def negation(self) -> Any:
        if self.tok.upper == "NOT":
            self.take()
            self.nested()
            part = self.negation()
            self.depth -= 1
            return Not(part)
        return self.primary()

    def primary(self) -> Any:
        tok = self.tok
        if tok.kind == "op" and tok.text == "(":
            self.take()
            self.nested()
            inner = self.disjunction()
            self.depth -= 1
            self.expect(")")
            return inner
        if tok.upper in ("TRUE", "FALSE") and not self._operator_follows():
            self.take()
            return Const(tok.upper == "TRUE")
        if tok.upper == "S_INTERSECTS":
            return self.spatial()
        if tok.upper in SPATIAL_OTHERS:
            raise self.fail(f"{tok.upper} is not supported; the spatial function offered is "
                            "S_INTERSECTS")
        return self.predicate()

    def _operator_follows(self) -> bool:
        nxt = self.peek()
        return (nxt.kind == "op" and nxt.text in (*COMPARISONS, "!=")) or \
            nxt.upper in ("LIKE", "ILIKE", "BETWEEN", "IN", "IS", "NOT")

    def count(self, tok: Token) -> None:
        self.predicates += 1
        if self.predicates > MAX_PREDICATES:
            raise self.fail(f"has more than {MAX_PREDICATES} conditions", tok)

    def predicate(self) -> Any:
        start = self.tok
        left = self.operand()
        self.count(start)
        tok = self.tok
        if tok.kind == "op" and tok.text in COMPARISONS:
            self.take()
            right = self.operand()
            return self.comparison(tok, left, right)
        if tok.kind == "op" and tok.text == "!=":
            raise self.fail("'!=' is not CQL2; use '<>'")
        negate = self.word("NOT")
        if self.tok.upper in ("LIKE", "ILIKE"):
            casei = self.take().upper == "ILIKE"  # ILIKE: not CQL2, but what GDAL sends
            node = self.like(left, self.operand())
            return self._not(negate, Like(node.prop, node.pattern, node.casei or casei))
        if self.word("BETWEEN"):
            low = self.operand()
            self.expect("AND")
            high = self.operand()
            return self._not(negate, self.between(left, low, high))
        if self.word("IN"):
            return self._not(negate, self.in_list(left))
        if negate:
            raise self.fail("expected LIKE, BETWEEN or IN after NOT")
        if self.word("IS"):
            negate = self.word("NOT")
            self.expect("NULL")
            prop = self.property_of(left, "IS NULL")
            return self._not(negate, IsNull(prop.name))
        if tok.kind == "op" and tok.text in "+-*/%^|":
            raise self.fail("arithmetic is not supported")
        found = "the end of the filter" if tok.kind == "end" else repr(tok.text)
        raise self.fail(f"expected a comparison operator, LIKE, BETWEEN, IN or IS after the "
                        f"operand, found {found}")

    @staticmethod
    def _not(negate: bool, node: Any) -> Any:
        return Not(node) if negate else node

    # operands
    def operand(self) -> Property | Literal:
        tok = self.tok
        if tok.upper == "CASEI":
            self.take()
            self.expect("(")
            inner = self.operand()
            self.expect(")")
            text = inner.kind == "string" if isinstance(inner, Literal) else \
                inner.field is not None and inner.field.type == "string"
            if not text:
                raise self.fail("CASEI takes a text property or a text literal", tok)
            return _with_casei(inner)
        if tok.kind == "string":
            self.take()
            return Literal("string", tok.text[1:-1].replace("''", "'"), tok.at)
        if tok.kind == "number" or (tok.kind == "op" and tok.text in "+-"
                                    and self.peek().kind == "number"):
            sign = 1
            if tok.kind == "op":
                sign = -1 if tok.text == "-" else 1
                self.take()
            num = self.take()
            value: float | int = float(num.text) if any(c in num.text for c in ".eE") \
                else int(num.text)
            if not math.isfinite(value) or (isinstance(value, int) and abs(value) >= 2 ** 63):
                raise self.fail(f"{num.text} is out of range", num)
            return Literal("number", sign * value, tok.at)
        if tok.upper in ("TRUE", "FALSE"):
            self.take()
            return Literal("boolean", tok.upper == "TRUE", tok.at)
        if tok.upper in ("DATE", "TIMESTAMP") and self.peek().text == "(":
            return self.temporal()
        if tok.kind == "quoted" or (tok.kind == "word" and tok.upper not in KEYWORDS):
            self.take()
            name = tok.text[1:-1].replace('""', '"') if tok.kind == "quoted" else tok.text
            if self.tok.kind == "op" and self.tok.text == "(":
                raise self.fail(f"unknown function {name!r}", tok)
            return self.resolve(name, tok)
        if tok.upper in ("BBOX", *WKT_TYPES):
            raise self.fail("a geometry literal is only allowed in S_INTERSECTS")
        found = "the end of the filter" if tok.kind == "end" else repr(tok.text)
        raise self.fail(f"expected a property or a literal, found {found}")

    def resolve(self, name: str, tok: Token) -> Property:
        if name in self.queryables:
            return Property(name, self.queryables[name], tok.at)
        if self.geometry is not None and name == self.geometry:
            return Property(name, None, tok.at)
        known = ", ".join([*self.queryables, *([self.geometry] if self.geometry else [])])
        raise self.fail(f"unknown property {name!r}; queryables: {known}", tok)

    def temporal(self) -> Literal:
        tok = self.take()
        self.expect("(")
        text = self.tok
        if text.kind != "string":
            raise self.fail(f"{tok.upper} takes a quoted string")
        self.take()
        self.expect(")")
        raw = text.text[1:-1]
        try:
            if tok.upper == "DATE":
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
                    raise ValueError
                return Literal("date", dt.date.fromisoformat(raw), tok.at)
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?"
                                r"(Z|[+-]\d{2}:\d{2})", raw, re.IGNORECASE):
                raise ValueError
            moment = dt.datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
            return Literal("timestamp", moment.astimezone(dt.UTC), tok.at)
        except ValueError:
            kind = "a date YYYY-MM-DD" if tok.upper == "DATE" else \
                "an RFC 3339 date-time with offset (e.g. 2025-01-31T12:00:00Z)"
            raise self.fail(f"{raw!r} is not {kind}", text) from None

    # predicates with their type checks
    def property_of(self, operand: Property | Literal, what: str) -> Property:
        if not isinstance(operand, Property):
            raise self.fail(f"{what} needs a property on its left side", _at(operand))
        return operand

    def check(self, prop: Property, lit: Property | Literal, what: str) -> Literal:
        if isinstance(lit, Property):
            raise self.fail("comparing two properties is not supported", _at(lit))
        if prop.field is None:
            raise self.fail(f"the geometry {prop.name!r} can only be used in S_INTERSECTS or "
                            "IS NULL", _at(prop))
        want = KIND_OF_FIELD[prop.field.type]
        if lit.kind == "string" and want in ("date", "timestamp"):
            lit = _temporal_text(lit, want)  # '2025-01-31' for a date, as GDAL writes it
        if lit.kind == "number" and want == "boolean" and lit.value in (0, 1):
            lit = Literal("boolean", bool(lit.value), lit.at)  # GDAL's booleans are 0/1
        if lit.kind != want:
            raise self.fail(f"{what}: {prop.name!r} is of type {prop.field.type}, the value "
                            f"is a {lit.kind}" + _hint(want), _at(lit))
        return lit

    def comparison(self, tok: Token, left: Property | Literal, right: Property | Literal) -> Any:
        op = tok.text
        if isinstance(left, Literal) and isinstance(right, Property):
            left, right = right, left  # 5 < plaetze  ->  plaetze > 5
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        prop = self.property_of(left, f"'{tok.text}'")
        lit = self.check(prop, right, f"'{tok.text}'")
        if prop.field is not None and prop.field.type == "boolean" and op not in ("=", "<>"):
            raise self.fail(f"{prop.name!r} is a boolean; only = and <> apply", tok)
        return Compare(op, prop.name, lit.value, prop.casei or lit.casei)

    def like(self, left: Property | Literal, pattern: Property | Literal) -> Like:
        prop = self.property_of(left, "LIKE")
        lit = self.check(prop, pattern, "LIKE")
        if lit.kind != "string":
            raise self.fail("LIKE needs a text pattern", _at(lit))
        return Like(prop.name, lit.value, prop.casei or lit.casei)

    def between(self, left: Property | Literal, low: Any, high: Any) -> Between:
        prop = self.property_of(left, "BETWEEN")
        a, b = self.check(prop, low, "BETWEEN"), self.check(prop, high, "BETWEEN")
        if a.kind not in ("number", "date", "timestamp"):
            raise self.fail(f"BETWEEN needs a numeric or temporal property; {prop.name!r} is "
                            f"of type {prop.field.type if prop.field else 'geometry'}", _at(prop))
        return Between(prop.name, a.value, b.value)

    def in_list(self, left: Property | Literal) -> In:
        prop = self.property_of(left, "IN")
        self.expect("(")
        values = []
        casei = prop.casei
        while True:
            lit = self.check(prop, self.operand(), "IN")
            casei = casei or lit.casei
            values.append(lit.value)
            if len(values) > MAX_LIST:
                raise self.fail(f"an IN list holds at most {MAX_LIST} values")
            if self.tok.text == ",":
                self.take()
                continue
            self.expect(")")
            break
        return In(prop.name, tuple(values), casei)

    # spatial
    def spatial(self) -> Intersects:
        name = self.take()
        self.count(name)
        self.expect("(")
        first = self.spatial_operand()
        self.expect(",")
        second = self.spatial_operand()
        self.expect(")")
        if isinstance(first, Intersects) and isinstance(second, Property):
            first, second = second, first
        if not isinstance(first, Property) or not isinstance(second, Intersects):
            raise self.fail("S_INTERSECTS needs the geometry property and a geometry literal",
                            name)
        return second

    def spatial_operand(self) -> Property | Intersects:
        tok = self.tok
        if tok.upper == "BBOX":
            return self.bbox()
        if tok.upper in WKT_TYPES:
            return self.wkt()
        operand = self.operand()
        if not isinstance(operand, Property) or operand.field is not None:
            raise self.fail("expected the geometry property or a geometry literal "
                            "(BBOX, POINT, POLYGON, …)", tok)
        return operand

    def bbox(self) -> Intersects:
        tok = self.take()
        self.expect("(")
        values = [self.number()]
        while self.tok.text == ",":
            self.take()
            values.append(self.number())
        self.expect(")")
        if len(values) not in (4, 6):
            raise self.fail(f"BBOX needs 4 or 6 numbers, got {len(values)}", tok)
        if len(values) == 6:
            values = [values[0], values[1], values[3], values[4]]
        try:
            area = make_area(values, self.crs, "filter")
        except BadParameter as exc:
            raise self.fail(f"BBOX: {exc.message}", tok) from None
        return Intersects(area, None, self.crs)

    def number(self) -> float:
        operand = self.operand()
        if not isinstance(operand, Literal) or operand.kind != "number":
            raise self.fail("expected a number", _at(operand))
        return float(operand.value)

    def wkt(self) -> Intersects:
        """A WKT geometry: its extent is found by matching parentheses, shapely reads it."""
        start = self.take()
        if self.tok.upper in ("Z", "M", "ZM"):
            self.take()
        if self.tok.upper == "EMPTY":
            raise self.fail("an empty geometry intersects nothing; give coordinates")
        level = 0
        while True:
            tok = self.take()
            if tok.kind == "end":
                raise self.fail(f"unterminated {start.upper} literal", start)
            if tok.text == "(":
                level += 1
            elif tok.text == ")":
                level -= 1
                if level == 0:
                    break
            elif not (tok.kind == "number" or tok.text in (",", "-", "+")
                      or (start.upper == "GEOMETRYCOLLECTION"
                          and tok.upper in (*WKT_TYPES, "Z", "M", "ZM"))):
                raise self.fail(f"unexpected {tok.text!r} in a {start.upper} literal", tok)
            if level <= 0:
                raise self.fail(f"{start.upper} needs its coordinates in parentheses", tok)
        source = self.text[start.at:tok.at + 1]
        try:
            geom = shapely.from_wkt(source)
        except (shapely.errors.GEOSException, ValueError) as exc:
            reason = str(exc).split("\n")[0]
            raise self.fail(f"invalid {start.upper} literal ({reason})", start) from None
        coords = shapely.get_coordinates(geom)
        if geom is None or shapely.is_empty(geom) or not len(coords) or \
                not (abs(coords) < 1e12).all():
            raise self.fail(f"invalid {start.upper} literal", start)
        if self.crs.lat_first:
            geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
        if self.crs.geographic:
            lon, lat = coords[:, 1 if self.crs.lat_first else 0], \
                coords[:, 0 if self.crs.lat_first else 1]
            if not ((abs(lat) <= 90).all() and (abs(lon) <= 180).all()):
                raise self.fail(f"{start.upper}: coordinates outside lon/lat range", start)
        if not shapely.is_valid(geom):
            geom = shapely.make_valid(geom)
        return Intersects(None, shapely.to_wkb(geom), self.crs)


def _temporal_text(lit: Literal, want: str) -> Literal:
    """A quoted RFC 3339 date (or date-time, for date-time properties) read as DATE(…) or
    TIMESTAMP(…); anything else stays a string (and is then refused as a type mismatch)."""
    raw = lit.value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T?", raw):  # GDAL writes '2025-01-31T'
            day = dt.date.fromisoformat(raw.rstrip("T"))
            if want == "date":
                return Literal("date", day, lit.at)
            return Literal("timestamp", dt.datetime(day.year, day.month, day.day,
                                                    tzinfo=dt.UTC), lit.at)
        if want == "timestamp" and re.fullmatch(
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?", raw,
                re.IGNORECASE):
            moment = dt.datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
            return Literal("timestamp", moment.astimezone(dt.UTC), lit.at)
    except ValueError:
        pass
    return lit


def _with_casei(operand: Property | Literal) -> Property | Literal:
    if isinstance(operand, Literal):
        return Literal(operand.kind, operand.value, operand.at, True)
    return Property(operand.name, operand.field, operand.at, True)


def _at(operand: Property | Literal) -> Token:
    return Token("word", "", operand.at)


def _hint(kind: str) -> str:
    return {"date": " (write DATE('YYYY-MM-DD'))",
            "timestamp": " (write TIMESTAMP('YYYY-MM-DDThh:mm:ssZ'))",
            "string": " (quote text with single quotes)",
            "boolean": " (TRUE or FALSE)"}.get(kind, "")


def parse(text: str, queryables: dict[str, Field], geometry: str | None,
          crs: crs_mod.Crs = crs_mod.DEFAULT) -> Any:
    """The tree of a CQL2 text filter, checked against the collection's queryables."""
    if len(text) > MAX_LENGTH:
        raise BadParameter("filter", f"is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise BadParameter("filter", "is empty; give a CQL2 text expression")
    return Parser(text, queryables, geometry, crs).parse()
