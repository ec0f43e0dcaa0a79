"""The Solr/Lucene query subset CKAN clients send to `package_search` (`q`, `fq`, `fq_list`),
compiled into catalog search expressions (`hub.catalog.expr`); the catalog evaluates them.

Grammar (Lucene's standard syntax with CKAN's `q.op=AND`; precedence NOT > AND > OR):

    query   := or EOF                      empty, whitespace or `""` alone: all records
    or      := and (("OR" | "||") and)*
    and     := clause (("AND" | "&&")? clause)*
    clause  := ("NOT" | "!" | "-" | "+")? primary
    primary := "(" or ")" | [field ":"] (term | "phrase" | range | "(" or ")")
    range   := ("[" | "{") bound "TO" bound ("]" | "}")      bound: value, "quoted" or *

A term may end in `*` (prefix); `\\` escapes any character. `field:(…)` applies the field to
every term inside. Everything else (local params, wildcards, fuzzy, boosts, regexes, nested
queries, unknown fields) raises `SearchQueryError`: never a silently different answer.
Contract: ../shared/reference/ckan-dcat.md §1.5, §1.8.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from hub.catalog.expr import All, And, Exists, Expr, Match, Not, Or, Range, Text

MAX_LENGTH = 10_000
MAX_DEPTH = 50
NOTHING = Not(All())

# CKAN's Solr fields -> catalog fields, by kind
_TEXT = {"text": None, "title": "title", "notes": "description", "res_name": "resources",
         "res_description": "resources", "res_url": "resources"}
_KEYWORD = {"id": "id", "name": "name", "tags": "keyword", "groups": "theme",
            "organization": "organization", "res_format": "format", "license_id": "license",
            "state": "state"}
_TIME = {"metadata_modified": "changed", "metadata_created": "created"}
_ORDERED = {"name": "name", "title_string": "title", **_TIME}
_CONSTANT = ("capacity", "dataset_type", "type", "site_id")  # fixed answers on a single site
SEARCHABLE = tuple(sorted({*_TEXT, *_KEYWORD, *_ORDERED, *_CONSTANT}))

_OPERATORS = {"AND": "AND", "&&": "AND", "OR": "OR", "||": "OR", "NOT": "NOT"}
_UNSUPPORTED = {"?": "wildcard '?' is not supported (only a trailing '*' for prefix search)",
                "~": "fuzzy and proximity search ('~') is not supported",
                "^": "boosts ('^') are not supported",
                "!": "'!' inside a term must be escaped as '\\!'"}
_DELIMITERS = frozenset('()"[]{}')
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_WORDS = re.compile(r"[^\W_]+")
_TIMESTAMP = re.compile(
    r"(?:NOW|(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?"
    r"(Z|[+-]\d\d(?::?\d\d)?)?)?)((?:[+-]\d{1,9}[A-Z]+|/[A-Z]+)*)")
_DATE_MATH = re.compile(r"([-+/])(\d*)([A-Z]+)")
_UNITS = ("SECOND", "MINUTE", "HOUR", "DAY", "MONTH", "YEAR")  # finest first
_RESET = {"microsecond": 0, "second": 0, "minute": 0, "hour": 0, "day": 1, "month": 1}


class SearchQueryError(ValueError):
    """Query text the hub cannot answer exactly; str(exc) is a precise message for the client
    (position and offending text)."""


_Fail = Callable[[str], SearchQueryError]  # builds an error located at the current clause


def parse_query(q: str | None, fq: Sequence[str] = (), now: dt.datetime | None = None) -> Expr:
    """q (default `*:*`) AND every fq clause string, as one expression. `now` (UTC) for NOW,
    default the current time. Errors name the parameter: `q`, or `fq[i]` for the i-th clause."""
    if isinstance(fq, str):
        fq = (fq,)
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC).replace(tzinfo=None)
    parts = [_parse(q or "", "q", now)]
    parts += [_parse(clause, f"fq[{i}]", now) for i, clause in enumerate(fq)]
    return _all(parts)


def _parse(src: str, where: str, now: dt.datetime) -> Expr:
    if not isinstance(src, str):
        raise SearchQueryError(f"{where} must be a string, not {type(src).__name__}")
    if len(src) > MAX_LENGTH:
        raise SearchQueryError(f"{where} is {len(src)} characters long; the limit is {MAX_LENGTH}")
    if bad := _CONTROL.search(src):
        raise _error(src, where, f"control character U+{ord(bad.group()):04X} is not allowed",
                     bad.start(), bad.end())
    if src.strip() == '""':
        return All()
    return _Parser(src, where, now).parse()


def _error(src: str, where: str, msg: str, start: int, end: int) -> SearchQueryError:
    if start >= len(src):
        return SearchQueryError(f"{msg} ({where}, at the end)")
    text = src[start:max(end, start + 1)]
    text = text if len(text) <= 60 else text[:59] + "…"
    return SearchQueryError(f"{msg} ({where} at column {start + 1}: {text!r})")


# -- simplifying constructors ---------------------------------------------------------------------

def _all(items: list[Expr]) -> Expr:
    out: list[Expr] = []
    for item in items:
        if item == NOTHING:
            return NOTHING
        if isinstance(item, And):
            out.extend(item.items)
        elif not isinstance(item, All):
            out.append(item)
    return (out[0] if len(out) == 1 else And(tuple(out))) if out else All()


def _any(items: list[Expr]) -> Expr:
    out: list[Expr] = []
    for item in items:
        if isinstance(item, All):
            return All()
        if isinstance(item, Or):
            out.extend(item.items)
        elif item != NOTHING:
            out.append(item)
    return (out[0] if len(out) == 1 else Or(tuple(out))) if out else NOTHING


def _not(item: Expr) -> Expr:
    return item.item if isinstance(item, Not) else Not(item)


# -- tokens ---------------------------------------------------------------------------------------

class _Tok(NamedTuple):
    kind: str  # ( ) AND OR NOT + FIELD TERM PHRASE RANGE EOF
    pos: int
    end: int
    value: str = ""
    mask: str = ""  # TERM: value with escaped characters replaced by NUL (`*`, `:`, `/` are live)
    bounds: tuple[str | None, str | None, bool, bool] = (None, None, True, True)


class _Lexer:
    """Lucene's lexical rules for the supported subset; rejects the rest where it starts."""

    def __init__(self, src: str, where: str):
        self.src, self.where, self.i = src, where, 0
        self.toks: list[_Tok] = []

    def error(self, msg: str, start: int, end: int | None = None) -> SearchQueryError:
        return _error(self.src, self.where, msg, start, start + 1 if end is None else end)

    def emit(self, kind: str, start: int, value: str = "", mask: str = "",
             bounds: tuple[str | None, str | None, bool, bool] = (None, None, True, True)) -> None:
        self.toks.append(_Tok(kind, start, self.i, value, mask, bounds))

    def skip_space(self) -> None:
        while self.i < len(self.src) and self.src[self.i].isspace():
            self.i += 1

    def tokens(self) -> list[_Tok]:
        src = self.src
        while True:
            self.skip_space()
            start = self.i
            if start >= len(src):
                self.emit("EOF", start)
                return self.toks
            c = src[start]
            if c in "()":
                self.i += 1
                self.emit(c, start)
            elif c == '"':
                self.emit("PHRASE", start, self.quoted())
            elif c in "[{":
                self.range()
            elif c in "]}":
                raise self.error(f"unbalanced {c!r} (no range is open)", start)
            elif c in "+-!":
                if start + 1 == len(src) or src[start + 1].isspace():
                    raise self.error(f"{c!r} must be directly followed by a term", start)
                self.i += 1
                self.emit("+" if c == "+" else "NOT", start)
            else:
                self.word()

    def word(self) -> None:
        """A term, an operator word, or `field:` followed by the start of its value."""
        src, start, split = self.src, self.i, False
        chars: list[str] = []
        mask: list[str] = []
        while self.i < len(src) and not src[self.i].isspace() and src[self.i] not in _DELIMITERS:
            c = src[self.i]
            if c == "\\":
                chars.append(self.escape())
                mask.append("\0")
                continue
            if c in _UNSUPPORTED:
                raise self.error(_UNSUPPORTED[c], start, self.word_end())
            self.i += 1
            if c == ":" and not split:
                if not chars:
                    raise self.error("missing field name before ':'", start, self.word_end())
                self.emit("FIELD", start, "".join(chars))
                chars, mask, start, split = [], [], self.i, True
            else:
                chars.append(c)
                mask.append(c)
        if chars:
            value, live = "".join(chars), "".join(mask)
            operator = _OPERATORS.get(value) if value == live and not split else None
            self.emit(operator or "TERM", start, value, live)

    def word_end(self) -> int:
        end = self.i
        while end < len(self.src) and not self.src[end].isspace() and (
                self.src[end] not in _DELIMITERS):
            end += 1
        return end

    def escape(self) -> str:
        escaped = self.src[self.i + 1:self.i + 2]
        if not escaped:
            raise self.error("'\\' at the end escapes nothing", self.i)
        if escaped == "u":
            raise self.error("unicode escapes ('\\u…') are not supported; send the character",
                             self.i, self.i + 6)
        self.i += 2
        return escaped

    def quoted(self) -> str:
        src, start = self.src, self.i
        self.i += 1
        chars: list[str] = []
        while self.i < len(src):
            c = src[self.i]
            if c == '"':
                self.i += 1
                return "".join(chars)
            if c == "\\":
                chars.append(self.escape())
            else:
                chars.append(c)
                self.i += 1
        raise self.error("unbalanced '\"' (no closing quote)", start, len(src))

    def range(self) -> None:
        src, start = self.src, self.i
        if src.startswith("{!", start):
            raise self.error("local parameters ('{!…}') are not supported", start,
                             src.find("}", start) + 1 or len(src))
        self.i += 1
        low = self.bound(start)
        self.skip_space()
        after = src[self.i + 2:self.i + 3]
        if not (src.startswith("TO", self.i) and (after.isspace() or after in ("]", "}"))):
            raise self.error("a range needs 'TO' between its bounds: [a TO b]", start, self.i + 2)
        self.i += 2
        high = self.bound(start)
        self.skip_space()
        if self.i >= len(src) or src[self.i] not in "]}":
            raise self.error("unbalanced range: expected ']' or '}'", start, self.i + 1)
        self.i += 1
        self.emit("RANGE", start, bounds=(low, high, src[start] == "[", src[self.i - 1] == "]"))

    def bound(self, start: int) -> str | None:
        """One range bound; None for an unescaped, unquoted `*`."""
        src = self.src
        self.skip_space()
        if self.i < len(src) and src[self.i] == '"':
            return self.quoted()
        chars: list[str] = []
        plain = True
        while self.i < len(src) and not src[self.i].isspace() and src[self.i] not in "]}":
            if src[self.i] == "\\":
                chars.append(self.escape())
                plain = False
            else:
                chars.append(src[self.i])
                self.i += 1
        if not chars:
            raise self.error("a range bound is missing", start, self.i + 1)
        value = "".join(chars)
        return None if plain and value == "*" else value


