"""Read actions (CKAN's `ckan/logic/action/get.py`), all answering GET and POST alike.

Show and list actions ignore parameters they do not know (clients such as ckanapi send some).
What a caller may not see is treated as if it did not exist, in results and in counts.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson

from hub import __version__
from hub.api.ckan import packages as dicts
from hub.api.ckan.core import Call, NotFound, ValidationError, action, flag, integer, required
from hub.catalog.expr import Match
from hub.catalog.index import Query, Result
from hub.catalog.model import Record

LIST_MAX = 1000  # names per organization_list/group_list call
ALL_FIELDS_DEFAULT = 25  # dicts per call with all_fields (CKAN's default)
PUBLIC = Match("access", "public")


_rendered: dict[tuple[int, int, str, int], bytes] = {}  # package JSON per catalog state
_rendered_lock = threading.Lock()
RENDERED_MAX = 50_000


def rendered(call: Call, result: Result) -> list[bytes]:
    """The page of a search (made with `load=False`) as package dicts in JSON, rendered once
    per record and catalog state (any write makes a new state), as CKAN keeps them in Solr."""
    key = (id(call.catalog), result.state, call.site.url)
    with _rendered_lock:
        found = {rid: _rendered.get((*key, rid)) for rid in result.rids}
    missing = [rid for rid, body in found.items() if body is None]
    if missing:
        fresh = {rid: orjson.dumps(dicts.package(record, call.site))
                 for rid, record in call.catalog.records(missing).items()}
        found.update(fresh)
        with _rendered_lock:
            if len(_rendered) + len(fresh) > RENDERED_MAX:
                _rendered.clear()
            _rendered.update({(*key, rid): body for rid, body in fresh.items()})
    return [found[rid] for rid in result.rids if found.get(rid)]


def show_states(call: Call) -> tuple[str, ...]:
    """Drafts and deleted records are shown to those who may edit them."""
    return ("active", "draft", "deleted") if call.viewer.editor or call.viewer.admin \
        else ("active",)


def find_package(call: Call, key: str) -> Record:
    record = call.catalog.get(key, call.viewer, show_states(call))
    if record is None:
        raise NotFound("Dataset was not found")  # hidden and unknown alike
    return record


@action(read=True)
def status_show(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """The site's title, description, URL, locale and CKAN-compatible version."""
    district = call.site.district
    return {"site_title": f"Datenhub {district.name}".strip(),
            "site_description": f"Offene Daten und Datenkatalog – {district.name}",
            "site_url": call.site.url, "error_emails_to": None, "locale_default": "de",
            "extensions": ["hub", "dcat", "spatial"], "ckan_version": "2.11.0",
            "hub_version": __version__}


@action(read=True)
def site_read(call: Call, data: dict[str, Any]) -> bool:
    """`true` (kept for clients of CKAN 2.10)."""
    return True


@action(read=True)
def package_list(call: Call, data: dict[str, Any]) -> list[str]:
    """Names of the public, active datasets, by name."""
    limit = integer(data, "limit", 1 << 30)
    offset = integer(data, "offset", 0)
    result = call.catalog.search(Query(where=PUBLIC, sort=(("name", False),), start=offset,
                                       rows=limit, facets=(), load=False), call.viewer)
    return result.names


@action(read=True)
def current_package_list_with_resources(call: Call, data: dict[str, Any]
                                        ) -> list[dict[str, Any]]:
    """Public datasets, most recently changed first, as full package dicts."""
    limit = integer(data, "limit", 10 << 20)
    offset = integer(data, "offset", 0)
    if data.get("page") not in (None, ""):
        offset = (max(integer(data, "page", 1), 1) - 1) * limit
    result = call.catalog.search(Query(where=PUBLIC, sort=(("changed", True), ("name", False)),
                                       start=offset, rows=limit, facets=(), load=False),
                                 call.viewer)
    return [orjson.Fragment(body) for body in rendered(call, result)]


