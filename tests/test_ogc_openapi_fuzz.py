"""The OpenAPI document and the server agree: requests generated from the document.

Every operation of `/ogc/api` is called at `servers[0].url` with parameters generated (seeded)
from its own parameter schemas:

- *valid* requests — a random subset of the query parameters, each with a value its schema
  accepts — never answer 400 (nor any 5xx);
- requests with one value the schema rejects (wrong type, out of range or length, outside the
  enum or pattern, empty where a non-empty string is declared) answer 400 naming that
  parameter; for a path parameter the resource does not exist, so 404 is right too.

Where the schema cannot say all (a bbox's corners in order, a tile index below 2^zoom, a
datetime or CQL2 text, `bbox-crs` only with `bbox`) the generator makes values the descriptions
promise. Two documented leniencies are not tested as errors: a `limit` above the maximum is
clamped (OGC API – Features, /req/core/fc-limit-response-1) and `f` also takes `geojson`.
"""

from __future__ import annotations

import random
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import DISTRICT_BBOX
from ogc_site import Site
from pyproj import Transformer

SEED = 20261201
VALID_PER_OPERATION = 12
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DATETIMES = ["2025-03-01", "2025-01-01T00:00:00Z", "2025-01-01/2025-06-30", "../2025-05-01",
             "2025-02-01/..", "2025-01-01T08:00:00+01:00/P2D", "P1M/2025-06-01"]


@pytest.fixture(scope="module")
def api(ogc_site: Site) -> dict[str, Any]:
    return ogc_site.json("/api")


