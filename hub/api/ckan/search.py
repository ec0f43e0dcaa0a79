"""Search actions: `package_search` (the Solr subset real clients send, see `solr.py`),
`package_autocomplete` and `resource_search`, all answered from the catalog's index."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from hub.api.ckan import packages as dicts
from hub.api.ckan.core import Call, SearchQueryInvalid, ValidationError, action, flag, integer
from hub.api.ckan.get import PUBLIC, rendered
from hub.api.ckan.solr import SearchQueryError, parse_query
from hub.catalog.expr import And, Match, Or, Text
from hub.catalog.index import Query, words

ROWS_MAX = 1000  # CKAN's ckan.search.rows_max: more is silently capped
PARAMETERS = {"q", "fq", "fq_list", "rows", "start", "sort", "facet", "facet.field",
              "facet.limit", "facet.mincount", "include_private", "include_drafts",
              "include_deleted", "use_default_schema", "fl", "qf", "bf", "boost", "tie",
              "defType", "mm", "df", "wt", "q.op"}
SORT_FIELDS = {"score": "relevance", "metadata_modified": "changed",
               "metadata_created": "created", "name": "name", "title_string": "title",
               "id": "id"}
DEFAULT_SORT = "score desc, metadata_modified desc"
# CKAN facet field -> catalog facet; values shown as CKAN names them
FACET_FIELDS = {"tags": "keyword", "organization": "organization", "groups": "theme",
                "res_format": "format", "license_id": "license"}


def _texts(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _sort(text: str) -> tuple[tuple[str, bool], ...]:
    order = []
    for clause in filter(None, (c.strip() for c in text.split(","))):
        parts = clause.split()
        if len(parts) != 2 or parts[1].lower() not in ("asc", "desc") \
                or parts[0] not in SORT_FIELDS:
            raise SearchQueryInvalid(
                f"cannot sort by {clause!r}; use one or more of "
                f"{', '.join(SORT_FIELDS)} followed by asc or desc, separated by commas")
        order.append((SORT_FIELDS[parts[0]], parts[1].lower() == "desc"))
    return tuple(order) or _sort(DEFAULT_SORT)


def _facet_fields(data: dict[str, Any]) -> list[str]:
    fields: list[str] = []
    for value in _texts(data.get("facet.field")):
        if value.strip().startswith("["):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                raise SearchQueryInvalid(f"facet.field {value!r} is not a JSON list") from None
            fields += [str(v) for v in parsed] if isinstance(parsed, list) else []
        else:
            fields.append(value.strip())
    unknown = [f for f in fields if f not in FACET_FIELDS]
    if unknown:
        raise SearchQueryInvalid(f"cannot facet on {', '.join(unknown)}; facets: "
                                 f"{', '.join(FACET_FIELDS)}")
    return fields


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in text.split(","))
    except ValueError:
        raise SearchQueryInvalid(f"ext_bbox {text!r}: give minx,miny,maxx,maxy in "
                                 "longitude/latitude") from None
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise SearchQueryInvalid(f"ext_bbox {text!r}: coordinates out of range or swapped")
    return minx, miny, maxx, maxy


def _display(call: Call, facet: str) -> Callable[[str], tuple[str, str]]:
    """How CKAN names and shows the values of a facet (groups are lower-case theme codes)."""
    if facet == "organization":
        organizations = call.vocab.organizations
        return lambda v: (v, organizations[v].name if v in organizations else v)
    vocabulary = {"theme": call.vocab.themes, "license": call.vocab.licenses}.get(facet)
    if vocabulary is None:
        return lambda v: (v, v)

    def display(value: str) -> tuple[str, str]:
        term = vocabulary.find(value)
        return (value.lower() if facet == "theme" else value), term.label if term else value
    return display


@action(read=True)
def package_search(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Search datasets: `q`, `fq`, `fq_list` (Solr subset), `rows` (≤ 1000), `start`, `sort`,
    `facet.field`, `facet.limit`, `facet.mincount`, `include_private`, `include_drafts`,
    `include_deleted`, `fl`, `ext_bbox`."""
    unknown = sorted(k for k in data if k not in PARAMETERS and not k.startswith("ext_"))
    if unknown:
        raise SearchQueryInvalid(f"Invalid search parameters: {unknown}")
    if str(data.get("defType") or "dismax") not in ("dismax", "edismax", "lucene"):
        raise SearchQueryInvalid(f"defType {data['defType']!r} is not supported")
    if str(data.get("mm") or "100%") != "100%" or str(data.get("q.op") or "AND") != "AND":
        raise SearchQueryInvalid("only q.op=AND (mm=100%) is supported: all terms must match")
    if str(data.get("wt") or "json") != "json":
        raise SearchQueryInvalid("wt: only json is supported")
    rows = integer(data, "rows", 10, ROWS_MAX)
    start = integer(data, "start", 0)
    sort_text = str(data.get("sort") or DEFAULT_SORT)
    fq = _texts(data.get("fq")) + _texts(data.get("fq_list"))
    try:
        where = parse_query(str(data["q"]) if data.get("q") is not None else None, fq)
    except SearchQueryError as exc:
        raise SearchQueryInvalid(str(exc)) from None
    if not flag(data, "include_private"):
        where = And((where, PUBLIC))
    states = ("active",) + (("draft",) if flag(data, "include_drafts") else ()) + (
        ("deleted",) if flag(data, "include_deleted") else ())
    facet_fields = _facet_fields(data) if flag(data, "facet", True) else []
    try:
        limit = int(str(data.get("facet.limit") or 50))  # negative: no limit
    except ValueError:
        raise ValidationError({"facet.limit": ["Invalid integer"]}) from None
    mincount = integer(data, "facet.mincount", 1)
    bbox = _bbox(str(data["ext_bbox"])) if data.get("ext_bbox") else None
    result = call.catalog.search(Query(
        where=where, sort=_sort(sort_text), start=start, rows=rows, bbox=bbox,
        facets=tuple(FACET_FIELDS[f] for f in facet_fields), facet_limit=limit,
        states=states, load=False), call.viewer)
    facets, search_facets = {}, {}
    for name in facet_fields:
        display = _display(call, FACET_FIELDS[name])
        items = [(*display(v), c) for v, c in result.facets[FACET_FIELDS[name]]
                 if c >= mincount]
        facets[name] = {value: count for value, _, count in items}
        search_facets[name] = {"title": name, "items": [
            {"name": value, "display_name": shown, "count": count}
            for value, shown, count in sorted(items, key=lambda i: i[1], reverse=True)]}
    bodies = rendered(call, result)
    if data.get("fl"):
        keep = [f for f in str(data["fl"]).replace(",", " ").split() if f]
        results: list[Any] = [{k: p.get(k) for k in keep} for p in map(orjson.loads, bodies)]
    else:
        results = [orjson.Fragment(body) for body in bodies]
    return {"count": result.count, "sort": sort_text, "results": results, "facets": facets,
            "search_facets": search_facets}


