"""The request mix of `python -m bench load`, for locust (started by bench/load.py).

One simulated user is one visitor or client programme with its own keep-alive connection; it
pauses 0.5–1.5 s between two requests (a person reading a page, a map panning, a script being
polite), so 200 users ask for about 200 requests a second when the server keeps up. Every answer
other than 2xx counts as a failure (503 Busy included); locust's `Name` column is the request
type. The data is the store `bench/load.py` seeds: the demo district (pages, catalog, the
`pflege`, `mobilitaet`, `gemeinden` layers), `punkte` (1,000,000 points), `flaechen` (50,000
polygons) and `nutzung` (about 20,000 polygons, re-ingested in a loop during the run).
"""

from __future__ import annotations

import json
import random
from urllib.parse import quote

from locust import FastHttpUser, between, task

DISTRICT = (13.05, 51.37, 13.89, 51.88)  # lon/lat box the seeded layers cover
WORDS = ("Pflege", "Breitband", "Schule", "Ladesäule", "Haltestelle", "Gemeinde", "Wasser",
         "Bebauungsplan", "Radweg", "Kita", "Wahl", "Haushalt", "Denkmal", "Abfall")
ORGANIZATIONS = ("sozialamt", "kataster-vermessung", "kreisentwicklung-oepnv", "umweltamt",
                 "bauordnungsamt", "schulverwaltungsamt")
PAGES = ("pflege", "mobilitaet", "gemeinden", "punkte", "flaechen", "nutzung")
DOWNLOADS = ("pflege/latest.geojson", "pflege/latest.csv?dialect=excel", "mobilitaet/latest.csv",
             "gemeinden/latest.gpkg", "gemeinden/latest.geojson", "mobilitaet/latest.fgb",
             "nutzung/latest.geojson", "nutzung/latest.parquet", "pflege")
CATEGORIES = ("Schule", "Kita", "Pflegeheim", "Apotheke", "Feuerwehr", "Haltestelle")
TILE_LAYERS = ("punkte", "punkte", "flaechen", "nutzung")
LIMITS: dict[str, dict[int, dict[str, int]]] = {}  # per layer: tileMatrixSetLimits by zoom


def box(size: float) -> str:
    """A random lon/lat box of `size` degrees (wide) inside the district."""
    x0, y0, x1, y1 = DISTRICT
    x, y = random.uniform(x0, x1 - size), random.uniform(y0, y1 - size * 0.62)
    return f"{x:.5f},{y:.5f},{x + size:.5f},{y + size * 0.62:.5f}"


class Visitor(FastHttpUser):
    wait_time = between(0.5, 1.5)

    def fetch(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, catch_response=True) as response:
            if not 200 <= (response.status_code or 0) < 300:
                body = (response.text or "")[:160].replace("\n", " ")
                response.failure(f"HTTP {response.status_code}: {body}")
            elif name == "ogc tileset":
                layer = path.split("/")[3]
                LIMITS[layer] = {int(limit["tileMatrix"]): limit for limit in
                                 json.loads(response.text)["tileMatrixSetLimits"]}

    @task(2)
    def home(self) -> None:
        self.fetch("/", "page /")

    @task(2)
    def dataset_page(self) -> None:
        self.fetch(f"/datasets/{random.choice(PAGES)}", "page /datasets/{name}")

    @task(4)
    def search(self) -> None:
        q = random.choice(WORDS)
        extra = random.choice(("&rows=10", "&rows=10&start=10",
                               "&rows=10&sort=metadata_modified%20desc",
                               f"&rows=10&fq=organization:{random.choice(ORGANIZATIONS)}",
                               "&rows=0&facet.field=[%22organization%22,%22tags%22]"))
        self.fetch(f"/api/3/action/package_search?q={quote(q)}{extra}", "ckan package_search")

    @task(4)
    def items_bbox(self) -> None:
        layer = random.choice(("punkte", "punkte", "flaechen", "nutzung"))
        self.fetch(f"/ogc/collections/{layer}/items?f=json&limit=100&bbox={box(0.02)}",
                   "ogc items bbox")

    @task(2)
    def items_filter(self) -> None:
        condition = (f"kategorie = '{random.choice(CATEGORIES)}' AND "
                     f"anzahl > {random.randint(0, 900)}")
        self.fetch(f"/ogc/collections/punkte/items?f=json&limit=100&bbox={box(0.1)}"
                   f"&filter-lang=cql2-text&filter={quote(condition)}", "ogc items bbox+filter")

    @task(4)
    def tiles(self) -> None:
        layer = random.choice(TILE_LAYERS)
        if layer not in LIMITS:  # as a map client reads the tileset once, then asks for tiles
            self.fetch(f"/ogc/collections/{layer}/tiles/WebMercatorQuad", "ogc tileset")
            return
        z = random.randint(8, 14)
        limit = LIMITS[layer][z]  # a tile outside the limits is rightly 404
        row = random.randint(limit["minTileRow"], limit["maxTileRow"])
        col = random.randint(limit["minTileCol"], limit["maxTileCol"])
        self.fetch(f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{row}/{col}",
                   "ogc tile")

    @task(1)
    def download(self) -> None:
        self.fetch(f"/downloads/{random.choice(DOWNLOADS)}", "download")
