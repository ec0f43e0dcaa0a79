"""GeoParquet the store writes is read directly by every common reader: pyarrow's schema,
geopandas, DuckDB (spatial) and GDAL (pyogrio) — on a version file made by a real ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import shapely
from conftest import CENTRE, Project

POINTS = [(1, "Alpha", CENTRE[0], CENTRE[1]), (2, "Beta", CENTRE[0] + 0.1, CENTRE[1] - 0.05),
          (3, "Gamma", CENTRE[0] - 0.2, CENTRE[1] + 0.1)]


@pytest.fixture
def version_file(ingest_project: Project) -> Path:
    project = ingest_project
    project.schema("orte", [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
                            {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}],
                   primaryKey=["id"])
    (project.data / "orte.csv").write_text(
        "id;name;lon;lat\n" + "".join(f"{i};{n};{x};{y}\n" for i, n, x, y in POINTS),
        encoding="utf-8")
    project.pipeline("orte", "orte", {"path": "data/orte.csv", "crs": "EPSG:4326",
                                      "geometry": {"lon": "lon", "lat": "lat"}})
    report = project.ingest("orte")
    assert report.status == "committed", report.error
    return project.current("orte").data_file


def test_geo_metadata_is_in_the_arrow_schema_and_the_footer(version_file: Path) -> None:
    schema_geo = json.loads(pq.read_schema(version_file).metadata[b"geo"])
    footer_geo = json.loads(pq.read_metadata(version_file).metadata[b"geo"])
    assert schema_geo == footer_geo
    assert schema_geo["primary_column"] == "geometry"
    column = schema_geo["columns"]["geometry"]
    assert column["encoding"] == "WKB" and column["geometry_types"] == ["Point"]
    xs, ys = [p[2] for p in POINTS], [p[3] for p in POINTS]
    assert column["bbox"] == pytest.approx([min(xs), min(ys), max(xs), max(ys)])
    assert column["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    # the rest of the stored Arrow schema is unchanged (types as written)
    assert pq.read_schema(version_file).field("id").type == pq.read_table(
        version_file).schema.field("id").type


def test_geopandas_reads_the_file(version_file: Path) -> None:
    import geopandas

    frame = geopandas.read_parquet(version_file)
    assert frame.geometry.name == "geometry" and frame.crs.to_string() == "OGC:CRS84"
    assert list(frame["name"]) == [p[1] for p in POINTS]
    assert frame.geometry.iloc[1].equals(shapely.Point(POINTS[1][2], POINTS[1][3]))


def test_duckdb_reads_the_geometry_as_geometry(version_file: Path) -> None:
    import duckdb

    from hub.store.query import spatial_extension

    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    con.execute(f"INSTALL '{spatial_extension()}'")
    con.execute("LOAD spatial")
    path = str(version_file).replace("'", "''")
    kind, x = con.sql(f"SELECT typeof(geometry), ST_X(geometry) FROM read_parquet('{path}') "
                      "WHERE name = 'Gamma'").fetchone()
    assert kind.startswith("GEOMETRY") and x == pytest.approx(POINTS[2][2])


def test_gdal_reads_the_file_as_a_layer_with_crs(version_file: Path) -> None:
    """GDAL in pyogrio's wheel reads Parquet through its ADBC driver with DuckDB as the ADBC
    driver (the duckdb package's library, which exports `duckdb_adbc_init`); the layer's
    geometry comes from the `geo` metadata."""
    import duckdb
    import pyogrio

    library = next(Path(duckdb.__file__).parent.parent.glob("_duckdb*.so"))
    source = f"ADBC:{version_file}"
    info = pyogrio.read_info(source, ADBC_DRIVER=str(library))
    assert info["driver"] == "ADBC" and info["geometry_name"] == "geometry"
    assert info["geometry_type"] == "Point" and info["features"] == len(POINTS)
    assert info["crs"] in ("OGC:CRS84", "EPSG:4326")
    frame = pyogrio.read_dataframe(source, ADBC_DRIVER=str(library))
    assert sorted(frame["name"]) == sorted(p[1] for p in POINTS)
    first = frame[frame["name"] == "Alpha"].geometry.iloc[0]
    assert first.equals(shapely.Point(POINTS[0][2], POINTS[0][3]))