@action(read=True)
def package_autocomplete(call: Call, data: dict[str, Any]) -> list[dict[str, str]]:
    """Public datasets whose name or title starts a word with what was typed."""
    q = str(data.get("q") or "").strip()
    limit = integer(data, "limit", 10, 100)
    terms = tuple(words(q))
    if not terms:
        return []
    where = And((Or((Match("name", q, prefix=True), Text("title", terms, prefix=True))),
                 PUBLIC))
    out = []
    for record in call.catalog.search(Query(where=where, sort="title", rows=limit,
                                            facets=()), call.viewer).records:
        on_name = record.name.startswith(q.lower())
        out.append({"name": record.name, "title": record.title,
                    "match_field": "name" if on_name else "title",
                    "match_displayed": record.name if on_name
                    else f"{record.title} ({record.name})"})
    return out


RESOURCE_FIELDS = ("name", "description", "format", "url", "hash", "mimetype", "id")


@action(read=True)
def resource_search(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """Resources whose fields contain the given terms (`query`: "field:term" or a list of
    them, all must match; case-insensitive; `hash` matches a prefix)."""
    terms = []
    for item in _texts(data.get("query")):
        field, sep, term = item.partition(":")
        if not sep or field not in RESOURCE_FIELDS or not term:
            raise ValidationError({"query": [f"{item!r}: use field:term with a field of "
                                             f"{', '.join(RESOURCE_FIELDS)}"]})
        terms.append((field, term.casefold()))
    order_by = str(data.get("order_by") or "")
    if order_by and order_by not in RESOURCE_FIELDS:
        raise ValidationError({"order_by": [f"use one of {', '.join(RESOURCE_FIELDS)}"]})
    # every public record is scanned: terms match inside words ("plan" in "Stadtplan"), and
    # the hub's own downloads are not in the full-text index, so no word prefilter applies
    found = call.catalog.search(Query(where=PUBLIC, rows=1 << 30, facets=()),
                                call.viewer).records
    matches = []
    for record in found:
        for position, d in enumerate(record.served()):
            res = dicts.resource(d, record, position, call.site)
            if all((str(res.get(f) or "").casefold().startswith(t) if f == "hash"
                    else t in str(res.get(f) or "").casefold()) for f, t in terms):
                matches.append(res)
    if order_by:
        matches.sort(key=lambda r: str(r.get(order_by) or ""))
    offset, limit = integer(data, "offset", 0), integer(data, "limit", 1 << 30)
    return {"count": len(matches), "results": matches[offset:offset + limit]}
