"""The OpenAPI description of /api/orte (merged into /api/openapi.json by hub.api.openapi)."""

from __future__ import annotations

from typing import Any

from hub.places.answers import BROADBAND, MOBILITY
from hub.places.routes import MAX_QUERY, MAX_SLUG, PREFIX

TAG = "Places"
_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": "string", "nullable": True}
_MAYBE_INT = {"type": "integer", "nullable": True}
_MAYBE_NUMBER = {"type": "number", "nullable": True}
_MAYBE_BOOL = {"type": "boolean", "nullable": True}
_UNITS = {"type": "object", "additionalProperties": _TEXT}
_DETAIL = {"type": "object", "required": ["detail"], "properties": {"detail": _TEXT}}
_PLACE = {"type": "object", "required": ["slug", "name", "ags", "kind", "designation"],
          "properties": {"slug": _TEXT, "name": _TEXT, "ags": _TEXT,
                         "kind": {"type": "string", "enum": ["municipality"]},
                         "designation": _TEXT}}
_MATCH = {**_PLACE, "required": [*_PLACE["required"], "matched"], "properties": {
    **_PLACE["properties"], "matched": {"type": "string", "enum": ["name", "postcode"]},
    "postcode": _TEXT}}
_SOURCE = {"type": "object",
           "required": ["dataset", "title", "version", "date", "modified", "links"],
           "properties": {
               "dataset": _TEXT, "title": _TEXT, "version": {"type": "integer", "minimum": 1},
               "date": {"type": "string", "format": "date"}, "modified": _TEXT,
               "attribution": _MAYBE_TEXT,
               "license": {"type": "object", "nullable": True, "required": ["title"],
                           "properties": {"title": _TEXT, "url": _MAYBE_TEXT}},
               "links": {"type": "object", "required": ["collection", "items"],
                         "properties": {"dataset": _TEXT, "collection": _TEXT,
                                        "items": _TEXT}}}}
_WHERE = {"lon": {"type": "number"}, "lat": {"type": "number"},
          "distance_m": {"type": "integer", "minimum": 0},
          "distance_kind": {"type": "string", "enum": ["straight-line"]}}
_CARE_ITEM = {"type": "object", "required": ["type", "name", "distance_m", "distance_kind"],
              "properties": {
                  "type": _MAYBE_TEXT, "name": _MAYBE_TEXT, "provider": _MAYBE_TEXT,
                  "address": {"type": "object", "properties": {
                      "street": _MAYBE_TEXT, "postcode": _MAYBE_TEXT, "town": _MAYBE_TEXT}},
                  "phone": _MAYBE_TEXT, "email": _MAYBE_TEXT, "website": _MAYBE_TEXT,
                  "places": _MAYBE_INT, "wheelchair_accessible": _MAYBE_BOOL,
                  "languages": _MAYBE_TEXT, "opening_hours": _MAYBE_TEXT, **_WHERE}}
_STATION = {"type": "object", "required": ["name", "type", "distance_m", "distance_kind"],
            "properties": {
                "id": _MAYBE_TEXT, "name": _MAYBE_TEXT, "type": _MAYBE_TEXT,
                "operator": _MAYBE_TEXT, "charging_points": _MAYBE_INT,
                "power_kw": _MAYBE_NUMBER, "connectors": _MAYBE_TEXT, "capacity": _MAYBE_INT,
                "wheelchair_accessible": _MAYBE_BOOL, "opening_hours": _MAYBE_TEXT,
                **_WHERE}}
_FIGURES = {"type": "object", "nullable": True, "properties": {
    "ags": _MAYBE_TEXT, "municipality": _MAYBE_TEXT,
    **{field: (_MAYBE_NUMBER if field.startswith("share") else _MAYBE_TEXT
               if field in ("completion_by", "as_of") else _MAYBE_INT) for field in BROADBAND}}}