def resolve(doc: dict[str, Any], param: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in param:
        return doc["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
    return param


class Values:
    """Valid and invalid values for one collection's parameters, from a seeded generator."""

    def __init__(self, rng: random.Random, rows: list[dict[str, Any]]):
        self.rng, self.rows = rng, rows
        self.queryables = list(rows[0]) if rows else []

    def valid(self, name: str, schema: dict[str, Any]) -> str:
        rng = self.rng
        if name == "datetime":
            return rng.choice(DATETIMES)
        if name == "filter":
            prop = rng.choice(self.queryables or ["x"])
            return rng.choice([f"{prop} IS NOT NULL", f"NOT {prop} IS NULL",
                               f"{prop} IS NULL OR {prop} IS NOT NULL"])
        if name in self.queryables and (rng.random() < 0.5 or "pattern" in schema):
            values = [r[name] for r in self.rows if r[name] is not None]
            value = rng.choice(values)
            if isinstance(value, bool):
                return str(value).lower()
            return value.isoformat() if hasattr(value, "isoformat") else str(value)
        if "enum" in schema:
            return str(rng.choice(schema["enum"]))
        kind = schema.get("type")
        if kind == "integer":
            low = schema.get("minimum", -1000)
            high = schema.get("maximum", low + 2000)
            return str(rng.choice([low, high, rng.randint(low, min(high, low + 200))]))
        if kind == "number":
            low, high = schema.get("minimum", -1e3), schema.get("maximum", 1e3)
            return repr(rng.uniform(low, high))
        if kind == "boolean":
            return rng.choice(["true", "false"])
        if schema.get("format") == "date":
            return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if schema.get("format") == "date-time":
            return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z"
        if kind == "string":
            return "".join(rng.choice("abcXYZ äöü-_ 019") for _ in range(rng.randint(0, 12)))
        raise AssertionError(f"no generator for {name}: {schema}")

    def query(self, params: list[dict[str, Any]]) -> dict[str, str]:
        """A random subset of the query parameters with valid values (`bbox-crs` with `bbox`,
        `filter-lang` and `filter-crs` with `filter`, as their descriptions say)."""
        chosen = {p["name"]: p for p in params if self.rng.random() < 0.35}
        needs = {"bbox-crs": "bbox", "filter-lang": "filter", "filter-crs": "filter"}
        for name, other in needs.items():
            if name in chosen:
                chosen.setdefault(other, next(p for p in params if p["name"] == other))
        out = {n: self.valid(n, p["schema"]) for n, p in chosen.items() if n != "bbox"}
        if "bbox" in chosen:
            out["bbox"] = self.bbox(out.get("bbox-crs", CRS84))
        return out

    def bbox(self, crs: str) -> str:
        x0, y0, x1, y1 = DISTRICT_BBOX
        a, b = sorted(self.rng.uniform(x0, x1) for _ in range(2))
        c, d = sorted(self.rng.uniform(y0, y1) for _ in range(2))
        if crs != CRS84:  # the box's envelope in that CRS
            xs, ys = Transformer.from_crs("OGC:CRS84", crs, always_xy=True).transform(
                [a, a, b, b], [c, d, c, d])
            a, b, c, d = min(xs), max(xs), min(ys), max(ys)
        box = [c, a, d, b] if crs.endswith("/4326") else [a, c, b, d]  # 4326 is lat, lon
        if self.rng.random() < 0.3:
            box = [box[0], box[1], 0.0, box[2], box[3], 10.0]  # with heights
        return ",".join(repr(v) for v in box)

    def invalid(self, name: str, schema: dict[str, Any]) -> list[str]:
        """Values the schema rejects (none for a plain string)."""
        if name == "bbox":
            return ["1,2,3", "1,2,3,4,5,6,7", "a,b,c,d"]
        out = []
        if "enum" in schema:
            out.append("zz" + "".join(self.rng.choice("qwx") for _ in range(3)))
        kind = schema.get("type")
        if kind in ("integer", "number"):
            out += ["abc", "1,5" if kind == "number" else "1.5"]
            if "minimum" in schema:
                out.append(str(schema["minimum"] - 1))
            if "maximum" in schema and name != "limit":
                out.append(str(schema["maximum"] + 1))
        if kind == "boolean":
            out.append("vielleicht")
        if schema.get("format") == "date":
            out += ["2025-13-45", "gestern"]
        if schema.get("format") == "date-time":
            out.append("2025-01-01T25:00:00Z")
        if schema.get("minLength", 0) > 0:
            out.append("")
        if "pattern" in schema:
            out += [v for v in ("kein Muster", "!") if not re.search(schema["pattern"], v)]
        if "maxLength" in schema:
            out.append("x" * (schema["maxLength"] + 1))
        return out


def operations(doc: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(path, [resolve(doc, p) for p in op["get"].get("parameters", [])])
            for path, op in doc["paths"].items()]


def fill_path(path: str, params: list[dict[str, Any]], values: Values,
              rng: random.Random) -> str:
    """The path with valid values for its path parameters."""
    zoom = rng.choice([0, 3, 8, 12])
    x0, _, x1, _ = DISTRICT_BBOX  # a column over the data (rows at random: 404s too)
    n = 2 ** zoom
    col = int((rng.uniform(x0, x1) + 180) / 360 * n)
    row = rng.randrange(n)
    known = {"tileMatrixSetId": "WebMercatorQuad", "tileMatrix": str(zoom),
             "tileRow": str(row), "tileCol": str(col)}
    for p in params:
        if p["in"] == "path":
            if p["name"] == "featureId":
                ids = [str(r.get("id", i + 1)) for i, r in enumerate(values.rows)] or ["1"]
                value = rng.choice([*ids, "999999", "gibt es nicht"])
            else:
                value = known[p["name"]]
            path = path.replace("{" + p["name"] + "}", quote(value, safe=""))
    return path


def collection_of(path: str) -> str | None:
    match = re.match(r"/collections/([^/]+)", path)
    return match[1] if match else None


def test_generated_requests_agree_with_the_document(api: dict[str, Any], ogc_site: Site
                                                    ) -> None:
    base = api["servers"][0]["url"]
    assert base == ogc_site.url  # the base every path of the document is relative to
    rng = random.Random(SEED)
    names = {collection_of(path) for path in api["paths"]} - {None}
    rows = {name: ogc_site.project.rows(name) for name in names}
    checked = 0
    with httpx.Client(timeout=60) as client:
        for path, params in operations(api):
            name = collection_of(path)
            values = Values(rng, rows[name] if name else [])
            query = [p for p in params if p["in"] == "query"]
            tiles = path.endswith("{tileCol}")
            allowed = {200, 204, 404} if tiles else {200, 404} if "{featureId}" in path \
                else {200}
            for _ in range(VALID_PER_OPERATION):
                url = base + fill_path(path, params, values, rng)
                given = values.query(query)
                response = client.get(url, params=given)
                assert response.status_code in allowed, (url, given, response.text[:300])
                checked += 1
            for p in params:
                for bad in values.invalid(p["name"], p["schema"]):
                    given = values.query(query)
                    if p["in"] == "path":
                        wrong = path.replace("{" + p["name"] + "}", quote(bad, safe=""))
                        url = base + fill_path(wrong, params, values, rng)
                        response = client.get(url, params=given)
                        assert response.status_code in (400, 404), (url, response.text[:300])
                    else:
                        given.pop("f", None)  # errors in JSON, to read the parameter named
                        given[p["name"]] = bad
                        response = client.get(base + fill_path(path, params, values, rng),
                                              params=given)
                        assert response.status_code == 400, (path, given, response.text[:300])
                        assert response.json()["parameter"] == p["name"], response.text
                    checked += 1
    assert checked > 500
