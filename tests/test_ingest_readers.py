"""Readers, reprojection and geometry checks, through the real `ingest()` of a pipeline.

Every input is generated here, in tmp_path: CSV in several encodings and dialects, XLSX,
GeoJSON, Shapefile (folder and zip), GeoPackage, GeoParquet and GTFS.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pytest
import shapely
from conftest import CENTRE, Project
from pyproj import Transformer

from hub.ingest.readers import open_source

POINT_FIELDS = [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "name", "type": "string", "constraints": {"required": True}},
    {"name": "value", "type": "number"},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"],
     "constraints": {"required": True}},
]
PLAIN_FIELDS = POINT_FIELDS[:3]
STOP_FIELDS = [
    {"name": "id", "type": "string", "constraints": {"required": True, "unique": True}},
    {"name": "name", "type": "string", "constraints": {"required": True}},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]},
]
AREA_FIELDS = [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Polygon", "MultiPolygon"],
     "constraints": {"required": True}},
]
NAMES = ["Müller-Straße", "Größenweg", "Œuvre € Café", "Übergang"]


# -- input builders ---------------------------------------------------------------------------

def delimited(rows: list[list[Any]], sep: str = ";") -> str:
    """Rows joined by `sep`; cells holding the separator, quotes or newlines are quoted."""
    out = []
    for row in rows:
        cells = []
        for cell in row:
            text = "" if cell is None else str(cell)
            if any(ch in text for ch in (sep, '"', "\n", "\r")):
                text = '"' + text.replace('"', '""') + '"'
            cells.append(text)
        out.append(sep.join(cells))
    return "\n".join(out) + "\n"


def lonlat(n: int) -> list[tuple[float, float]]:
    """n points scattered around the district's centre (CRS84)."""
    return [(CENTRE[0] + 0.013 * i, CENTRE[1] - 0.007 * i) for i in range(n)]


def points_frame(n: int = 3, crs: str = "EPSG:4326", names: list[str] | None = None,
                 ) -> gpd.GeoDataFrame:
    names = names or [f"Stelle {i}" for i in range(1, n + 1)]
    pts = lonlat(n)
    frame = gpd.GeoDataFrame(
        {"id": list(range(1, n + 1)), "name": names[:n], "value": [1.5 * i for i in range(n)]},
        geometry=[shapely.Point(x, y) for x, y in pts], crs="EPSG:4326")
    return frame.to_crs(crs)


def write_shapefile(folder: Path, frame: gpd.GeoDataFrame, encoding: str | None = None,
                    prj: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    kwargs = {"encoding": encoding} if encoding else {}
    frame.to_file(folder / "stellen.shp", driver="ESRI Shapefile", **kwargs)
    if not prj:
        (folder / "stellen.prj").unlink()
    return folder


def zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f.name)
    return target


