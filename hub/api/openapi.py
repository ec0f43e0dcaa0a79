"""The OpenAPI 3.0 document of the JSON and CKAN endpoints (`/api/openapi.json`).

One path per read action of the action registry (`hub.api.ckan.core.ACTIONS`, GET with its
query parameters; the action's docstring is the description, as `help_show` gives it), CKAN's
envelope (`help`, `success`, `result` | `error`) with the statuses the action layer answers,
the hub's own `/api/datasets` and the DCAT feeds. Write actions are POST-only and need an
editor's token; they are described by `help_show`, not here. The OGC API has its own document
(`/ogc/api`). tests/test_fuzz_schemathesis.py holds the server to this document.
"""

from __future__ import annotations

from typing import Any

from hub import __version__
from hub.api.ckan.core import ACTIONS
from hub.api.ckan.get import LIST_MAX
from hub.api.ckan.search import FACET_FIELDS, RESOURCE_FIELDS, SORT_FIELDS
from hub.catalog import dcat
from hub.places import openapi as places

URL = "/api/openapi.json"
TEXT = {"type": "string"}
BOOLEAN = {"type": "boolean"}
NATURAL = {"type": "integer", "minimum": 0}  # any size: offsets past the end give nothing
NULLABLE_TEXT = {"type": "string", "nullable": True}


def _query(name: str, schema: dict[str, Any], description: str = "",
           required: bool = False) -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": required, "schema": schema,
             "style": "form", "explode": True}
    return {**param, "description": description} if description else param


def _id(what: str) -> dict[str, Any]:
    return _query("id", {"type": "string", "minLength": 1}, f"id or name of the {what}",
                  required=True)


_LISTING = [
    _query("sort", {"type": "string", "enum": [f"{key}{order}" for key in
                                               ("title", "name", "package_count")
                                               for order in ("", " asc", " desc")]}),
    _query("all_fields", BOOLEAN, "dicts instead of names"),
    _query("include_dataset_count", BOOLEAN),
    _query("limit", NATURAL, f"at most {LIST_MAX} (more is capped)"),
    _query("offset", NATURAL),
]
_PAGING = [_query("limit", NATURAL), _query("offset", NATURAL)]

#: the query parameters of each read action (tests check that every read action is here)
PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "status_show": [],
    "site_read": [],
    "package_list": _PAGING,
    "current_package_list_with_resources": [*_PAGING, _query("page", NATURAL)],
    "package_show": [_id("dataset")],
    "resource_show": [_id("resource")],
    "organization_list": [*_LISTING, _query("organizations", {"type": "array",
                                                               "items": TEXT})],
    "group_list": [*_LISTING, _query("groups", {"type": "array", "items": TEXT})],
    "organization_show": [_id("organization"), _query("include_datasets", BOOLEAN)],
    "group_show": [_id("group"), _query("include_datasets", BOOLEAN)],
    "tag_list": [_query("query", TEXT, "a part of the tag"), _query("all_fields", BOOLEAN)],
    "license_list": [],
    "help_show": [_query("name", {"type": "string", "minLength": 1}, "an action's name",
                         required=True)],
    "package_search": [
        _query("q", TEXT, "Solr query (the subset real clients send); a query the hub "
                          "cannot parse is a 400"),
        _query("fq", TEXT, "filter query, same syntax"),
        _query("fq_list", {"type": "array", "items": TEXT}),
        _query("rows", NATURAL, "results per page, at most 1000 (more is capped)"),
        _query("start", NATURAL),
        _query("sort", {"type": "string", "pattern": "^(" + "|".join(SORT_FIELDS) +
                                                     ") (asc|desc)$"},
               "one field and direction (several, separated by commas, are accepted too)"),
        _query("facet", BOOLEAN),
        _query("facet.field", {"type": "array", "items": {"type": "string",
                                                          "enum": list(FACET_FIELDS)}}),
        _query("facet.limit", {"type": "integer"}, "values per facet; negative: all"),
        _query("facet.mincount", NATURAL),
        _query("include_private", BOOLEAN, "also the datasets the caller may see that are "
                                           "not public"),
        _query("include_drafts", BOOLEAN),
        _query("include_deleted", BOOLEAN),
        _query("fl", TEXT, "fields of each result, separated by commas or spaces"),
        _query("ext_bbox", {"type": "string", "pattern": r"^-?\d{1,3}(\.\d+)?(,-?\d{1,3}"
                                                         r"(\.\d+)?){3}$"},
               "minx,miny,maxx,maxy in longitude/latitude (in range, not swapped: else 400)"),
    ],
    "package_autocomplete": [_query("q", TEXT), _query("limit", NATURAL,
                                                       "at most 100 (more is capped)")],
    "resource_search": [
        _query("query", {"type": "array", "items": {
            "type": "string", "pattern": "^(" + "|".join(RESOURCE_FIELDS) + "):.+$"}},
            "field:term, all must match"),
        _query("order_by", {"type": "string", "enum": list(RESOURCE_FIELDS)}),
        *_PAGING,
    ],
}