_ANSWERS = {"type": "object", "description": "Only the topics whose dataset the caller may "
            "see (a hidden or missing one is absent)", "additionalProperties": False,
            "properties": {
                "broadband": {"type": "object", "required": ["figures", "units", "source"],
                              "properties": {"figures": _FIGURES, "units": _UNITS,
                                             "source": _SOURCE}},
                "care": {"type": "object", "required": ["nearest", "types", "distance_kind",
                                                        "units", "source"],
                         "properties": {"nearest": {"type": "array", "items": _CARE_ITEM},
                                        "types": {"type": "array", "items": _TEXT},
                                        "distance_kind": _TEXT, "units": _UNITS,
                                        "source": _SOURCE}},
                "mobility": {"type": "object", "required": ["categories", "within_m",
                                                            "distance_kind", "units",
                                                            "source"],
                             "properties": {
                                 "categories": {"type": "object", "required": list(MOBILITY),
                                                "properties": {c: {
                                                    "type": "object",
                                                    "required": ["type", "nearest"],
                                                    "properties": {"type": _TEXT, "nearest": {
                                                        "type": "array", "items": _STATION}}}
                                                    for c in MOBILITY}},
                                 "within_m": {"type": "integer"}, "distance_kind": _TEXT,
                                 "units": _UNITS, "source": _SOURCE}}}}
_POINT = {"type": "object", "required": ["lon", "lat"],
          "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}}}
_BAD = {"description": "A parameter is missing, too long, has control characters or is not "
                      "a number in range (the detail names it)",
        "content": {"application/json": {"schema": _DETAIL}}}
_BAD_TOKEN = {"$ref": "#/components/responses/BadToken"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": True, "schema": schema,
            "description": description, "style": "form", "explode": True}


def paths() -> dict[str, Any]:
    """The /api/orte operations."""
    degrees = "degrees (WGS84, OGC:CRS84)"
    return {
        PREFIX: {"get": {
            "operationId": "list_places", "tags": [TAG],
            "summary": "The district's places (municipalities) the caller may see, by name",
            "responses": {"200": _json({"type": "array", "items": _PLACE}, "Places"),
                          "403": _BAD_TOKEN}}},
        f"{PREFIX}/suche": {"get": {
            "operationId": "search_places", "tags": [TAG],
            "summary": "Places by name (with or without diacritics, prefixes) or by a "
                       "postcode that occurs in the data; suggestions when nothing matches",
            "parameters": [_query("q", {"type": "string", "minLength": 1,
                                        "maxLength": MAX_QUERY}, "the text to search for")],
            "responses": {"200": _json({"type": "object", "required": [
                "query", "matches", "suggestions"], "properties": {
                    "query": _TEXT, "matches": {"type": "array", "items": _MATCH},
                    "suggestions": {"type": "array", "items": _PLACE}}}, "Matches"),
                "400": _BAD, "403": _BAD_TOKEN}}},
        f"{PREFIX}/punkt": {"get": {
            "operationId": "point_answers", "tags": [TAG],
            "summary": "The answers for a point of the district (nearest to it)",
            "parameters": [_query("lon", {"type": "number", "minimum": -180, "maximum": 180},
                                  f"longitude in {degrees}"),
                           _query("lat", {"type": "number", "minimum": -90, "maximum": 90},
                                  f"latitude in {degrees}")],
            "responses": {"200": _json({"type": "object", "required": [
                "point", "place", "answers"], "properties": {
                    "point": _POINT, "place": {**_PLACE, "nullable": True},
                    "answers": _ANSWERS}}, "The answers"),
                "400": _BAD, "403": _BAD_TOKEN,
                "404": _json(_DETAIL, "The point lies outside the district")}}},
        f"{PREFIX}/{{slug}}": {"get": {
            "operationId": "place_answers", "tags": [TAG],
            "summary": "The answers for one place: broadband, the nearest care service of "
                       "each type, the nearest mobility stations, each with its source",
            "parameters": [{"name": "slug", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1,
                                       "maxLength": MAX_SLUG}}],
            "responses": {"200": _json({"type": "object", "required": ["place", "answers"],
                                        "properties": {
                                            "place": {**_PLACE, "properties": {
                                                **_PLACE["properties"],
                                                "origin": {**_POINT, "properties": {
                                                    **_POINT["properties"],
                                                    "kind": _TEXT}}}},
                                            "answers": _ANSWERS}}, "The answers"),
                          "400": _BAD, "403": _BAD_TOKEN,
                          "404": _json({**_DETAIL, "properties": {
                              **_DETAIL["properties"],
                              "suggestions": {"type": "array", "items": _PLACE}}},
                              "No such place (or none the caller may see): the closest "
                              "names as suggestions")}}},
    }