@action(read=True)
def package_show(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """One dataset (`id`: id or name) as a CKAN package dict."""
    return dicts.package(find_package(call, required(data, "id")), call.site)


@action(read=True)
def resource_show(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """One resource (`id`)."""
    key = required(data, "id")
    found = call.catalog.search(Query(where=Match("resource", key), rows=1, facets=(),
                                      states=show_states(call)), call.viewer).records
    for record in found:
        for position, d in enumerate(record.served()):
            if d.id == key:
                return dicts.resource(d, record, position, call.site)
    raise NotFound("Resource was not found.")


def _counts(call: Call, facet: str) -> dict[str, int]:
    result = call.catalog.search(Query(rows=0, facets=(facet,), facet_limit=-1), call.viewer)
    return dict(result.facets[facet])


def _listing(data: dict[str, Any], items: list[dict[str, Any]], names_key: str
             ) -> list[Any]:
    """organization_list and group_list: filter, sort, page; names or dicts."""
    wanted = data.get(names_key)
    if wanted:
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        items = [i for i in items if i["name"] in wanted]
    sort = str(data.get("sort") or "title asc").strip().split()
    key, descending = sort[0], len(sort) > 1 and sort[1].lower() == "desc"
    if key not in ("title", "name", "package_count") or (
            len(sort) > 1 and sort[1].lower() not in ("asc", "desc")):
        raise ValidationError({"sort": [f"cannot sort by {data['sort']!r}; use title, name "
                                        "or package_count with asc or desc"]})
    items.sort(key=lambda i: (i[key].casefold() if isinstance(i[key], str) else i[key],
                              i["name"]), reverse=descending)
    all_fields = flag(data, "all_fields")
    limit = integer(data, "limit", ALL_FIELDS_DEFAULT if all_fields else LIST_MAX, LIST_MAX)
    offset = integer(data, "offset", 0)
    page = items[offset:offset + limit]
    if not all_fields:
        return [i["name"] for i in page]
    if not flag(data, "include_dataset_count", True):
        for i in page:
            i.pop("package_count")
    return page


@action(read=True)
def organization_list(call: Call, data: dict[str, Any]) -> list[Any]:
    """Organisations: names, or dicts with `all_fields` (`sort`, `limit`, `offset`,
    `organizations`)."""
    counts = _counts(call, "organization")
    return _listing(data, [dicts.organization(o, call.site, counts.get(o.id, 0))
                           for o in call.vocab.organizations.values()], "organizations")


@action(read=True)
def group_list(call: Call, data: dict[str, Any]) -> list[Any]:
    """Groups (the EU data themes, by lower-case code): names, or dicts with `all_fields`."""
    counts = _counts(call, "theme")
    return _listing(data, [dicts.group(t, call.site, counts.get(t.code, 0))
                           for t in call.vocab.themes.terms], "groups")


def _shown(call: Call, data: dict[str, Any], group: dict[str, Any], facet: str, value: str
           ) -> dict[str, Any]:
    """An organisation or group dict as `*_show` gives it, with its datasets if asked for."""
    members = call.catalog.search(Query(filters={facet: [value]}, sort="title", rows=LIST_MAX,
                                        facets=()), call.viewer).records \
        if flag(data, "include_datasets") else []
    return {**group, "extras": [], "users": [], "groups": [], "tags": [], "num_followers": 0,
            "packages": [dicts.package(r, call.site) for r in members]}


@action(read=True)
def organization_show(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """One organisation (`id`: id or name), its datasets with `include_datasets`."""
    org = dicts.find_organization(required(data, "id"), call.vocab)
    if org is None:
        raise NotFound("Organization was not found.")
    return _shown(call, data, dicts.organization(
        org, call.site, _counts(call, "organization").get(org.id, 0)), "organization", org.id)


@action(read=True)
def group_show(call: Call, data: dict[str, Any]) -> dict[str, Any]:
    """One group (`id`: code or id), its datasets with `include_datasets`."""
    term = dicts.find_group(required(data, "id"), call.vocab)
    if term is None:
        raise NotFound("Group was not found.")
    return _shown(call, data, dicts.group(
        term, call.site, _counts(call, "theme").get(term.code, 0)), "theme", term.code)


@action(read=True)
def tag_list(call: Call, data: dict[str, Any]) -> list[Any]:
    """Keywords of the datasets the caller may see (`query`: a part of the tag)."""
    if data.get("vocabulary_id"):
        return []  # the catalog has free tags only
    tags = _counts(call, "keyword")
    part = str(data.get("query") or data.get("q") or "").casefold()
    names = sorted(t for t in tags if part in t.casefold())
    return [dicts.tag(t) for t in names] if flag(data, "all_fields") else names


@action(read=True)
def license_list(call: Call, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The licences of dcat-ap.de (ids such as `dl-by-de/2.0`)."""
    return [dicts.licence(t) for t in call.vocab.licenses.terms]


@action(read=True)
def help_show(call: Call, data: dict[str, Any]) -> str:
    """The documentation of an action (`name`)."""
    from hub.api.ckan.core import ACTIONS

    entry = ACTIONS.get(required(data, "name"))
    if entry is None:
        raise NotFound("Action function not found")
    return (entry[0].__doc__ or "").strip()