# -- parser ---------------------------------------------------------------------------------------

class _Parser:
    """Recursive descent over the tokens; `field` is the default field inside `field:(…)`."""

    def __init__(self, src: str, where: str, now: dt.datetime):
        self.src, self.where, self.now = src, where, now
        self.toks = _Lexer(src, where).tokens()
        self.k = 0

    def fail(self, msg: str, start: int, end: int) -> SearchQueryError:
        return _error(self.src, self.where, msg, start, end)

    def text(self, tok: _Tok) -> str:
        return self.src[tok.pos:tok.end]

    def take(self) -> _Tok:
        self.k += 1
        return self.toks[self.k - 1]

    def parse(self) -> Expr:
        if self.toks[0].kind == "EOF":
            return All()
        expr = self.or_(None, 0)
        if (tok := self.toks[self.k]).kind != "EOF":  # only ')' stops the loops early
            raise self.fail("unbalanced ')'", tok.pos, tok.end)
        return expr

    def or_(self, field: str | None, depth: int) -> Expr:
        items = [self.and_(field, depth)]
        while self.toks[self.k].kind == "OR":
            self.k += 1
            items.append(self.and_(field, depth))
        return _any(items)

    def and_(self, field: str | None, depth: int) -> Expr:
        items = [self.clause(field, depth)]
        while self.toks[self.k].kind not in ("OR", ")", "EOF"):
            if self.toks[self.k].kind == "AND":
                self.k += 1
            items.append(self.clause(field, depth))
        return _all(items)

    def clause(self, field: str | None, depth: int) -> Expr:
        modifier = self.toks[self.k].kind
        if modifier in ("NOT", "+"):
            self.k += 1
        expr = self.primary(field, depth)
        return _not(expr) if modifier == "NOT" else expr

    def primary(self, field: str | None, depth: int) -> Expr:
        tok = self.take()
        if tok.kind == "FIELD":
            self.check_field(tok)
            value = self.take()
            if value.kind == "(":
                return self.group(tok.value, depth, value)
            if value.kind not in ("TERM", "PHRASE", "RANGE"):
                raise self.fail(f"field {tok.value!r} has no value", tok.pos, tok.end)
            return self.leaf(tok.value, tok, value)
        if tok.kind == "(":
            return self.group(field, depth, tok)
        if tok.kind in ("TERM", "PHRASE", "RANGE"):
            return self.leaf(field, None, tok)
        raise self.unexpected(tok)

    def group(self, field: str | None, depth: int, opening: _Tok) -> Expr:
        if depth >= MAX_DEPTH:
            raise self.fail(f"parentheses nested deeper than {MAX_DEPTH} levels",
                            opening.pos, opening.end)
        expr = self.or_(field, depth + 1)
        if self.take().kind != ")":
            raise self.fail("unbalanced '(' (no matching ')')", opening.pos, opening.end)
        return expr

    def unexpected(self, tok: _Tok) -> SearchQueryError:
        prev = self.toks[self.k - 2] if self.k >= 2 else None
        if prev is not None and prev.kind in ("AND", "OR", "NOT", "+"):
            return self.fail(f"{self.text(prev)!r} must be followed by a term", prev.pos, tok.end)
        if tok.kind == "EOF" and prev is not None:
            return self.fail("unbalanced '(' (no matching ')')", prev.pos, prev.end)
        if tok.kind == ")":
            empty = prev is not None and prev.kind == "("
            return self.fail("empty parentheses" if empty else "unbalanced ')'", tok.pos, tok.end)
        return self.fail(f"{self.text(tok)!r} must be preceded by a term", tok.pos, tok.end)

    def check_field(self, tok: _Tok) -> None:
        if tok.value == "_query_":
            raise self.fail("nested queries ('_query_:') are not supported", tok.pos, tok.end)
        if tok.value not in SEARCHABLE and tok.value != "*":
            raise self.fail(f"field {tok.value!r} is not searchable; searchable fields: "
                            f"{', '.join(SEARCHABLE)}", tok.pos, tok.end)

    def leaf(self, name: str | None, ftok: _Tok | None, tok: _Tok) -> Expr:
        """One value of `name` (None: the default text field) as an expression."""
        start = (ftok or tok).pos

        def fail(msg: str) -> SearchQueryError:
            return self.fail(msg, start, tok.end)

        field = name or "text"
        if tok.kind == "RANGE":
            return self.range(field, tok, fail)
        value, live = tok.value, tok.mask
        if tok.kind == "PHRASE":
            live = "\0" * len(value)
            if not value.strip():
                raise fail("empty value")
        if live == "*":
            return self.any_value(name, fail)
        if field == "*":
            raise fail("'*:' only accepts '*' (all records)")
        prefix = live.endswith("*")
        if prefix:
            value, live = value[:-1], live[:-1]
        if "*" in live:
            raise fail("'*' is only supported at the end of a term (prefix search)")
        if field in _TIME:
            if prefix:
                raise fail(f"prefix search is not supported on {field!r}; use a range")
            moment, has_time = self.time(value, fail)
            if not has_time:
                raise fail(f"a date alone is a single instant (midnight); use a range such as "
                           f"{field}:[{value} TO {value}+1DAY}}")
            return Range(_TIME[field], moment, moment)
        if ":" in live:
            raise fail("unescaped ':' in a value (escape it as '\\:' or quote the value)")
        if "/" in live:
            raise fail("regular expressions ('/…/') are not supported "
                       "(escape '/' as '\\/' or quote the value)")
        if field in _TEXT:
            words = tuple(_WORDS.findall(value))
            if not words:
                raise fail("no letters or digits to search for")
            if prefix and not _WORDS.fullmatch(value[-1]):
                raise fail("a prefix search needs a letter or digit before '*'")
            return Text(_TEXT[field], words, phrase=tok.kind == "PHRASE", prefix=prefix)
        if field in _KEYWORD:
            return Match(_KEYWORD[field], value, prefix)
        if field == "title_string":
            raise fail("title_string supports only ranges ([a TO b]) and '*'; "
                       "search words with title:")
        if prefix:
            raise fail(f"prefix search is not supported on {field!r}")
        if field == "capacity":
            public = Match("access", "public")
            return public if value == "public" else Not(public) if value == "private" else NOTHING
        if field in ("dataset_type", "type"):
            return All() if value == "dataset" else NOTHING
        return All()  # site_id: this hub is a single site

    def any_value(self, name: str | None, fail: _Fail) -> Expr:
        """`field:*` (and a bare `*`): records with a value in the field."""
        if name is None or name == "*" or name in _CONSTANT:
            return All()
        if name in _KEYWORD:
            return Exists(_KEYWORD[name])
        if name in _ORDERED:
            return Range(_ORDERED[name], None, None)
        raise fail(f"'{name}:*' is not supported on a text field")

    def range(self, field: str, tok: _Tok, fail: _Fail) -> Expr:
        low, high, include_low, include_high = tok.bounds
        if field in _TIME:
            low, high = (None if b is None else self.time(b, fail)[0] for b in (low, high))
        elif field not in _ORDERED:
            raise fail(f"field {field!r} cannot be searched by range; ranges work on "
                       f"{', '.join(_ORDERED)}")
        return Range(_ORDERED[field], low, high, include_low or low is None,
                     include_high or high is None)

    def time(self, text: str, fail: _Fail) -> tuple[str, bool]:
        try:
            return _timestamp(text, self.now)
        except (ValueError, OverflowError) as exc:
            raise fail(f"bad timestamp {text!r}: {exc}") from None


