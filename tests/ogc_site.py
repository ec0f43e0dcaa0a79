"""A real hub server on 127.0.0.1 with datasets made for the OGC API tests.

The `ogc_site` fixture (conftest.py) is built once per session by `serve`: seeded CSVs are
ingested through the real pipeline (conftest's Project harness), then `hub serve` runs in its
own process on a free port.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import DISTRICT_BBOX, Project, hub_server

LIMIT_DEFAULT, LIMIT_MAX = 10, 5000
BIG_ROWS = 100_000
ARTEN = ["Pflegeheim", "Tagespflege", "Hospiz", "ambulanter Pflegedienst"]

POINT_FIELDS = [
    {"name": "id", "type": "string", "title": "Nummer",
     "constraints": {"required": True, "pattern": "[A-Z][0-9]{4}"}},
    {"name": "name", "type": "string", "title": "Name"},
    {"name": "art", "type": "string", "title": "Art", "constraints": {"enum": ARTEN}},
    {"name": "plaetze", "type": "integer", "title": "Plätze",
     "constraints": {"minimum": 0, "maximum": 1000}},
    {"name": "anteil", "type": "number"},
    {"name": "rollstuhlgerecht", "type": "boolean"},
    {"name": "stand", "type": "date", "title": "Stand"},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]},
]


@dataclass
class Site:
    """The running server and the project behind it."""

    url: str  # the OGC API root, e.g. http://127.0.0.1:PORT/ogc
    project: Project
    client: httpx.Client

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(self.url + path, params=params or None)

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, (path, params, response.text)
        return response.json()


def _points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = DISTRICT_BBOX
    return rng.uniform(x0, x1, n).round(7), rng.uniform(y0, y1, n).round(7)


def _write_pflege(path: Path, rng: np.random.Generator, n: int, prefix: str = "P") -> None:
    lon, lat = _points(rng, n)
    lines = ["id,name,art,plaetze,anteil,rollstuhlgerecht,stand,lon,lat"]
    for i in range(n):
        plaetze = "" if i % 7 == 0 else str(int(rng.integers(5, 120)))
        stand = "" if i % 11 == 0 else f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
        lines.append(f"{prefix}{i + 1:04d},Einrichtung {i + 1},{ARTEN[i % 4]},{plaetze},"
                     f"{rng.uniform(0, 1):.4f},{'true' if i % 3 else 'false'},{stand},"
                     f"{lon[i]},{lat[i]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_flaechen(path: Path) -> None:
    """Triangles whose bounding boxes are much larger than they are (right-angled)."""
    lines = ["name;typ;wkt"]
    for i in range(30):
        x, y = 13.1 + (i % 6) * 0.12, 51.4 + (i // 6) * 0.09
        lines.append(f"Fläche {i + 1};{'Wald' if i % 2 else 'Wiese'};"
                     f"POLYGON (({x} {y}, {x + 0.1} {y}, {x} {y + 0.08}, {x} {y}))")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_gross(path: Path, rng: np.random.Generator) -> None:
    lon, lat = _points(rng, BIG_ROWS)
    nr = np.arange(1, BIG_ROWS + 1)
    gruppe = np.array(["A", "B", "C", "D"])[nr % 4]
    table = np.column_stack([nr.astype(str), gruppe, lon.astype(str), lat.astype(str)])
    body = "\n".join(",".join(row) for row in table)
    path.write_text("nr,gruppe,lon,lat\n" + body + "\n", encoding="utf-8")


def build_project(root: Path) -> Project:
    project = Project(root)
    rng = np.random.default_rng(20261123)
    csv = {"crs": "EPSG:4326", "geometry": {"lon": "lon", "lat": "lat"}}
    project.schema("pflege", POINT_FIELDS, primaryKey=["id"])
    _write_pflege(project.data / "pflege.csv", rng, 300)
    project.pipeline("pflege", "pflege", {"path": "data/pflege.csv", **csv}, access="public",
                     attribution="Testdaten")
    _write_pflege(project.data / "intern.csv", rng, 40, prefix="I")
    project.pipeline("intern", "pflege", {"path": "data/intern.csv", **csv}, access="internal")
    _write_pflege(project.data / "vertraulich.csv", rng, 20, prefix="G")
    project.pipeline("vertraulich", "pflege", {"path": "data/vertraulich.csv", **csv},
                     access="restricted")
    project.schema("flaechen", [{"name": "name", "type": "string"},
                                {"name": "typ", "type": "string"},
                                {"name": "geometry", "type": "geojson"}])
    _write_flaechen(project.data / "flaechen.csv")
    project.pipeline("flaechen", "flaechen", {"path": "data/flaechen.csv", "crs": "EPSG:4326",
                                              "geometry": {"wkt": "wkt"}}, access="public")
    project.schema("gross", [{"name": "nr", "type": "integer"},
                             {"name": "gruppe", "type": "string"},
                             {"name": "geometry", "type": "geojson"}])
    _write_gross(project.data / "gross.csv", rng)
    project.pipeline("gross", "gross", {"path": "data/gross.csv", **csv}, access="public")
    _write_pflege(project.data / "wechsel.csv", rng, 5, prefix="W")
    project.pipeline("wechsel", "pflege", {"path": "data/wechsel.csv", **csv}, access="public")
    for name in ("pflege", "intern", "vertraulich", "flaechen", "gross", "wechsel"):
        report = project.ingest(name)
        assert report.status == "committed", (name, report.error)
    return project


def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    project = build_project(tmp_path_factory.mktemp("ogc") / "project")
    limits = {"HUB_OGC_LIMIT_DEFAULT": str(LIMIT_DEFAULT), "HUB_OGC_LIMIT_MAX": str(LIMIT_MAX)}
    with hub_server(project.root, project.store_dir, **limits) as server, \
            httpx.Client(timeout=30) as client:
        yield Site(server.url + "/ogc", project, client)