def feature_collection(features: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": geom} for props, geom in features]})


def stored_xy(project: Project, dataset: str) -> np.ndarray:
    return np.array([(g.x, g.y) for g in project.geometries(dataset)])


def to_crs84(crs: str, x: Any, y: Any) -> np.ndarray:
    lon, lat = Transformer.from_crs(crs, "OGC:CRS84", always_xy=True).transform(x, y)
    return np.column_stack([lon, lat])


def from_crs84(crs: str, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    t = Transformer.from_crs("OGC:CRS84", crs, always_xy=True)
    return [t.transform(x, y) for x, y in pts]


@pytest.fixture
def plain(ingest_project: Project) -> Project:
    project = ingest_project
    project.schema("plain", PLAIN_FIELDS)
    project.schema("points", POINT_FIELDS)
    project.schema("stops", STOP_FIELDS)
    project.schema("areas", AREA_FIELDS)
    return project


def ingest_ok(project: Project, dataset: str = "ds"):
    report = project.ingest(dataset)
    assert report.status == "committed", (report.error, [str(v) for v in report.violations])
    return report


# -- CSV: encodings ---------------------------------------------------------------------------

CSV_ROWS = [["id", "name", "value"], *[[i + 1, n, f"{i},5"] for i, n in enumerate(NAMES)]]


@pytest.mark.parametrize(("encoding", "bom", "declared"), [
    ("utf-8", False, None),
    ("utf-8", True, None),
    ("cp1252", False, None),
    ("cp1252", False, "cp1252"),
    ("cp1252", False, "windows-1252"),
    ("utf-8", True, "utf-8"),
], ids=["utf8", "utf8-bom", "cp1252-auto", "cp1252-declared", "windows-1252-declared",
        "utf8-bom-declared"])
def test_csv_encodings(plain: Project, encoding: str, bom: bool, declared: str | None) -> None:
    data = delimited(CSV_ROWS).encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    (plain.data / "x.csv").write_bytes(data)
    options = {"encoding": declared} if declared else {}
    plain.pipeline("ds", "plain", {"path": "data/x.csv", "options": options})
    report = ingest_ok(plain)
    assert report.rows_valid == len(NAMES)
    rows = plain.rows("ds")
    assert [r["id"] for r in rows] == [1, 2, 3, 4]  # the BOM is not part of the first column
    assert [r["name"] for r in rows] == NAMES
    assert [r["value"] for r in rows] == [0.5, 1.5, 2.5, 3.5]


@pytest.mark.parametrize("sep", [";", ",", "\t", "|"], ids=["semicolon", "comma", "tab", "pipe"])
def test_csv_separators(plain: Project, sep: str) -> None:
    rows = [["id", "name", "value"], [1, "Alpha, Beta; Gamma", "2.25"], [2, "B", "-3.5"],
            [3, "C", ""]]
    (plain.data / "x.csv").write_text(delimited(rows, sep), encoding="utf-8")
    plain.pipeline("ds", "plain", {"path": "data/x.csv"})
    ingest_ok(plain)
    assert plain.rows("ds") == [{"id": 1, "name": "Alpha, Beta; Gamma", "value": 2.25},
                                {"id": 2, "name": "B", "value": -3.5},
                                {"id": 3, "name": "C", "value": None}]


def test_csv_sniffed_dialect_via_open_source(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(delimited([["a", "b"], ["1,5", "x"], ["2,25", "y"]], "\t").encode("cp1252"))
    opened = open_source(path, None, {}, "x.csv")
    assert opened.format == "csv"
    assert opened.columns == ("a", "b")
    assert opened.decimal == ","


def test_csv_decimal_comma(plain: Project) -> None:
    rows = [["id", "name", "value"], [1, "a", "1,5"], [2, "b", "-0,25"], [3, "c", "1234,125"],
            [4, "d", "7"]]
    (plain.data / "x.csv").write_text(delimited(rows), encoding="utf-8")
    plain.pipeline("ds", "plain", {"path": "data/x.csv"})
    ingest_ok(plain)
    assert [r["value"] for r in plain.rows("ds")] == [1.5, -0.25, 1234.125, 7.0]


def test_csv_decimal_comma_declared_in_casts(plain: Project) -> None:
    rows = [["id", "name", "value"], [1, "a", "1.234,5"], [2, "b", "0,5"]]
    (plain.data / "x.csv").write_text(delimited(rows), encoding="utf-8")
    plain.pipeline("ds", "plain", {"path": "data/x.csv",
                                   "casts": {"value": {"decimalChar": ",", "groupChar": "."}}})
    ingest_ok(plain)
    assert [r["value"] for r in plain.rows("ds")] == [1234.5, 0.5]


BANNER = "Landkreis Testkreis – Statistik\nStand: 31.12.2024\n\n"


@pytest.mark.parametrize("header_row", [None, 4], ids=["auto", "declared"])
def test_csv_banner_lines_before_header(plain: Project, header_row: int | None) -> None:
    body = delimited([["id", "name", "value"], [1, "a", "1,5"], [2, "b", "x"], [3, "c", "2"]])
    (plain.data / "x.csv").write_text(BANNER + body, encoding="utf-8")
    options = {"header_row": header_row} if header_row else {}
    plain.pipeline("ds", "plain", {"path": "data/x.csv", "options": options},
                   on_error="quarantine")
    report = ingest_ok(plain)
    assert [r["id"] for r in plain.rows("ds")] == [1, 3]
    # header on line 4: the row "2;b;x" is line 6 of the file
    [v] = report.violations
    assert (v.file, v.row, v.column, v.value, v.rule) == ("x.csv", 6, "value", "x", "type")


def test_csv_quoted_fields_with_newlines_and_separators(plain: Project) -> None:
    rows = [["id", "name", "value"],
            [1, 'Zeile eins\nZeile zwei; mit "Semikolon"', "1,5"],
            [2, "Gasse; Hof\r\nHinterhaus", "2,5"],
            [3, "schlicht", "3"]]
    (plain.data / "x.csv").write_text(delimited(rows), encoding="utf-8")
    plain.pipeline("ds", "plain", {"path": "data/x.csv"})
    ingest_ok(plain)
    stored = plain.rows("ds")
    assert stored[0]["name"] == 'Zeile eins\nZeile zwei; mit "Semikolon"'
    assert stored[1]["name"] in ("Gasse; Hof\r\nHinterhaus", "Gasse; Hof\nHinterhaus")
    assert [r["value"] for r in stored] == [1.5, 2.5, 3.0]


def test_csv_row_number_after_multiline_record_is_its_sheet_row(plain: Project) -> None:
    """Rows are numbered as a spreadsheet shows them: a quoted two-line cell is one row, so the
    next record is row 3 (though it starts on line 4 of the text)."""
    text = delimited([["id", "name", "value"], [1, "zwei\nZeilen", "1"], [2, "b", "kaputt"]])
    (plain.data / "x.csv").write_text(text, encoding="utf-8")
    plain.pipeline("ds", "plain", {"path": "data/x.csv"}, on_error="quarantine")
    report = ingest_ok(plain)
    [v] = report.violations
    assert (v.row, v.column, v.value) == (3, "value", "kaputt")


def test_csv_row_number_after_blank_line_is_its_line(plain: Project) -> None:
    text = "id;name;value\n1;a;1\n\n2;b;kaputt\n"  # the bad row is line 4
    (plain.data / "x.csv").write_text(text, encoding="utf-8")
    plain.pipeline("ds", "plain", {"path": "data/x.csv"}, on_error="quarantine")
    report = ingest_ok(plain)
    [v] = report.violations
    assert (v.row, v.column, v.value) == (4, "value", "kaputt")
    assert plain.quarantine("ds")[0]["_row"] == 4


# -- XLSX ---------------------------------------------------------------------------------------

def write_workbook(path: Path, bad_value: str | None = None) -> None:
    book = openpyxl.Workbook()
    info = book.active
    info.title = "Hinweise"
    info.append(["Dieses Blatt erklärt die Daten"])
    info.append(["Quelle: Sozialamt"])
    sheet = book.create_sheet("Daten")
    sheet.append(["Pflegeeinrichtungen im Landkreis"])   # row 1: title banner
    sheet.append(["Stand: 31.12.2024"])                  # row 2
    sheet.append([])                                     # row 3: blank
    sheet.append(["Kennung", "Bezeichnung", "Plätze"])   # row 4: header
    sheet.append([101, "Haus Sonnenschein", 24.5])       # row 5
    sheet.append([102, "Am Park", 12])                   # row 6
    sheet.append([])                                     # row 7: blank, between data
    sheet.append([None, None, None])                     # row 8: blank
    sheet.append([103, "Lindenhof", bad_value or 40])    # row 9
    book.save(path)


@pytest.mark.parametrize("options", [{"sheet": "Daten"}, {"sheet": "Daten", "header_row": 4},
                                     {"sheet": 1}], ids=["auto-header", "header_row", "index"])
def test_xlsx_sheet_and_header_below_banner(plain: Project, options: dict[str, Any]) -> None:
    write_workbook(plain.data / "heime.xlsx")
    plain.pipeline("ds", "plain", {"path": "data/heime.xlsx", "options": options,
                                   "mapping": {"id": "Kennung", "name": "Bezeichnung",
                                               "value": "Plätze"}})
    report = ingest_ok(plain)
    assert report.rows_read == 3  # blank rows are layout, not data
    assert plain.rows("ds") == [{"id": 101, "name": "Haus Sonnenschein", "value": 24.5},
                                {"id": 102, "name": "Am Park", "value": 12.0},
                                {"id": 103, "name": "Lindenhof", "value": 40.0}]


def test_xlsx_violation_names_sheet_row_and_source_column(plain: Project) -> None:
    write_workbook(plain.data / "heime.xlsx", bad_value="viele")
    plain.pipeline("ds", "plain", {"path": "data/heime.xlsx", "options": {"sheet": "Daten"},
                                   "mapping": {"id": "Kennung", "name": "Bezeichnung",
                                               "value": "Plätze"}}, on_error="quarantine")
    report = ingest_ok(plain)
    [v] = report.violations
    assert (v.file, v.row, v.column, v.value, v.rule) == ("heime.xlsx", 9, "Plätze", "viele",
                                                          "type")


def test_xlsx_unknown_sheet_lists_sheets(plain: Project) -> None:
    write_workbook(plain.data / "heime.xlsx")
    plain.pipeline("ds", "plain", {"path": "data/heime.xlsx", "options": {"sheet": "Tabelle9"}})
    report = plain.ingest("ds")
    assert report.status == "failed"
    assert "Tabelle9" in report.error and "Daten" in report.error
    assert "Hinweise" in report.error


# -- GeoJSON ------------------------------------------------------------------------------------

def test_geojson_points(plain: Project) -> None:
    pts = lonlat(3)
    (plain.data / "p.geojson").write_text(feature_collection([
        ({"id": i + 1, "name": NAMES[i], "value": i / 2},
         {"type": "Point", "coordinates": [x, y]}) for i, (x, y) in enumerate(pts)]))
    plain.pipeline("ds", "points", {"path": "data/p.geojson"})
    ingest_ok(plain)
    assert [r["name"] for r in plain.rows("ds")] == NAMES[:3]
    assert np.allclose(stored_xy(plain, "ds"), pts, atol=1e-9, rtol=0)
    assert plain.current("ds").geometry_types == ["Point"]


# -- Shapefile ----------------------------------------------------------------------------------

@pytest.mark.parametrize("packed", ["folder", "zip", "shp"])
def test_shapefile_with_prj_is_reprojected(plain: Project, packed: str) -> None:
    frame = points_frame(3, "EPSG:25833")
    folder = write_shapefile(plain.data / "shp", frame)
    location = {"folder": "data/shp", "shp": "data/shp/stellen.shp",
                "zip": "data/stellen.zip"}[packed]
    if packed == "zip":
        zip_folder(folder, plain.data / "stellen.zip")
    plain.pipeline("ds", "points", {"path": location})
    report = ingest_ok(plain)
    assert report.reprojected == 3
    expected = to_crs84("EPSG:25833", frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
    assert np.abs(stored_xy(plain, "ds") - expected).max() < 1e-6
    assert plain.current("ds").source_crs == ["EPSG:25833"]
    assert [r["id"] for r in plain.rows("ds")] == [1, 2, 3]


@pytest.mark.parametrize("packed", ["folder", "zip"])
def test_shapefile_cpg_decodes_cp1252_dbf(plain: Project, packed: str) -> None:
    frame = points_frame(4, "EPSG:25833", names=NAMES)
    folder = write_shapefile(plain.data / "shp", frame, encoding="cp1252")
    assert (folder / "stellen.cpg").read_text().strip().upper() in ("CP1252", "1252")
    assert "Müller".encode("cp1252") in (folder / "stellen.dbf").read_bytes()  # really cp1252
    if packed == "zip":
        zip_folder(folder, plain.data / "stellen.zip")
    plain.pipeline("ds", "points",
                   {"path": "data/shp" if packed == "folder" else "data/stellen.zip"})
    ingest_ok(plain)
    assert [r["name"] for r in plain.rows("ds")] == NAMES


def test_shapefile_latin1_cpg(plain: Project) -> None:
    names = ["Müller", "Größe", "Übergang"]
    frame = points_frame(3, "EPSG:25833", names=names)
    folder = write_shapefile(plain.data / "shp", frame, encoding="cp1252")
    (folder / "stellen.cpg").write_text("ISO-8859-1")
    plain.pipeline("ds", "points", {"path": "data/shp"})
    ingest_ok(plain)
    assert [r["name"] for r in plain.rows("ds")] == names


# -- GeoPackage ---------------------------------------------------------------------------------

def write_two_layer_gpkg(path: Path) -> None:
    points_frame(2, "EPSG:25833", names=["Halt A", "Halt B"]).to_file(
        path, layer="haltestellen", driver="GPKG")
    points_frame(3, "EPSG:25833", names=["Lade 1", "Lade 2", "Lade 3"]).to_file(
        path, layer="ladesaeulen", driver="GPKG")


def test_gpkg_chosen_layer(plain: Project) -> None:
    write_two_layer_gpkg(plain.data / "mobil.gpkg")
    plain.pipeline("ds", "points", {"path": "data/mobil.gpkg",
                                    "options": {"layer": "ladesaeulen"}})
    report = ingest_ok(plain)
    assert [r["name"] for r in plain.rows("ds")] == ["Lade 1", "Lade 2", "Lade 3"]
    assert report.source_crs == ["EPSG:25833"]
    assert np.abs(stored_xy(plain, "ds") - np.array(lonlat(3))).max() < 1e-6


def test_gpkg_without_layer_lists_layers(plain: Project) -> None:
    write_two_layer_gpkg(plain.data / "mobil.gpkg")
    plain.pipeline("ds", "points", {"path": "data/mobil.gpkg"})
    report = plain.ingest("ds")
    assert report.status == "failed"
    assert "haltestellen" in report.error and "ladesaeulen" in report.error
    assert "layer" in report.error and "mobil.gpkg" in report.error
    assert plain.current("ds") is None


def test_gpkg_unknown_layer_lists_layers(tmp_path: Path) -> None:
    from hub.errors import SourceError

    write_two_layer_gpkg(tmp_path / "mobil.gpkg")
    with pytest.raises(SourceError, match=r"haltestellen.*ladesaeulen"):
        open_source(tmp_path / "mobil.gpkg", None, {"layer": "busse"}, "mobil.gpkg")


# -- GeoParquet ---------------------------------------------------------------------------------

@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:25833"])
def test_geoparquet(plain: Project, crs: str) -> None:
    frame = points_frame(3, crs)
    frame.to_parquet(plain.data / "p.parquet")
    plain.pipeline("ds", "points", {"path": "data/p.parquet"})
    report = ingest_ok(plain)
    assert np.abs(stored_xy(plain, "ds") - np.array(lonlat(3))).max() < 1e-6
    assert report.source_crs == [crs]
    assert plain.current("ds").source_crs == [crs]
    assert [r["value"] for r in plain.rows("ds")] == [0.0, 1.5, 3.0]


# -- GTFS -------------------------------------------------------------------------------------

def write_gtfs(folder: Path) -> list[tuple[float, float]]:
    folder.mkdir(parents=True, exist_ok=True)
    pts = lonlat(3)
    stops = [["stop_id", "stop_name", "stop_lat", "stop_lon", "location_type"]]
    stops += [[f"de:12062:{900 + i}", f"Bahnhof {n}", f"{y:.6f}", f"{x:.6f}", "0"]
              for i, (n, (x, y)) in enumerate(zip(["Süd", "Nord", "Mitte"], pts, strict=True))]
    (folder / "stops.txt").write_text(delimited(stops, ","), encoding="utf-8")
    (folder / "agency.txt").write_text("agency_id,agency_name\n1,Testbus\n", encoding="utf-8")
    return [(round(x, 6), round(y, 6)) for x, y in pts]


@pytest.mark.parametrize("packed", ["folder", "zip", "stops.txt"])
def test_gtfs_stops(plain: Project, packed: str) -> None:
    pts = write_gtfs(plain.data / "gtfs")
    location = {"folder": "data/gtfs", "stops.txt": "data/gtfs/stops.txt",
                "zip": "data/gtfs.zip"}[packed]
    if packed == "zip":
        zip_folder(plain.data / "gtfs", plain.data / "gtfs.zip")
    plain.pipeline("ds", "stops", {"path": location,
                                   "mapping": {"id": "stop_id", "name": "stop_name"}})
    report = ingest_ok(plain)
    assert report.rows_valid == 3
    assert [r["name"] for r in plain.rows("ds")] == ["Bahnhof Süd", "Bahnhof Nord",
                                                     "Bahnhof Mitte"]
    assert [r["id"] for r in plain.rows("ds")] == ["de:12062:900", "de:12062:901",
                                                   "de:12062:902"]
    assert np.abs(stored_xy(plain, "ds") - np.array(pts)).max() < 1e-9


# -- Reprojection -------------------------------------------------------------------------------

@pytest.mark.parametrize("crs", ["EPSG:25833", "EPSG:25832", "EPSG:31467", "EPSG:31468",
                                 "EPSG:3857", "EPSG:4326"])
def test_reprojection_to_crs84(plain: Project, crs: str) -> None:
    source = from_crs84(crs, lonlat(5))
    rows = [["id", "name", "x", "y"]] + [[i + 1, f"P{i}", repr(x), repr(y)]
                                        for i, (x, y) in enumerate(source)]
    (plain.data / "p.csv").write_text(delimited(rows), encoding="utf-8")
    plain.pipeline("ds", "points", {"path": "data/p.csv", "crs": crs,
                                    "geometry": {"lon": "x", "lat": "y"}})
    report = ingest_ok(plain)
    xs, ys = np.array(source).T
    expected = to_crs84(crs, xs, ys)
    assert np.abs(stored_xy(plain, "ds") - expected).max() < 1e-7
    assert plain.current("ds").source_crs == [crs]
    assert report.reprojected == (0 if crs == "EPSG:4326" else 5)
    bbox = plain.current("ds").bbox
    assert bbox[0] <= expected[:, 0].min() + 1e-7 and bbox[2] >= expected[:, 0].max() - 1e-7


def test_reprojection_of_polygons_from_geojson_with_crs_member(plain: Project) -> None:
    """A (legacy) GeoJSON with a `crs` member in EPSG:25833."""
    x0, y0 = from_crs84("EPSG:25833", [CENTRE])[0]
    ring = [[x0, y0], [x0 + 500, y0], [x0 + 500, y0 + 500], [x0, y0 + 500], [x0, y0]]
    doc = json.loads(feature_collection([({"id": 1}, {"type": "Polygon",
                                                      "coordinates": [ring]})]))
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25833"}}
    (plain.data / "a.geojson").write_text(json.dumps(doc))
    plain.pipeline("ds", "areas", {"path": "data/a.geojson"})
    ingest_ok(plain)
    [poly] = plain.geometries("ds")
    xs, ys = np.array(ring).T
    expected = to_crs84("EPSG:25833", xs, ys)
    assert np.abs(np.array(poly.exterior.coords) - expected).max() < 1e-7
    assert plain.current("ds").source_crs == ["EPSG:25833"]


# -- Location checks ----------------------------------------------------------------------------

def coords_csv(project: Project, coords: list[tuple[float, float]]) -> None:
    rows = [["id", "name", "lon", "lat"]] + [[i + 1, f"P{i + 1}", x, y]
                                            for i, (x, y) in enumerate(coords)]
    (project.data / "p.csv").write_text(delimited(rows, ","), encoding="utf-8")


def test_swapped_lat_lon_detected(plain: Project) -> None:
    (x, y), (x2, y2) = lonlat(2)
    coords_csv(plain, [(x, y), (y2, x2)])  # the 2nd row has lat in the lon column
    plain.pipeline("ds", "points", {"path": "data/p.csv", "crs": "EPSG:4326",
                                    "geometry": {"lon": "lon", "lat": "lat"}},
                   on_error="quarantine")
    report = ingest_ok(plain)
    [v] = report.violations
    assert (v.file, v.row, v.rule) == ("p.csv", 3, "swapped-axes")
    assert "lon" in v.column and "lat" in v.column
    assert [r["id"] for r in plain.rows("ds")] == [1]
    assert [q["_row"] for q in plain.quarantine("ds")] == [3]


def test_swapped_axes_rejected(plain: Project) -> None:
    (x, y), (x2, y2) = lonlat(2)
    coords_csv(plain, [(x, y), (y2, x2)])
    plain.pipeline("ds", "points", {"path": "data/p.csv", "crs": "EPSG:4326",
                                    "geometry": {"lon": "lon", "lat": "lat"}})
    report = plain.ingest("ds")
    assert report.status == "failed"
    assert "swapped" in report.error and "row 3" in report.error


def test_swapped_easting_northing_detected(plain: Project) -> None:
    (x, y), (x2, y2) = from_crs84("EPSG:25833", lonlat(2))
    coords_csv(plain, [(x, y), (y2, x2)])
    plain.pipeline("ds", "points", {"path": "data/p.csv", "crs": "EPSG:25833",
                                    "geometry": {"lon": "lon", "lat": "lat"}},
                   on_error="quarantine")
    report = ingest_ok(plain)
    assert [(v.row, v.rule) for v in report.violations] == [(3, "swapped-axes")]


HAMBURG = (10.0, 53.55)


def test_point_outside_extent_is_a_violation(plain: Project) -> None:
    coords_csv(plain, [lonlat(1)[0], HAMBURG])
    plain.pipeline("ds", "points", {"path": "data/p.csv", "crs": "EPSG:4326",
                                    "geometry": {"lon": "lon", "lat": "lat"}},
                   on_error="quarantine")
    report = ingest_ok(plain)
    [v] = report.violations
    assert (v.row, v.rule) == (3, "extent")
    assert report.rows_outside == 0
    assert [r["id"] for r in plain.rows("ds")] == [1]


def test_outside_extent_skip_counts_rows(plain: Project) -> None:
    coords_csv(plain, [lonlat(1)[0], HAMBURG, (13.4, 48.1)])
    plain.pipeline("ds", "points", {"path": "data/p.csv", "crs": "EPSG:4326",
                                    "geometry": {"lon": "lon", "lat": "lat"}},
                   outside_extent="skip")
    report = ingest_ok(plain)
    assert report.rows_outside == 2
    assert report.violation_count == 0
    assert report.rows_valid == 1
    assert [r["id"] for r in plain.rows("ds")] == [1]


def test_outside_extent_keep(plain: Project) -> None:
    coords_csv(plain, [lonlat(1)[0], HAMBURG])
    plain.pipeline("ds", "points", {"path": "data/p.csv", "crs": "EPSG:4326",
                                    "geometry": {"lon": "lon", "lat": "lat"}},
                   outside_extent="keep")
    report = ingest_ok(plain)
    assert report.rows_valid == 2 and report.rows_outside == 0


def test_polygon_outside_extent(plain: Project) -> None:
    square = [[10.0, 53.5], [10.1, 53.5], [10.1, 53.6], [10.0, 53.5]]
    inside = [[13.4, 51.6], [13.41, 51.6], [13.41, 51.61], [13.4, 51.6]]
    (plain.data / "a.geojson").write_text(feature_collection([
        ({"id": 1}, {"type": "Polygon", "coordinates": [inside]}),
        ({"id": 2}, {"type": "Polygon", "coordinates": [square]})]))
    plain.pipeline("ds", "areas", {"path": "data/a.geojson"}, on_error="quarantine")
    report = ingest_ok(plain)
    assert [(v.row, v.rule) for v in report.violations] == [(2, "extent")]


# -- Geometry checks ----------------------------------------------------------------------------

def test_bow_tie_polygon_is_repaired(plain: Project) -> None:
    x0, y0, d = 13.4, 51.6, 0.01
    bow_tie = [[x0, y0], [x0 + d, y0 + d], [x0 + d, y0], [x0, y0 + d], [x0, y0]]
    square = [[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]
    (plain.data / "a.geojson").write_text(feature_collection([
        ({"id": 1}, {"type": "Polygon", "coordinates": [square]}),
        ({"id": 2}, {"type": "Polygon", "coordinates": [bow_tie]})]))
    assert not shapely.Polygon(bow_tie).is_valid
    plain.pipeline("ds", "areas", {"path": "data/a.geojson"})
    report = ingest_ok(plain)
    assert report.repaired == 1
    assert report.violation_count == 0
    geoms = plain.geometries("ds")
    assert all(g.is_valid for g in geoms)
    assert geoms[1].geom_type in ("Polygon", "MultiPolygon")
    assert geoms[1].area == pytest.approx(d * d / 2, rel=1e-6)  # two triangles
    assert set(plain.current("ds").geometry_types) <= {"Polygon", "MultiPolygon"}


def test_linestring_in_point_schema_is_a_geometry_violation(plain: Project) -> None:
    (x, y), (x2, y2), (x3, y3) = lonlat(3)
    (plain.data / "p.geojson").write_text(feature_collection([
        ({"id": 1, "name": "a"}, {"type": "Point", "coordinates": [x, y]}),
        ({"id": 2, "name": "b"}, {"type": "LineString", "coordinates": [[x, y], [x2, y2]]}),
        ({"id": 3, "name": "c"}, {"type": "Point", "coordinates": [x3, y3]})]))
    plain.pipeline("ds", "points", {"path": "data/p.geojson"}, on_error="quarantine")
    report = ingest_ok(plain)
    [v] = report.violations
    assert (v.file, v.row, v.rule) == ("p.geojson", 2, "geometry")
    assert v.value == "LineString"
    assert [r["id"] for r in plain.rows("ds")] == [1, 3]
    assert plain.current("ds").geometry_types == ["Point"]
    [q] = plain.quarantine("ds")
    assert q["_row"] == 2 and "geometry" in q["_errors"]


def test_wkt_column(plain: Project) -> None:
    x, y = lonlat(1)[0]
    rows = [["id", "name", "wkt"], [1, "a", f"POINT ({x} {y})"], [2, "b", "POINT (kaputt)"]]
    (plain.data / "p.csv").write_text(delimited(rows), encoding="utf-8")
    plain.pipeline("ds", "points", {"path": "data/p.csv", "crs": "EPSG:4326",
                                    "geometry": {"wkt": "wkt"}}, on_error="quarantine")
    report = ingest_ok(plain)
    [v] = report.violations
    assert (v.row, v.column, v.rule) == (3, "wkt", "geometry")
    assert np.allclose(stored_xy(plain, "ds"), [(x, y)])
