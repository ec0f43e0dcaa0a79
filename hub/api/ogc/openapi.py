"""The OpenAPI 3.0 document of the OGC API (`/api`), built for what one viewer may see.

Shared parameters live in `components`; each visible collection gets its own paths so its
queryable properties can be declared as query parameters (Part 3 `queryables-query-parameters`).
"""

from __future__ import annotations

from typing import Any

from hub import __version__
from hub.api.ogc import crs as crs_mod
from hub.api.ogc.cql2 import MAX_LENGTH as FILTER_MAX_LENGTH
from hub.api.ogc.layer import Meta
from hub.api.ogc.params import Limits

JSON_TYPES = {"string": "string", "integer": "integer", "year": "integer", "number": "number",
              "boolean": "boolean", "date": "string", "datetime": "string"}
FORMATS = {"date": "date", "datetime": "date-time"}


def _param(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": False,
            "description": description, "schema": schema, **extra}


def _path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _response(description: str, *media: str) -> dict[str, Any]:
    return {"description": description,
            "content": {m: {"schema": {"type": "object"}} for m in media}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {400: "A parameter is invalid; the body names it.",
             404: "No such collection or feature (or not visible to the caller).",
             503: "Busy with expensive requests, or out of time; see Retry-After."}
    # the body: JSON (code, description, the parameter at fault), or a German page when
    # the request asked for HTML (`f=html` or Accept) and could name that
    error = {"type": "object", "required": ["code", "description"],
             "properties": {"code": {"type": "string"}, "description": {"type": "string"},
                            "parameter": {"type": "string"}}}
    return {str(c): {"description": texts[c],
                     "content": {"application/json": {"schema": error},
                                 **({"text/html": {"schema": {"type": "string"}}}
                                    if c != 503 else {})}} for c in codes}


NUMERIC = ("integer", "year", "number")


def property_schema(f: Any) -> dict[str, Any]:
    """JSON Schema of one table-schema field (for queryables and parameters): its type and the
    constraints an equality filter checks too (`params.check_constraints`)."""
    schema: dict[str, Any] = {"type": JSON_TYPES.get(f.type, "string")}
    if f.type in FORMATS:
        schema["format"] = FORMATS[f.type]
    if f.title:
        schema["title"] = f.title
    if f.description:
        schema["description"] = f.description
    c = f.constraints
    if "enum" in c:
        schema["enum"] = c["enum"]
    if f.type in NUMERIC:
        schema.update({k: c[k] for k in ("minimum", "maximum") if k in c})
    if f.type == "string":
        schema.update({k: c[k] for k in ("minLength", "maxLength") if k in c})
        if "pattern" in c:  # a table schema's pattern matches the whole value
            schema["pattern"] = f"^(?:{c['pattern']})$"
    return schema


def geometry_schema(f: Any, types: list[str]) -> dict[str, Any]:
    """The geometry queryable (Part 3): a format naming its kind, the OGC role."""
    kinds = {t.lower() for t in types}
    fmt = f"geometry-{kinds.pop()}" if len(kinds) == 1 else "geometry-any"
    schema: dict[str, Any] = {"title": f.title or "Geometrie", "format": fmt,
                              "x-ogc-role": "primary-geometry"}
    if f.description:
        schema["description"] = f.description
    return schema


def document(base: str, title: str, description: str,
             collections: list[tuple[str, str, Meta]], limits: Limits,
             max_zoom: int) -> dict[str, Any]:
    crs_enum = {"type": "string", "format": "uri", "enum": list(crs_mod.SUPPORTED)}
    parameters = {
        "f": _param("f", {"type": "string", "enum": ["json", "html"]},
                    "Ausgabeformat (sonst nach Accept-Header; Vorgabe JSON)."),
        "limit": _param("limit", {"type": "integer", "minimum": 1, "maximum": limits.maximum,
                                  "default": limits.default},
                        "Höchstzahl der Features je Seite; größere Werte werden begrenzt."),
        "offset": _param("offset", {"type": "integer", "minimum": 0, "default": 0},
                         "Zahl der übersprungenen Features (Blättern über next/prev-Links)."),
        "bbox": _param("bbox", {"type": "array", "minItems": 4, "maxItems": 6,
                                "items": {"type": "number"}},
                       "Begrenzungsrechteck minx,miny,maxx,maxy (Vorgabe CRS84; siehe bbox-crs)."),
        "bbox-crs": _param("bbox-crs", crs_enum, "Koordinatenreferenzsystem von bbox "
                           "(nur zusammen mit bbox)."),
        "crs": _param("crs", crs_enum, "Koordinatenreferenzsystem der Ausgabe."),
        "datetime": _param("datetime", {"type": "string", "minLength": 1, "pattern": "\\S"},
                           "Zeitpunkt oder Intervall nach RFC 3339 (a/b, ../b, a/.., "
                           "a/P2D), der Beginn nicht nach dem Ende."),
        "filter": _param("filter", {"type": "string", "minLength": 1, "pattern": "\\S",
                                    "maxLength": FILTER_MAX_LENGTH},
                         "CQL2-Text-Filter über die abfragbaren Eigenschaften, z. B. "
                         "art = 'Hospiz' AND S_INTERSECTS(geometry, BBOX(13.3,51.5,13.6,51.7))."),
        "filter-lang": _param("filter-lang", {"type": "string",
                                              "enum": ["cql2-text", "cql-text"],
                                              "default": "cql2-text"},
                              "Sprache von filter: cql2-text (cql-text, der Name aus dem "
                              "Entwurf, den GDAL sendet, wird als cql2-text gelesen); nur "
                              "zusammen mit filter."),
        "filter-crs": _param("filter-crs", crs_enum,
                             "Koordinatenreferenzsystem der Geometrien in filter (Vorgabe "
                             "CRS84); nur zusammen mit filter."),
        "f-json": _param("f", {"type": "string", "enum": ["json"]},
                         "Ausgabeformat (nur JSON)."),
        "f-mvt": _param("f", {"type": "string", "enum": ["mvt", "pbf"]},
                        "Ausgabeformat (nur Mapbox Vector Tile)."),
        "tileMatrixSetId": _path("tileMatrixSetId", {"type": "string",
                                                     "enum": ["WebMercatorQuad"]},
                                 "Kachelschema."),
        "tileMatrix": _path("tileMatrix", {"type": "string",
                                           "enum": [str(z) for z in range(max_zoom + 1)]},
                            "Zoomstufe (0 bis zur größten des Kachelsatzes)."),
        "tileRow": _path("tileRow", {"type": "integer", "minimum": 0,
                                     "maximum": 2 ** max_zoom - 1},
                         "Kachelzeile (y), kleiner als 2^tileMatrix."),
        "tileCol": _path("tileCol", {"type": "integer", "minimum": 0,
                                     "maximum": 2 ** max_zoom - 1},
                         "Kachelspalte (x), kleiner als 2^tileMatrix."),
        "featureId": {"name": "featureId", "in": "path", "required": True,
                      "description": "Kennung des Features (Primärschlüssel oder Zeilennummer).",
                      "schema": {"type": "string"}},
    }
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "Startseite", "operationId": "getLandingPage",
                      "parameters": [_ref("f")],
                      "responses": {"200": _response("Startseite", "application/json",
                                                     "text/html"), **_errors(400)}}},
        "/conformance": {"get": {
            "summary": "Erfüllte Konformitätsklassen", "operationId": "getConformance",
            "parameters": [_ref("f")],
            "responses": {"200": _response("Konformitätsklassen", "application/json",
                                           "text/html"), **_errors(400)}}},
        "/api": {"get": {
            "summary": "Diese API-Beschreibung", "operationId": "getApi",
            "parameters": [_ref("f")],
            "responses": {"200": _response("OpenAPI 3.0",
                                           "application/vnd.oai.openapi+json;version=3.0",
                                           "text/html"), **_errors(400)}}},
        "/collections": {"get": {
            "summary": "Sammlungen", "operationId": "getCollections",
            "parameters": [_ref("f")],
            "responses": {"200": _response("Sammlungen", "application/json", "text/html"),
                          **_errors(400)}}},
    }
    for name, coll_title, meta in collections:
        tag = [name]
        filters = [_param(f.name, property_schema(f), f"Gleichheitsfilter auf {f.name}.")
                   for f in meta.queryables.values() if f.name not in parameters]
        paths[f"/collections/{name}"] = {"get": {
            "summary": f"Sammlung „{coll_title}“", "tags": tag,
            "operationId": f"describeCollection_{name}", "parameters": [_ref("f")],
            "responses": {"200": _response("Sammlung", "application/json", "text/html"),
                          **_errors(400, 404)}}}
        paths[f"/collections/{name}/items"] = {"get": {
            "summary": f"Features von „{coll_title}“", "tags": tag,
            "operationId": f"getFeatures_{name}",
            "parameters": [_ref(p) for p in ("f", "limit", "offset", "bbox", "bbox-crs", "crs",
                                             "datetime", "filter", "filter-lang", "filter-crs")]
            + filters,
            "responses": {"200": _response("Features", "application/geo+json", "text/html"),
                          **_errors(400, 404, 503)}}}
        paths[f"/collections/{name}/items/{{featureId}}"] = {"get": {
            "summary": f"Ein Feature von „{coll_title}“", "tags": tag,
            "operationId": f"getFeature_{name}",
            "parameters": [_ref("featureId"), _ref("f"), _ref("crs")],
            "responses": {"200": _response("Feature", "application/geo+json", "text/html"),
                          **_errors(400, 404, 503)}}}
        paths[f"/collections/{name}/queryables"] = {"get": {
            "summary": f"Abfragbare Eigenschaften von „{coll_title}“", "tags": tag,
            "operationId": f"getQueryables_{name}", "parameters": [_ref("f")],
            "responses": {"200": _response("JSON Schema", "application/schema+json",
                                           "text/html"), **_errors(400, 404)}}}
    paths["/tileMatrixSets"] = {"get": {
        "summary": "Kachelschemata", "operationId": "getTileMatrixSetsList",
        "parameters": [_ref("f-json")],
        "responses": {"200": _response("Kachelschemata", "application/json"), **_errors(400)}}}
    paths["/tileMatrixSets/{tileMatrixSetId}"] = {"get": {
        "summary": "Ein Kachelschema", "operationId": "getTileMatrixSet",
        "parameters": [_ref("tileMatrixSetId"), _ref("f-json")],
        "responses": {"200": _response("Kachelschema", "application/json"),
                      **_errors(400, 404)}}}
    for name, coll_title, _ in collections:
        tiles = f"/collections/{name}/tiles"
        paths[tiles] = {"get": {
            "summary": f"Kachelsätze von „{coll_title}“", "tags": [name],
            "operationId": f"getTileSetsList_{name}", "parameters": [_ref("f-json")],
            "responses": {"200": _response("Kachelsätze", "application/json"),
                          **_errors(400, 404)}}}
        paths[tiles + "/{tileMatrixSetId}"] = {"get": {
            "summary": f"Kachelsatz von „{coll_title}“", "tags": [name],
            "operationId": f"getTileSet_{name}",
            "parameters": [_ref("tileMatrixSetId"), _ref("f-json")],
            "responses": {"200": _response("Kachelsatz", "application/json"),
                          **_errors(400, 404, 503)}}}
        paths[tiles + "/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"] = {"get": {
            "summary": f"Vektorkachel von „{coll_title}“", "tags": [name],
            "operationId": f"getTile_{name}",
            "parameters": [_ref(p) for p in ("tileMatrixSetId", "tileMatrix", "tileRow",
                                             "tileCol", "f-mvt")],
            "responses": {"200": _response("Kachel (Mapbox Vector Tile)",
                                           "application/vnd.mapbox-vector-tile"),
                          "204": {"description": "Leere Kachel: hier liegen keine Daten."},
                          **_errors(400, 404, 503)}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "description": description, "version": __version__,
                 "license": {"name": "EUPL-1.2",
                             "url": "https://interoperable-europe.ec.europa.eu/collection/"
                                    "eupl/eupl-text-eupl-12"}},
        "servers": [{"url": base}],
        "tags": [{"name": name, "description": coll_title} for name, coll_title, _ in collections],
        "paths": paths,
        "components": {"parameters": parameters},
    }
