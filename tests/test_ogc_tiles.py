"""OGC API – Tiles over HTTP: tile matrix sets, tilesets, TileJSON and Mapbox vector tiles.

Tiles are decoded with mapbox-vector-tile (an independent decoder) and compared with the
store: every point inside a tile appears in it (within one tile unit) or, where the tile is
clustered, the cluster counts add up to the points inside; no tile exceeds the size budget at
zooms 0–14 of the 100,000-point layer; polygon geometries are valid."""

from __future__ import annotations

import math
import random
from typing import Any

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from ogc_site import BIG_ROWS, Site
from pyproj import Transformer

TMS = "WebMercatorQuad"
MVT = "application/vnd.mapbox-vector-tile"
BUDGET = 500_000
ORIGIN = math.pi * 6378137.0
EXTENT = 4096


def tiles_url(name: str, z: int | str = "", y: int | str = "", x: int | str = "") -> str:
    tail = "/".join(str(p) for p in (z, y, x) if p != "")
    return f"/collections/{name}/tiles/{TMS}" + (f"/{tail}" if tail else "")


def grid(site: Site, name: str, z: int) -> np.ndarray:
    """Stored points in global tile units at zoom z (pyproj's EPSG:3857, not the server's)."""
    xy = shapely.get_coordinates(np.array(site.project.geometries(name)))
    mx, my = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(
        xy[:, 0], xy[:, 1])
    scale = 2 ** z / (2 * ORIGIN)
    return np.column_stack([(mx + ORIGIN) * scale, (ORIGIN - my) * scale])