_ORG_OR_GROUP = {"type": "object", "required": ["id", "name", "title", "type"], "properties": {
    "id": TEXT, "name": TEXT, "title": TEXT, "display_name": TEXT, "description": TEXT,
    "type": {"type": "string", "enum": ["organization", "group"]},
    "package_count": NATURAL, "is_organization": BOOLEAN, "state": TEXT}}
_RESOURCE = {"type": "object", "required": ["id", "package_id", "url", "format", "position"],
             "properties": {"id": TEXT, "package_id": TEXT, "url": TEXT, "name": TEXT,
                            "description": TEXT, "format": TEXT, "mimetype": NULLABLE_TEXT,
                            "size": {"type": "integer", "nullable": True},
                            "hash": NULLABLE_TEXT, "position": NATURAL, "state": TEXT}}
_TAG = {"type": "object", "required": ["id", "name"],
        "properties": {"id": TEXT, "name": TEXT, "display_name": TEXT}}
_PACKAGE = {"type": "object", "required": ["id", "name", "title", "state", "private",
                                           "resources", "tags", "groups", "extras"],
            "properties": {
                "id": TEXT, "name": TEXT, "title": TEXT, "notes": NULLABLE_TEXT,
                "url": NULLABLE_TEXT, "license_id": NULLABLE_TEXT, "private": BOOLEAN,
                "state": {"type": "string", "enum": ["active", "draft", "deleted"]},
                "type": TEXT, "metadata_created": NULLABLE_TEXT,
                "metadata_modified": NULLABLE_TEXT,
                "organization": {**_ORG_OR_GROUP, "nullable": True},
                "tags": {"type": "array", "items": _TAG},
                "groups": {"type": "array", "items": _ORG_OR_GROUP},
                "extras": {"type": "array", "items": {
                    "type": "object", "required": ["key", "value"],
                    "properties": {"key": TEXT, "value": TEXT}}},
                "resources": {"type": "array", "items": _RESOURCE},
                "num_resources": NATURAL, "num_tags": NATURAL}}
_NAMES_OR_DICTS = {"type": "array", "items": {"oneOf": [TEXT, _ORG_OR_GROUP]}}
_FACETS = {"type": "object", "additionalProperties": {"type": "object",
                                                      "additionalProperties": NATURAL}}