def _timestamp(text: str, now: dt.datetime) -> tuple[str, bool]:
    """An ISO date/timestamp or NOW, with Solr date math, as naive UTC with microseconds;
    and whether it had a time of day."""
    found = _TIMESTAMP.fullmatch(text)
    if not found:
        raise ValueError("expected an ISO date or timestamp such as 2024-05-01T09:00:00.123Z, "
                         "or NOW with date math such as NOW-7DAYS/DAY")
    year, month, day, hour, minute, second, fraction, zone, math = found.groups()
    moment = now
    if year:
        moment = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                             int(second or 0), int((fraction or "0").ljust(6, "0")))
        if zone and zone != "Z":
            hours, minutes = int(zone[1:3]), int(zone[-2:]) if len(zone) > 3 else 0
            if minutes > 59:
                raise ValueError(f"bad UTC offset {zone}")
            offset = dt.timezone((-1 if zone[0] == "-" else 1)
                                 * dt.timedelta(hours=hours, minutes=minutes))
            moment = moment.replace(tzinfo=offset).astimezone(dt.UTC).replace(tzinfo=None)
    for op, amount, unit in _DATE_MATH.findall(math):
        if (name := unit.removesuffix("S")) not in _UNITS:
            raise ValueError(f"unknown date math unit {unit!r} in {op}{amount}{unit} "
                             f"(use {', '.join(reversed(_UNITS))})")
        if op == "/":
            reset = list(_RESET)[:_UNITS.index(name) + 1]
            moment = moment.replace(**{key: _RESET[key] for key in reset})
        else:
            moment = _shift(moment, int(op + amount), name)
    return moment.isoformat(timespec="microseconds"), bool(hour or not year)


def _shift(moment: dt.datetime, amount: int, unit: str) -> dt.datetime:
    if unit in ("YEAR", "MONTH"):
        months = moment.month - 1 + amount * (12 if unit == "YEAR" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        if not dt.MINYEAR <= year <= dt.MAXYEAR:
            raise OverflowError("date value out of range")
        return moment.replace(year=year, month=month,
                              day=min(moment.day, calendar.monthrange(year, month)[1]))
    return moment + dt.timedelta(**{unit.lower() + "s": amount})
