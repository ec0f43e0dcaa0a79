"""Query parameters of the OGC API: parsing, validation and the 400s that name the parameter.

Every parameter is read from the raw query string, never through FastAPI's validation, so each
problem becomes one `BadParameter` with a message that names the parameter and says what is
allowed. Unknown parameters are errors (`/req/core/query-param-unknown`) unless they name a
queryable property, which filters by equality.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from hub.api.ogc import crs as crs_mod
from hub.schema import Field

ITEMS_PARAMS = ("f", "limit", "offset", "bbox", "bbox-crs", "datetime", "crs", "filter",
                "filter-lang", "filter-crs")
FILTER_LANGS = ("cql2-text", "cql-text")  # cql-text: the draft's name, which GDAL sends
FORMATS = ("json", "html")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DAY_US = 86_400_000_000


class BadParameter(Exception):
    """A query parameter the server cannot accept; answered with 400."""

    def __init__(self, param: str, message: str):
        self.param, self.message = param, message
        super().__init__(f"{param}: {message}")


@dataclass(frozen=True)
class Limits:
    """Page sizes for `/items`: the default and the maximum a request may ask for.

    Both are declared in the OpenAPI `limit` parameter, which is what clients page by: GDAL
    (3.8+) asks for max(1000, default) features per request, at most `maximum`; a default of
    10 (the standard's example) made clients that use the default fetch 10 per request."""

    default: int = 1000
    maximum: int = 10_000

    @classmethod
    def from_env(cls) -> Limits:
        """HUB_OGC_LIMIT_DEFAULT and HUB_OGC_LIMIT_MAX (defaults 1,000 and 10,000)."""
        try:
            maximum = int(os.environ.get("HUB_OGC_LIMIT_MAX", cls.maximum))
            default = int(os.environ.get("HUB_OGC_LIMIT_DEFAULT", cls.default))
        except ValueError as exc:
            raise ValueError(f"HUB_OGC_LIMIT_DEFAULT / HUB_OGC_LIMIT_MAX: {exc}") from None
        if not 1 <= default <= maximum:
            raise ValueError("HUB_OGC_LIMIT_DEFAULT must be between 1 and HUB_OGC_LIMIT_MAX")
        return cls(default, maximum)


@dataclass(frozen=True)
class Area:
    """A `bbox` filter: the box as given (in `crs` axis order) and its CRS84 envelope."""

    box: tuple[float, float, float, float]
    crs: crs_mod.Crs
    crs84: tuple[float, float, float, float]  # minlon > maxlon: crosses the antimeridian


@dataclass(frozen=True)
class ItemsQuery:
    """A validated `/items` request; times are UTC microseconds."""

    limit: int
    offset: int
    bbox: Area | None
    interval: tuple[int | None, int | None] | None  # inclusive; None = open end
    filters: tuple[tuple[str, Any], ...]  # (property, typed value), sorted
    crs: crs_mod.Crs
    cql: Any = None  # a CQL2 tree (hub.api.ogc.cql2), None without `filter`

    @property
    def selection_key(self) -> tuple[Any, ...]:
        """What decides the matching rows (not the page, not the output CRS)."""
        return (self.bbox, self.interval, self.filters, self.cql)


def single(params: QueryParams, name: str) -> str | None:
    """The one value of a parameter; a repeated parameter is an error."""
    values = params.getlist(name)
    if len(values) > 1:
        raise BadParameter(name, "is given more than once; give it once")
    return values[0] if values else None


def check_known(params: QueryParams, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for name in params:
        if name not in allowed:
            raise BadParameter(name, "is not a parameter of this resource; allowed: "
                                     + ", ".join(sorted(allowed)))


def parse_items(params: QueryParams, queryables: dict[str, Field], temporal: bool,
                limits: Limits, geometry: str | None = None) -> ItemsQuery:
    """Validate the parameters of `/collections/{id}/items` (`geometry`: the name of the
    geometry property for CQL2 spatial filters, None when the collection has none)."""
    check_known(params, [*ITEMS_PARAMS, *queryables])
    single(params, "f")  # the format was negotiated before; only refuse repetitions here
    limit = _integer(params, "limit", limits.default, minimum=1)
    limit = min(limit, limits.maximum)  # over the maximum: clamp (/req/core/fc-limit-response-1)
    offset = _integer(params, "offset", 0, minimum=0)
    out_crs = parse_crs(params, "crs")
    bbox = _bbox(params)
    interval = _datetime(single(params, "datetime")) if "datetime" in params else None
    if interval is not None and not temporal:
        interval = None  # features without a time all match (/ats/core/fc-time-response)
    filters = tuple(sorted((name, _typed(name, single(params, name) or "", f))
                           for name, f in queryables.items() if name in params))
    return ItemsQuery(limit, offset, bbox, interval, filters, out_crs,
                      _filter(params, queryables, geometry))


def _filter(params: QueryParams, queryables: dict[str, Field], geometry: str | None) -> Any:
    """`filter` (CQL2 text) with `filter-lang` and `filter-crs`, as a tree; None if absent."""
    from hub.api.ogc import cql2  # cql2 builds on this module

    lang = single(params, "filter-lang")
    if lang is not None and lang.strip() not in FILTER_LANGS:
        raise BadParameter("filter-lang", f"{lang!r} is not supported; use cql2-text")
    filter_crs = parse_crs(params, "filter-crs")
    text = single(params, "filter")
    if text is None:
        for name in ("filter-lang", "filter-crs"):
            if name in params:
                raise BadParameter(name, "is only allowed together with filter")
        return None
    return cql2.parse(text, queryables, geometry, filter_crs)


def parse_crs(params: QueryParams, name: str) -> crs_mod.Crs:
    value = single(params, name)
    if value is None:
        return crs_mod.DEFAULT
    found = crs_mod.lookup(value)
    if found is None:
        raise BadParameter(name, f"{value!r} is not supported; use one of "
                                 + ", ".join(crs_mod.SUPPORTED))
    return found


def _integer(params: QueryParams, name: str, default: int, minimum: int) -> int:
    raw = single(params, name)
    if raw is None:
        return default
    if not re.fullmatch(r"\s*\+?[0-9]{1,30}\s*", raw):
        raise BadParameter(name, f"{raw!r} is not a whole number ≥ {minimum}")
    value = int(raw)
    if value < minimum:
        raise BadParameter(name, f"{value} is less than {minimum}")
    return value


def _bbox(params: QueryParams) -> Area | None:
    raw = single(params, "bbox")
    box_crs = parse_crs(params, "bbox-crs")
    if raw is None:
        if "bbox-crs" in params:
            raise BadParameter("bbox-crs", "is only allowed together with bbox")
        return None
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise BadParameter("bbox", f"needs 4 or 6 comma-separated numbers, got {len(parts)}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BadParameter("bbox", f"{raw!r} contains something that is not a number") from None
    if len(values) == 6:  # minx, miny, minz, maxx, maxy, maxz: heights are ignored (2D data)
        values = [values[0], values[1], values[3], values[4]]
    return make_area(values, box_crs, "bbox")


def make_area(values: list[float], box_crs: crs_mod.Crs, param: str) -> Area:
    """A box of four numbers in `box_crs` (its axis order), checked; errors name `param`."""
    if not all(math.isfinite(v) for v in values):
        raise BadParameter(param, "numbers must be finite")
    a, b, c, d = values
    lat_lo, lat_hi = (a, c) if box_crs.lat_first else (b, d)
    if lat_lo > lat_hi:
        axis = "first" if box_crs.lat_first else "second"
        raise BadParameter(param, f"the lower {axis} coordinate ({lat_lo}) is greater than the "
                                  f"upper one ({lat_hi})")
    if box_crs.geographic and not (lat_lo >= -90 and lat_hi <= 90):
        raise BadParameter(param, "latitudes must lie between -90 and 90")
    if not box_crs.geographic and a > c:
        raise BadParameter(param, f"minimum easting {a} is greater than maximum easting {c}")
    try:
        envelope = crs_mod.bbox_to_crs84((a, b, c, d), box_crs)
    except Exception:  # pyproj refuses boxes far outside the CRS's area
        envelope = (math.nan,) * 4
    if not all(math.isfinite(v) for v in envelope):
        raise BadParameter(param, f"cannot be transformed from {box_crs.uri} to lon/lat")
    return Area((a, b, c, d), box_crs, envelope)


# -- datetime ----------------------------------------------------------------------------------

DURATION = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                      r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def _datetime(raw: str | None) -> tuple[int | None, int | None]:
    """RFC 3339 instant or interval (`a/b`, `../b`, `a/..`, `a/P2D`) as inclusive µs bounds."""
    text = (raw or "").strip()
    if not text:
        raise BadParameter("datetime", "is empty; give an RFC 3339 date-time or an interval")
    if "/" not in text:
        start, end = _moment(text)
        return start, end
    if text.count("/") > 1:
        raise BadParameter("datetime", f"{text!r}: an interval has exactly one '/'")
    left, right = (p.strip() for p in text.split("/"))
    if left in ("", "..") and right in ("", ".."):
        return None, None
    if left.startswith("P") and right not in ("", ".."):
        end_hi = _moment(right)[1]
        return _shift(end_hi, left, -1), end_hi
    start = None if left in ("", "..") else _moment(left)[0]
    if right.startswith("P") and start is not None:
        return start, _shift(start, right, +1)
    end = None if right in ("", "..") else _moment(right)[1]
    if start is not None and end is not None and start > end:
        raise BadParameter("datetime", f"{text!r}: the start is after the end")
    return start, end


def _moment(text: str) -> tuple[int, int]:
    """A date (the whole day) or a date-time (an instant) as µs bounds in UTC."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        except ValueError:
            raise BadParameter("datetime", f"{text!r} is not a valid date") from None
        start = _micros(day)
        return start, start + DAY_US - 1
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                        r"([Zz]|[+-]\d{2}:\d{2})?", text):
        raise BadParameter("datetime", f"{text!r} is not an RFC 3339 date-time "
                                       "(e.g. 2026-01-31T12:00:00Z), a date or an interval")
    try:
        moment = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter("datetime", f"{text!r} is not a valid date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # no offset given: read as UTC
    value = _micros(moment)
    return value, value


def _micros(moment: dt.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _shift(micros: int, duration: str, sign: int) -> int:
    match = DURATION.fullmatch(duration)
    if not match or duration in ("P", "PT") or duration.endswith("T"):
        raise BadParameter("datetime", f"{duration!r} is not an ISO 8601 duration (e.g. P2D)")
    years, months, weeks, days, hours, minutes = (int(g or 0) for g in match.groups()[:6])
    seconds = float(match.group(7) or 0)
    try:
        moment = EPOCH + dt.timedelta(microseconds=micros)
        month = moment.month - 1 + sign * (years * 12 + months)
        year, month = moment.year + month // 12, month % 12 + 1
        try:
            moment = moment.replace(year=year, month=month)
        except ValueError:  # 31 January + 1 month: the last day of February
            moment = moment.replace(year=year, month=month, day=28)
        moment += sign * dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes,
                                      seconds=seconds)
    except (ValueError, OverflowError):
        raise BadParameter("datetime", f"{duration!r} leads outside the years 1 to 9999"
                           ) from None
    return _micros(moment)


# -- equality filters ----------------------------------------------------------------------------

def _typed(name: str, raw: str, f: Field) -> Any:
    """A filter value as the property's type, or a 400 naming the property."""
    try:
        if f.type in ("integer", "year"):
            if not re.fullmatch(r"[+-]?[0-9]{1,18}", raw.strip()):
                raise ValueError
            number: int | float = int(raw)
            check_constraints(name, number, f)
            return number
        if f.type == "number":
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError
            check_constraints(name, number, f)
            return number
        if f.type == "boolean":
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError
            return lowered in ("true", "1")
        if f.type == "date":
            return dt.date.fromisoformat(raw.strip())
        if f.type == "datetime":
            moment = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    except ValueError:
        kind = {"integer": "a whole number", "year": "a year", "number": "a number",
                "boolean": "true or false", "date": "a date (YYYY-MM-DD)",
                "datetime": "an RFC 3339 date-time"}[f.type]
        raise BadParameter(name, f"{raw!r} is not {kind}") from None
    check_constraints(name, raw, f)
    return raw


def check_constraints(name: str, value: Any, f: Field) -> None:
    """The constraints the OpenAPI document declares for a property parameter
    (`openapi.property_schema`): a value outside them is a 400, not an empty page."""
    c = f.constraints
    if "enum" in c and value not in c["enum"] and str(value) not in map(str, c["enum"]):
        raise BadParameter(name, f"{value!r} is not one of "
                                 + ", ".join(repr(v) for v in c["enum"]))
    if f.type in ("integer", "year", "number"):
        if "minimum" in c and value < c["minimum"]:
            raise BadParameter(name, f"{value} is less than the minimum {c['minimum']}")
        if "maximum" in c and value > c["maximum"]:
            raise BadParameter(name, f"{value} is greater than the maximum {c['maximum']}")
    if f.type == "string":
        if len(value) < c.get("minLength", 0) or len(value) > c.get("maxLength", len(value)):
            raise BadParameter(name, f"{value!r} has {len(value)} characters; allowed: "
                                     f"{c.get('minLength', 0)} to {c.get('maxLength', '∞')}")
        if "pattern" in c and not re.fullmatch(f"(?:{c['pattern']})", value):
            raise BadParameter(name, f"{value!r} does not match the pattern {c['pattern']!r}")


# -- output format -------------------------------------------------------------------------------

MEDIA = {"json": ("application/json", "application/geo+json", "application/schema+json",
                  "application/vnd.oai.openapi+json"),
         "html": ("text/html", "application/xhtml+xml")}


def negotiate(params: QueryParams, accept: str | None, offered: tuple[str, ...] = FORMATS
              ) -> str:
    """`f=json|html` wins; else the Accept header (q-values); else JSON."""
    if "f" in params:
        value = (single(params, "f") or "").strip().lower()
        if value in ("geojson", "jsonld"):
            value = "json"
        if value not in offered:
            raise BadParameter("f", f"{value!r} is not offered here; use " + " or ".join(offered))
        return value
    best, best_q = offered[0], 0.0
    for position, item in enumerate((accept or "").split(",")):
        media, _, rest = item.strip().partition(";")
        q = 1.0
        for p in rest.split(";"):
            key, _, val = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        media = media.strip().lower()
        for fmt in offered:
            if any(media.startswith(m) for m in MEDIA[fmt]) and q - position * 1e-6 > best_q:
                best, best_q = fmt, q - position * 1e-6
    return best