#: the `result` of each read action
RESULTS: dict[str, dict[str, Any]] = {
    "status_show": {"type": "object", "required": ["site_url", "ckan_version"],
                    "properties": {"site_url": TEXT, "ckan_version": TEXT,
                                   "site_title": TEXT, "locale_default": TEXT}},
    "site_read": BOOLEAN,
    "package_list": {"type": "array", "items": TEXT},
    "current_package_list_with_resources": {"type": "array", "items": _PACKAGE},
    "package_show": _PACKAGE,
    "resource_show": _RESOURCE,
    "organization_list": _NAMES_OR_DICTS,
    "group_list": _NAMES_OR_DICTS,
    "organization_show": {**_ORG_OR_GROUP, "properties": {
        **_ORG_OR_GROUP["properties"], "packages": {"type": "array", "items": _PACKAGE}}},
    "group_show": {**_ORG_OR_GROUP, "properties": {
        **_ORG_OR_GROUP["properties"], "packages": {"type": "array", "items": _PACKAGE}}},
    "tag_list": {"type": "array", "items": {"oneOf": [TEXT, _TAG]}},
    "license_list": {"type": "array", "items": {
        "type": "object", "required": ["id", "title"],
        "properties": {"id": TEXT, "title": TEXT, "url": TEXT}}},
    "help_show": TEXT,
    "package_search": {
        "type": "object", "required": ["count", "sort", "results", "facets", "search_facets"],
        "properties": {"count": NATURAL, "sort": TEXT,
                       "results": {"type": "array", "items": {"type": "object"}},
                       "facets": _FACETS,
                       "search_facets": {"type": "object", "additionalProperties": {
                           "type": "object", "required": ["title", "items"], "properties": {
                               "title": TEXT, "items": {"type": "array", "items": {
                                   "type": "object", "required": ["name", "count"],
                                   "properties": {"name": TEXT, "display_name": TEXT,
                                                  "count": NATURAL}}}}}}}},
    "package_autocomplete": {"type": "array", "items": {
        "type": "object", "required": ["name", "title", "match_field", "match_displayed"],
        "properties": {"name": TEXT, "title": TEXT, "match_displayed": TEXT,
                       "match_field": {"type": "string", "enum": ["name", "title"]}}}},
    "resource_search": {"type": "object", "required": ["count", "results"],
                        "properties": {"count": NATURAL,
                                       "results": {"type": "array", "items": _RESOURCE}}},
}

# what each status means in the action layer (hub.api.ckan.core's errors)
_ERRORS = {"400": "Search Query Error: a query or sort the hub cannot parse",
           "403": "Authorization Error: an unknown, expired or revoked token",
           "404": "Not Found Error: unknown or not visible to the caller (alike)",
           "409": "Validation Error: a parameter of the wrong type or out of range, named "
                  "with its messages"}
# which errors each action can answer besides 403 (a bad token is refused before any action)
_ACTION_ERRORS = {
    "package_search": ("400", "409"), "package_show": ("404", "409"),
    "resource_show": ("404", "409"), "organization_show": ("404", "409"),
    "group_show": ("404", "409"), "help_show": ("404", "409"),
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _envelope(result: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["help", "success", "result"],
            "additionalProperties": False,
            "properties": {"help": TEXT, "success": {"type": "boolean", "enum": [True]},
                           "result": result}}


def _action(name: str) -> dict[str, Any]:
    func, _ = ACTIONS[name]
    responses = {"200": _json(_envelope(RESULTS[name]), "CKAN's envelope with the result")}
    for status in ("403", *_ACTION_ERRORS.get(name, ("409",) if PARAMETERS[name] else ())):
        responses[status] = {"$ref": f"#/components/responses/Error{status}"}
    return {"get": {"operationId": name, "tags": ["CKAN Action API"],
                    "summary": (func.__doc__ or name).strip().splitlines()[0],
                    "description": (func.__doc__ or "").strip(),
                    "parameters": PARAMETERS[name], "responses": responses}}


_SUMMARY = {"type": "object", "additionalProperties": False,
            "required": ["name", "title", "description", "organization", "attribution",
                         "update_frequency", "version", "rows", "checksum", "bbox",
                         "geometry_types", "source_crs", "modified"],
            "properties": {
                "name": TEXT, "title": TEXT, "description": TEXT, "organization": TEXT,
                "attribution": TEXT, "update_frequency": TEXT,
                "version": {"type": "integer", "minimum": 1}, "rows": NATURAL,
                "checksum": TEXT,
                "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4,
                         "maxItems": 4, "nullable": True},
                "geometry_types": {"type": "array", "items": TEXT},
                "source_crs": {"type": "array", "items": TEXT}, "modified": TEXT}}
