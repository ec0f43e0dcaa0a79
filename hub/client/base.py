"""What a hub opened with `hub.open` offers, local or remote: the `Hub` interface.

A subclass supplies the primitives — the datasets the caller may see, a version's GeoParquet
file (on this machine, downloaded, or in S3), the rows a bbox or CQL2 filter selects, history,
catalog records, writes — and `Hub` builds the rest on them the same way for both:
GeoDataFrames, Arrow tables, DuckDB relations, SQL over several datasets and versions, maps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.client.errors import InvalidFilter, InvalidQuery, NotAllowed, NotFound
from hub.client.frames import GEOMETRY_COLUMN, to_geodataframe

if TYPE_CHECKING:
    import duckdb
    import folium
    import geopandas
    import pandas
    import pyarrow as pa

    from hub.client import maps

BBOX_COLUMN = "bbox"  # as hub.store.geoparquet writes it
VERSIONED = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]*)@(\d+)")  # pflege@3 in SQL


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset the caller may see, with its current version's facts."""

    name: str
    title: str
    organization: str
    attribution: str
    version: int
    rows: int
    bbox: list[float] | None
    geometry_types: list[str]
    modified: str


@dataclass(frozen=True)
class VersionInfo:
    """One version of a dataset; `removed`: its data was removed by the retention policy."""

    version: int
    rows: int
    committed: str
    checksum: str
    current: bool
    removed: bool = False
    broken: str = ""


BBox = Sequence[float]


class Hub:
    """A hub opened with `hub.open`: its datasets, versions, catalog records and maps.

    Reading methods take a dataset `name`, an optional `version` (default: the current one),
    a `bbox` (minlon, minlat, maxlon, maxlat in WGS 84) and a CQL2 text `filter`, e.g.
    `"art = 'Hospiz' AND plaetze > 20"`. A dataset the caller may not see raises `NotFound`,
    exactly like one that does not exist.
    """

    location: str
    read_only: bool = False

    def __init__(self) -> None:
        self._duckdb: duckdb.DuckDBPyConnection | None = None

    # -- what a subclass supplies ------------------------------------------------------------

    def datasets(self) -> list[DatasetInfo]:
        """The datasets the caller may see (with a current version), by name."""
        raise NotImplementedError

    def history(self, name: str) -> list[VersionInfo]:
        """The versions of a dataset, newest first."""
        raise NotImplementedError

    def record(self, name: str) -> dict[str, Any]:
        """A catalog record as the CKAN API shows it (`package_show`)."""
        raise NotImplementedError

    def search(self, q: str = "", rows: int = 20, **params: Any) -> dict[str, Any]:
        """Search the catalog as the CKAN API does (`package_search`: `q`, `fq`, `rows`,
        `start`, `sort`, ...); returns `count` and `results` (package dicts)."""
        raise NotImplementedError

    def register(self, record: dict[str, Any]) -> dict[str, Any]:
        """Register a catalog record (the fields of catalog/datasets/*.yaml); needs an editor
        of its publisher. Returns it as `record` shows it."""
        raise NotAllowed(f"{self.location} is opened read-only: records are registered "
                         "through a local store (or the CKAN API with a token)")

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a record (the whole record is validated again); needs an editor of
        its publisher."""
        raise NotAllowed(f"{self.location} is opened read-only: records are changed "
                         "through a local store (or the CKAN API with a token)")

    def run(self, pipeline: str, force: bool = False) -> Any:
        """Run a pipeline (`pipelines/<name>.yaml` or a path) as `hub ingest` does; needs an
        editor of the organisation that owns the dataset. Returns the run's report."""
        raise NotAllowed(f"{self.location} is opened read-only: pipelines run on the hub "
                         "itself")

    def _source(self, name: str, version: int | None) -> str | Path | pa.NativeFile:
        """The version's GeoParquet file for pyarrow: a path on this machine, or a file read
        by HTTP ranges (raises the client's errors)."""
        raise NotImplementedError

    def _location(self, name: str, version: int | None) -> str:
        """The version's GeoParquet file for DuckDB's read_parquet (a path or a URL that
        `_prepare` made readable)."""
        raise NotImplementedError

    def _prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make a new DuckDB connection able to read the `_location`s."""

    def _selected(self, name: str, version: int | None, bbox: BBox | None,
                  cql: str | None) -> pa.Table:
        """The rows of a version that meet `bbox` and `cql`, geometry as WKB (no bbox)."""
        raise NotImplementedError

    def _attribution(self, name: str) -> str:
        return next((d.attribution for d in self.datasets() if d.name == name), "")

    # -- reading ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The names of the datasets the caller may see."""
        return [d.name for d in self.datasets()]

    def arrow(self, name: str, version: int | None = None, *, bbox: BBox | None = None,
              filter: str | None = None) -> pa.Table:
        """A version as an Arrow table: attributes and the geometry as WKB, with the
        GeoParquet `geo` metadata in the schema (as geopandas and GDAL read it)."""
        if bbox is None and filter is None:
            return without_bbox(_read_parquet(self._source(name, version)))
        return self._selected(name, version, _checked_bbox(bbox), filter)

    def read(self, name: str, version: int | None = None, *, bbox: BBox | None = None,
             filter: str | None = None) -> geopandas.GeoDataFrame | pandas.DataFrame:
        """A version as a GeoDataFrame in WGS 84 (a DataFrame for data without geometry)."""
        return to_geodataframe(self.arrow(name, version, bbox=bbox, filter=filter))

    def relation(self, name: str, version: int | None = None, *, bbox: BBox | None = None,
                 filter: str | None = None) -> duckdb.DuckDBPyRelation:
        """A version as a DuckDB relation (spatial functions loaded, geometry as GEOMETRY)."""
        con = self.duckdb()
        if bbox is None and filter is None:
            return con.sql(_select_file(con, self._location(name, version)))
        table = self.arrow(name, version, bbox=bbox, filter=filter)
        relation = con.from_arrow(table)
        if GEOMETRY_COLUMN in table.column_names:
            relation = relation.project(f"* EXCLUDE ({GEOMETRY_COLUMN}), "
                                        f"ST_GeomFromWKB({GEOMETRY_COLUMN}) AS {GEOMETRY_COLUMN}")
        return relation

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run SQL over the datasets: each is a view under its name (its current version),
        a given version under `"name@N"` (quoted, e.g. `SELECT * FROM "pflege@1"`). DuckDB's
        spatial functions are loaded. Errors in the query raise `InvalidQuery`; a name the
        caller may not see raises `NotFound`, as an unknown one."""
        import duckdb

        con = self.duckdb()
        visible = set(self.names())
        for match in VERSIONED.finditer(query):
            name, number = match[1], int(match[2])
            if name not in visible:
                raise NotFound(f"SQL: no dataset named {name!r}")
            _create_view(con, f"{name}@{number}", self._location(name, number))
        for name in visible:
            if re.search(rf"(?<![\w.@-]){re.escape(name)}(?![\w@-])", query):
                _create_view(con, name, self._location(name, None))
        try:
            return con.sql(query)
        except duckdb.CatalogException as exc:
            raise NotFound(f"SQL: {_first_line(exc)}") from None
        except duckdb.Error as exc:
            raise InvalidQuery(f"SQL: {_first_line(exc)}") from None

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """This hub's DuckDB connection (in memory, spatial loaded), where `sql` and
        `relation` run."""
        if self._duckdb is None:
            from hub.store.query import new_connection

            self._duckdb = new_connection(spatial=True)
            self._prepare(self._duckdb)
        return self._duckdb

    # -- maps ---------------------------------------------------------------------------------

    def explore(self, name: str, version: int | None = None, *, bbox: BBox | None = None,
                filter: str | None = None, **style: Any) -> folium.Map:
        """A folium map of a dataset with its attribution; renders without internet access
        (Leaflet comes from the hub or, for a local store, is embedded in the page)."""
        return self.map([name], versions={name: version} if version else None, bbox=bbox,
                        filter=filter, **style)

    def map(self, layers: Sequence[str | tuple[str, geopandas.GeoDataFrame]], *,
            versions: dict[str, int] | None = None, bbox: BBox | None = None,
            filter: str | None = None, **style: Any) -> folium.Map:
        """A folium map with several layers: dataset names, or (title, GeoDataFrame) pairs
        (results of an analysis); each dataset's attribution is shown. `versions` picks a
        version per dataset; `bbox` and `filter` apply to every dataset named."""
        from hub.client import maps

        shown = []
        for layer in layers:
            if isinstance(layer, str):
                frame = self.read(layer, (versions or {}).get(layer), bbox=bbox, filter=filter)
                shown.append(maps.Layer(self._title(layer), frame, self._attribution(layer)))
            else:
                title, frame = layer
                shown.append(maps.Layer(title, frame, ""))
        return maps.build(shown, self._assets(), **style)

    def _title(self, name: str) -> str:
        return next((d.title for d in self.datasets() if d.name == name), name)

    def _assets(self) -> maps.Assets:
        raise NotImplementedError

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the DuckDB connection (and, remotely, the HTTP client and its file cache)."""
        if self._duckdb is not None:
            self._duckdb.close()
            self._duckdb = None

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"