def decode(content: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def test_tile_matrix_sets_and_links(ogc_site: Site) -> None:
    landing = ogc_site.json("/")
    rels = {lk["rel"]: lk["href"] for lk in landing["links"]}
    listing = ogc_site.client.get(rels["http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"])
    assert listing.status_code == 200
    entry = listing.json()["tileMatrixSets"][0]
    assert entry["id"] == TMS and entry["uri"].endswith("/tilematrixset/OGC/1.0/WebMercatorQuad")
    tms = ogc_site.json(f"/tileMatrixSets/{TMS}")
    matrices = tms["tileMatrices"]
    assert [m["id"] for m in matrices] == [str(z) for z in range(21)]
    assert matrices[0]["scaleDenominator"] == pytest.approx(559082264.0287178)
    assert matrices[20]["matrixWidth"] == 2 ** 20 and matrices[3]["tileWidth"] == 256
    assert ogc_site.get("/tileMatrixSets/WorldCRS84Quad").status_code == 404
    conf = ogc_site.json("/conformance")["conformsTo"]
    for part in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{part}" in conf
    coll = ogc_site.json("/collections/gross")
    link = next(lk for lk in coll["links"]
                if lk["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector")
    sets = ogc_site.client.get(link["href"]).json()["tilesets"]
    assert sets[0]["tileMatrixSetURI"] == entry["uri"] and sets[0]["dataType"] == "vector"
    api = ogc_site.json("/api")["paths"]
    assert "/collections/gross/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}" in api
    assert not any("/collections/intern" in p for p in api)


def test_tileset_metadata_and_tilejson(ogc_site: Site) -> None:
    meta = ogc_site.json(tiles_url("gross"))
    version = ogc_site.project.current("gross")
    assert meta["dataType"] == "vector" and meta["crs"].endswith("/EPSG/0/3857")
    layer = meta["layers"][0]
    assert layer["id"] == "gross" and layer["geometryDimension"] == 0
    assert {"nr", "gruppe", "point_count"} <= set(layer["propertiesSchema"]["properties"])
    item = next(lk for lk in meta["links"] if lk["rel"] == "item")
    assert item["templated"] and item["type"] == MVT
    assert item["href"].endswith("/{tileMatrix}/{tileRow}/{tileCol}")
    limits = {int(lim["tileMatrix"]): lim for lim in meta["tileMatrixSetLimits"]}
    points = grid(ogc_site, "gross", 12)
    lim = limits[12]
    assert (lim["minTileCol"], lim["maxTileCol"]) == (int(points[:, 0].min()),
                                                      int(points[:, 0].max()))
    assert (lim["minTileRow"], lim["maxTileRow"]) == (int(points[:, 1].min()),
                                                      int(points[:, 1].max()))
    tilejson = ogc_site.json(tiles_url("gross", "tilejson.json"))
    assert tilejson["tilejson"] == "3.0.0" and tilejson["bounds"] == version.bbox
    assert tilejson["tiles"][0].endswith("/gross/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert tilejson["vector_layers"][0]["id"] == "gross"
    assert tilejson["vector_layers"][0]["fields"]["nr"] == "Number"
    assert (tilejson["minzoom"], tilejson["maxzoom"]) == (0, 20)


def _tiles_to_check(meta: dict[str, Any], z: int, rng: random.Random) -> list[tuple[int, int]]:
    lim = meta["tileMatrixSetLimits"][z]
    every = [(y, x) for y in range(lim["minTileRow"], lim["maxTileRow"] + 1)
             for x in range(lim["minTileCol"], lim["maxTileCol"] + 1)]
    return every if len(every) <= 40 else rng.sample(every, 30)


def test_point_tiles_hold_every_point_or_clusters_that_add_up(ogc_site: Site) -> None:
    meta = ogc_site.json(tiles_url("gross"))
    detail = meta["x-hub-pointClusters"]["detailZoom"]
    raw_max = meta["x-hub-pointClusters"]["maxPointsPerTile"]
    assert 0 < detail <= 14
    rows = ogc_site.project.rows("gross")
    rng = random.Random(3)
    largest, kinds = 0, set()
    for z in range(0, 15):
        points = grid(ogc_site, "gross", z)
        cell = np.floor(points).astype(np.int64)
        keys, counts = np.unique(cell[:, 1] * 2 ** z + cell[:, 0], return_counts=True)
        densest = (int(keys[counts.argmax()]) // 2 ** z, int(keys[counts.argmax()]) % 2 ** z)
        for y, x in [densest, *_tiles_to_check(meta, z, rng)]:
            response = ogc_site.get(tiles_url("gross", z, y, x))
            inside = np.flatnonzero((cell[:, 0] == x) & (cell[:, 1] == y))
            if not len(inside):
                assert response.status_code == 204, (z, y, x)
                continue
            assert response.status_code == 200 and response.headers["content-type"] == MVT
            largest = max(largest, len(response.content))
            assert len(response.content) <= BUDGET, (z, y, x)
            features = decode(response.content)["gross"]["features"]
            if "point_count" in features[0]["properties"]:  # clustered
                kinds.add("clusters")
                assert z < detail and len(inside) > raw_max
                assert sum(f["properties"]["point_count"] for f in features) == len(inside)
                assert len(features) <= 64 * 64
                continue
            kinds.add("points")
            assert len(inside) <= raw_max
            got = {f["id"]: f for f in features}
            assert {int(i) + 1 for i in inside} <= set(got), (z, y, x)  # ids are row numbers
            local = (points - [x, y]) * EXTENT
            for i in inside[:200]:
                f = got[int(i) + 1]
                assert np.abs(np.array(f["geometry"]["coordinates"]) - local[i]).max() <= 1.0
                assert f["properties"] == rows[i]
            members = set(inside.tolist())
            extra = np.array([f["id"] - 1 for f in features if f["id"] - 1 not in members],
                             np.int64)  # the buffer: at most 64 units outside
            if len(extra):
                assert (np.abs(local[extra] - EXTENT / 2).max(axis=1) <= EXTENT / 2 + 64).all()
    assert kinds == {"clusters", "points"} and largest > 10_000
    assert len(rows) == BIG_ROWS


def test_polygon_tiles_are_valid_and_match_the_features(ogc_site: Site) -> None:
    meta = ogc_site.json(tiles_url("flaechen"))
    assert meta["layers"][0]["geometryDimension"] == 2 and "x-hub-pointClusters" not in meta
    shapes = ogc_site.project.geometries("flaechen")
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    seen = 0
    for z in (6, 9, 11, 13):
        scale = 2 ** z / (2 * ORIGIN)

        def global_units(c: np.ndarray, scale: float = scale) -> np.ndarray:
            mx, my = to_merc.transform(c[:, 0], c[:, 1])
            return np.column_stack([(mx + ORIGIN) * scale, (ORIGIN - my) * scale])
        projected = [shapely.transform(s, global_units) for s in shapes]
        for y, x in _tiles_to_check(meta, z, random.Random(z)):
            response = ogc_site.get(tiles_url("flaechen", z, y, x))
            tile_box = shapely.box(x, y, x + 1, y + 1)
            meeting = {i + 1 for i, s in enumerate(projected) if s.intersects(tile_box)}
            if response.status_code == 204:
                assert not any(projected[i - 1].intersection(tile_box).area * EXTENT ** 2 > 64
                               for i in meeting)
                continue
            assert response.status_code == 200 and len(response.content) <= BUDGET
            for f in decode(response.content)["flaechen"]["features"]:
                geom = shapely.geometry.shape(f["geometry"])
                assert geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon")
                original = projected[f["id"] - 1]
                assert f["properties"]["name"] == f"Fläche {f['id']}"
                assert original.intersects(shapely.box(x - 1 / 64, y - 1 / 64, x + 1 + 1 / 64,
                                                       y + 1 + 1 / 64))
                expected = shapely.transform(original, lambda c, x=x, y=y: (c - [x, y]) * EXTENT)
                clipped = expected.intersection(shapely.box(-64, -64, EXTENT + 64, EXTENT + 64))
                if clipped.area > 10_000:  # well above the grid's rounding
                    assert abs(geom.area - clipped.area) / clipped.area < 0.05
                seen += 1
    assert seen > 20


def test_hidden_collections_are_404_on_every_tiles_url(ogc_site: Site) -> None:
    for name in ("intern", "vertraulich", "gibtsnicht"):
        for path in ("/tiles", tiles_url(name), tiles_url(name, "tilejson.json"),
                     tiles_url(name, 0, 0, 0), tiles_url(name, 12, 1352, 2201),
                     tiles_url(name, 99, 0, 0)):
            path = path if path.startswith("/collections") else f"/collections/{name}{path}"
            response = ogc_site.get(path)
            assert response.status_code == 404, (name, path)
            assert name not in response.text.replace(path, "")


@pytest.mark.parametrize(("z", "y", "x", "param"), [
    (21, 0, 0, "tileMatrix"), ("-1", 0, 0, "tileMatrix"), ("a", 0, 0, "tileMatrix"),
    ("1.5", 0, 0, "tileMatrix"), (3, 8, 0, "tileRow"), (3, 0, 8, "tileCol"),
    (0, "x", 0, "tileRow"), (12, 1352, "2201.0", "tileCol"), ("9" * 30, 0, 0, "tileMatrix"),
])
def test_bad_tile_indices_are_400(ogc_site: Site, z: Any, y: Any, x: Any, param: str) -> None:
    response = ogc_site.get(tiles_url("gross", z, y, x))
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == param


def test_tile_responses_status_caching_and_parameters(ogc_site: Site) -> None:
    meta = ogc_site.json(tiles_url("gross"))
    lim = meta["tileMatrixSetLimits"][12]
    url = tiles_url("gross", 12, lim["minTileRow"], lim["minTileCol"])
    first = ogc_site.get(url)
    assert first.status_code == 200 and first.headers["etag"]
    assert first.headers["cache-control"].startswith("public, max-age=")
    assert first.headers["vary"] == "Authorization"  # who asks decides, not Accept
    again = ogc_site.client.get(ogc_site.url + url, headers={"If-None-Match":
                                                            first.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert ogc_site.get(url).content == first.content  # from the cache, the same bytes
    outside = tiles_url("gross", 12, lim["maxTileRow"] + 5, lim["minTileCol"])
    assert ogc_site.get(outside).status_code == 404  # beyond the tileMatrixSetLimits
    assert ogc_site.get(tiles_url("gross", 12, lim["minTileRow"], lim["minTileCol"])
                        .replace(TMS, "WorldCRS84Quad")).status_code == 404
    assert ogc_site.get(url, foo="1").status_code == 400
    assert ogc_site.get(url, f="png").status_code == 400
    assert ogc_site.get(url, f="mvt").status_code == 200
    # inside the limits but between the triangles: an empty tile is 204
    fl = ogc_site.json(tiles_url("flaechen"))["tileMatrixSetLimits"][14]
    codes = {ogc_site.get(tiles_url("flaechen", 14, y, x)).status_code
             for y in range(fl["minTileRow"], fl["minTileRow"] + 6)
             for x in range(fl["minTileCol"], fl["maxTileCol"] + 1, 3)}
    assert codes == {200, 204}
    assert ogc_site.get(tiles_url("gross"), f="html").status_code == 400


def test_a_tile_asked_for_at_once_is_rendered_once() -> None:
    """Requests for one uncached tile that arrive while it is being rendered wait for those
    bytes instead of rendering it again (each would hold a worker of the pool for as long)."""
    import time
    from concurrent.futures import ThreadPoolExecutor
    from threading import Event

    from hub.api.ogc.tiles import TileCache

    cache = TileCache()
    key = ("flaechen", 3, 8, 137, 85)
    started, release = Event(), Event()
    calls: list[str] = []

    def render(who: str) -> bytes:
        calls.append(who)
        started.set()
        assert release.wait(30)  # hang guard only
        return f"tile by {who}".encode()

    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(cache.make, key, lambda: render("first"))
        assert started.wait(30)
        others = [pool.submit(cache.make, key, lambda i=i: render(f"other {i}"))
                  for i in range(5)]
        time.sleep(0.2)  # lets the others reach the cache while the first still renders
        release.set()
        answers = {first.result(), *(f.result() for f in others)}
    assert calls == ["first"] and answers == {b"tile by first"}
    assert cache.rendered["flaechen"] == 1
    assert cache.make(key, lambda: render("later")) == b"tile by first"  # cached now
    assert cache.make(("flaechen", 4, 8, 137, 85), lambda: b"") == b""  # an empty tile too
    assert cache.rendered["flaechen"] == 2


def test_head_answers_as_get_without_a_body(ogc_site: Site) -> None:
    """HEAD on every kind of OGC URL: GET's status and headers (ETag, type, length), no body."""
    paths = ["/", "/conformance", "/collections", "/collections/pflege?f=html",
             "/collections/pflege/items?limit=3", "/collections/pflege/queryables",
             tiles_url("pflege"), tiles_url("pflege", 0, 0, 0), tiles_url("intern", 0, 0, 0),
             "/collections/pflege/items?limit=abc", "/collections/gibtsnicht"]
    for path in paths:
        got = ogc_site.client.get(ogc_site.url + path)
        head = ogc_site.client.head(ogc_site.url + path)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert head.content == b""
        for name in ("content-type", "etag", "cache-control", "content-encoding"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        if "items?limit=3" not in path:  # items carry a timeStamp: same length, other bytes
            assert head.headers["content-length"] == got.headers["content-length"], path  # as sent
    assert {ogc_site.client.head(ogc_site.url + p).status_code for p in paths[:3]} == {200}


def test_the_tile_cache_stays_within_its_byte_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.api.ogc.tiles import TileCache, cache_bytes
    from hub.memory import MemorySettingError

    cache = TileCache(max_bytes=50_000)
    for n in range(300):
        cache.put(("flaechen", 1, 14, n, 0), bytes(n * 53 % 7000))
        held = sum(len(t) + 100 for t in cache._tiles.values())
        assert cache.nbytes == held <= 50_000
    assert cache.get(("flaechen", 1, 14, 299, 0)) is not None  # the newest is kept
    assert cache.get(("flaechen", 1, 14, 0, 0)) is None
    cache.discard(("flaechen", 1, 14, 299, 0))
    assert cache.get(("flaechen", 1, 14, 299, 0)) is None
    assert cache.nbytes == sum(len(t) + 100 for t in cache._tiles.values())
    monkeypatch.setenv("HUB_OGC_TILE_CACHE_MB", "1.5")
    assert cache_bytes() == 3 << 19
    monkeypatch.setenv("HUB_OGC_TILE_CACHE_MB", "viel")
    with pytest.raises(MemorySettingError, match="HUB_OGC_TILE_CACHE_MB='viel'"):
        cache_bytes()


def test_workers_map_one_copy_of_a_point_layers_tile_index(ogc_site: Site, tmp_path) -> None:
    """The arrays point tiles are cut from (`Source`: positions, sorted Morton codes) and the
    attributes made ready for encoding (`mvt.Attributes`) are written once into the layer cache
    folder and mapped by every worker's layer; they are the arrays built in memory, and the
    tiles cut from them are the same bytes."""
    from pathlib import Path

    from hub.api.ogc import mvt, tilefiles, tiles
    from hub.api.ogc.layer import Layer, describe

    version = ogc_site.project.store.current("gross")
    meta = describe(version)
    in_memory = tiles.source(Layer(version, meta))
    workers = [Layer(version, meta, tmp_path) for _ in range(2)]
    assert all(w.mapped for w in workers)
    shared = [tiles.source(w) for w in workers]
    where = tilefiles.index_of(tmp_path, version, tiles.ENCODER)
    maps = Path("/proc/self/maps").read_text().splitlines()
    for name in tiles.POINT_ARRAYS:
        assert sum(line.endswith(str(where / f"{name}.npy")) for line in maps) == 2
        for src in shared:
            assert np.array_equal(getattr(src, name), getattr(in_memory, name), equal_nan=True)
    values = tilefiles.index_of(tmp_path, version, tiles.ENCODER, "values")  # `Attributes`
    for name in ("codes", "fields_data"):
        assert sum(line.endswith(str(values / f"{name}.npy")) for line in maps) == 2
    for name in mvt.Attributes.NAMES:
        for src in shared:
            assert np.array_equal(src.attributes.arrays[name], in_memory.attributes.arrays[name])
    z, x, y = 12, 2200, 1370
    assert tiles.render(workers[1], "gross", z, x, y) == \
        tiles.render(Layer(version, meta), "gross", z, x, y)


def test_a_tiles_cost_counts_its_points_and_grows_with_the_data_otherwise(ogc_site: Site
                                                                         ) -> None:
    """`tiles.cost` decides where a new tile is rendered (`hub.api.ogc.work`): a tile of every
    point costs its points × POINT_WEIGHT (those inside it, as the tile shows them); a tile of
    clusters or polygons, or one asked for before the layer's tile source is built, grows with
    the data (the pool renders it)."""
    from hub.api.ogc import tiles, work
    from hub.api.ogc.layer import Layer, describe

    version = ogc_site.project.store.current("gross")
    layer = Layer(version, describe(version))
    assert tiles.cost(layer, 17, 0, 0) == math.inf  # no tile source yet: building it is large
    src = tiles.source(layer)
    points = grid(ogc_site, "gross", 17)
    x, y = (int(v) for v in points[0])
    inside = int(np.sum((np.floor(points[:, 0]) == x) & (np.floor(points[:, 1]) == y)))
    assert 1 <= inside <= 1_000 and tiles.cost(layer, 17, x, y) == inside * tiles.POINT_WEIGHT
    assert tiles.cost(layer, 17, x, y) <= work.LOOP_COST  # rendered on the event loop
    shown = decode(tiles.render(layer, "gross", 17, x, y))["gross"]["features"]
    assert inside == sum(1 for f in shown if all(0 <= c < EXTENT for c in
                                                 f["geometry"]["coordinates"]))
    assert src.raw_max < BIG_ROWS and tiles.cost(layer, 0, 0, 0) == math.inf  # clusters
    shapes = ogc_site.project.store.current("flaechen")
    polygons = Layer(shapes, describe(shapes))
    tiles.source(polygons)
    assert tiles.cost(polygons, 0, 0, 0) == math.inf