_DETAIL = {"type": "object", "required": ["detail"], "properties": {"detail": TEXT}}
_FEED = {"application/ld+json": {"type": "array", "items": {  # expanded JSON-LD
    "type": "object", "required": ["@id"], "properties": {"@id": TEXT}}}}
_BAD_TOKEN = {"$ref": "#/components/responses/BadToken"}


def _hub_paths() -> dict[str, Any]:
    feed_types = sorted(set(dcat.MEDIA_TYPES.values()))
    return {
        "/api/datasets": {"get": {
            "operationId": "list_datasets", "tags": ["Held data"],
            "summary": "The held datasets the caller may see, with their current version",
            "responses": {"200": _json({"type": "array", "items": _SUMMARY}, "Datasets"),
                          "403": _BAD_TOKEN}}},
        "/api/datasets/{name}": {"get": {
            "operationId": "show_dataset", "tags": ["Held data"],
            "summary": "One held dataset and its current version",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": TEXT}],
            "responses": {"200": _json(_SUMMARY, "The dataset"),
                          "403": _BAD_TOKEN,
                          "404": _json(_DETAIL, "Unknown or not visible to the caller "
                                                "(alike)")}}},
        "/catalog.{fmt}": {"get": {
            "operationId": "dcat_catalog", "tags": ["DCAT-AP.de"],
            "summary": f"The public catalog in DCAT-AP.de, {dcat.PER_PAGE} datasets a page",
            "parameters": [
                {"name": "fmt", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": sorted(dcat.FORMATS)}},
                _query("page", {"type": "integer", "minimum": 1, "maximum": 100_000},
                       "page number (hydra:PartialCollectionView links the pages)"),
                _query("modified_since", {"type": "string", "format": "date-time"},
                       "only datasets changed since (an ISO 8601 date or timestamp)")],
            "responses": {
                "200": {"description": "One page of the catalog",
                        "content": {t: {"schema": _FEED.get(t, TEXT)} for t in feed_types}},
                "400": _json(_DETAIL, "page is not an integer from 1 to 100,000, or "
                                       "modified_since is not an ISO 8601 date or time (the "
                                       "detail names which)"),
                "404": _json(_DETAIL, "an unknown format")}}},
        "/dataset/{ident}.{fmt}": {"get": {
            "operationId": "dcat_dataset", "tags": ["DCAT-AP.de"],
            "summary": "One public dataset in DCAT-AP.de",
            "parameters": [
                {"name": "ident", "in": "path", "required": True, "schema": TEXT,
                 "description": "id or name of a public dataset"},
                {"name": "fmt", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": sorted(dcat.FORMATS)}}],
            "responses": {
                "200": {"description": "The dataset, its distributions and publisher",
                        "content": {t: {"schema": _FEED.get(t, TEXT)} for t in feed_types}},
                "404": _json(_DETAIL, "not a public dataset (unknown and hidden alike)")}}},
    }


def document(base_url: str) -> dict[str, Any]:
    """The document, its server the hub's public base URL."""
    error = {"type": "object", "required": ["help", "success", "error"],
             "additionalProperties": False,
             "properties": {"help": TEXT, "success": {"type": "boolean", "enum": [False]},
                            "error": {"type": "object", "required": ["__type"],
                                      "properties": {"__type": TEXT, "message": TEXT},
                                      "additionalProperties": {
                                          "type": "array", "items": TEXT}}}}
    reads = sorted(name for name, (_, read) in ACTIONS.items() if read)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Datenhub: JSON- und CKAN-Schnittstelle", "version": __version__,
                 "description": "CKAN's Action API (read actions; writes are POST-only, see "
                                "help_show), the held datasets and the DCAT-AP.de catalog. "
                                "The OGC API is described at /ogc/api."},
        "servers": [{"url": base_url}],
        "paths": {**{f"/api/3/action/{name}": _action(name) for name in reads},
                  **_hub_paths(), **places.paths()},
        "components": {"responses": {
            **{f"Error{status}": _json(error, text) for status, text in _ERRORS.items()},
            "BadToken": _json(_DETAIL, "an unknown, expired or revoked token")}},
    }