# -- helpers shared by the local and the remote hub ---------------------------------------------

def _checked_bbox(bbox: BBox | None) -> list[float] | None:
    if bbox is None:
        return None
    try:
        values = [float(v) for v in bbox]
    except (TypeError, ValueError):
        raise InvalidFilter(f"bbox: {bbox!r} is not four numbers (minlon, minlat, maxlon, "
                            "maxlat)") from None
    if len(values) != 4:
        raise InvalidFilter(f"bbox: give four numbers (minlon, minlat, maxlon, maxlat), not "
                            f"{len(values)}")
    return values


def _read_parquet(source: str | Path | pa.NativeFile) -> pa.Table:
    """A version file without its bbox covering column (not read at all).

    Read by `ParquetFile` rather than `read_table` (pyarrow's dataset scanner, which
    `geopandas.read_parquet` uses too): for the 1M-point file it takes a third of the CPU
    time and a twentieth of the page faults (bench/RESULTS.md, "Python API")."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(source) as parquet:
        names = parquet.schema_arrow.names
        return parquet.read(columns=[n for n in names if n != BBOX_COLUMN])


def without_bbox(table: pa.Table) -> pa.Table:
    """The table without the bbox covering column, its `geo` metadata without the covering."""
    if BBOX_COLUMN in table.column_names:
        table = table.drop_columns([BBOX_COLUMN])
    meta = dict(table.schema.metadata or {})
    if b"geo" in meta:
        geo = json.loads(meta[b"geo"])
        for column in geo.get("columns", {}).values():
            column.pop("covering", None)
        meta[b"geo"] = json.dumps(geo).encode()
    return table.replace_schema_metadata(meta)


def _select_file(con: duckdb.DuckDBPyConnection, location: str) -> str:
    """SELECT of a GeoParquet file without its bbox covering column."""
    quoted = location.replace("'", "''")
    read = f"read_parquet('{quoted}')"
    columns = con.sql(f"SELECT * FROM {read}").columns  # the footer only
    exclude = f" EXCLUDE ({BBOX_COLUMN})" if BBOX_COLUMN in columns else ""
    return f"SELECT *{exclude} FROM {read}"


def _create_view(con: duckdb.DuckDBPyConnection, name: str, location: str) -> None:
    con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {_select_file(con, location)}')


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
