"""A first look at an uploaded (or fetched) file: its first rows, the type of every column
inferred over the whole file, where its locations are (lon/lat columns, WKT or the file's own
geometry) and in which CRS, and a proposed mapping of its columns to a table schema.

The file is read by the ingest's own readers (`hub.ingest.readers`), batch by batch, so memory
stays flat however long the file is; each batch's columns are classified by vectorised
pattern matches (pyarrow compute), and only the counts, the numeric ranges and the first rows
are kept.
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from hub.ingest import geometry as geo
from hub.ingest.readers import GEOMETRY, open_source, prefetched
from hub.schema import TableSchema

FIRST_ROWS = 10
MAP_POINTS = 500
PATTERNS = {  # what a text value looks like (between blanks)
    "integer": r"[+-]?[0-9]+",
    "number": r"[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)([eE][+-]?[0-9]+)?",
    "boolean": r"(?i:true|false|ja|nein|wahr|falsch|yes|no|j|n)",
    "date": r"([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4})",
    "datetime": r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}.*",
    "wkt": r"(?i:(SRID=[0-9]+;)?\s*(MULTI)?(POINT|LINESTRING|POLYGON)|GEOMETRYCOLLECTION).*",
}
SPACED = r"^\s*(?:{})\s*$|^$"  # a value of the kind, or empty (a missing value)
X_NAMES = ("lon", "lng", "long", "laenge", "longitude", "x", "rechtswert", "rw", "easting",
           "ost", "xkoordinate", "xcoord", "koordx")
Y_NAMES = ("lat", "breite", "latitude", "y", "hochwert", "hw", "northing", "nord",
           "ykoordinate", "ycoord", "koordy")
KEY_NAMES = ("id", "nr", "nummer", "kennung", "kennziffer", "schluessel", "key")
# Candidate CRS of coordinate columns, in the order they are tried: the CRS the German
# districts publish in (ETRS89 / UTM, Gauß-Krüger), lon/lat, Web Mercator.
CRS_CHOICES = ("EPSG:25833", "EPSG:25832", "EPSG:4326", "EPSG:4258", "EPSG:31469",
               "EPSG:31468", "EPSG:31467", "EPSG:5650", "EPSG:3857")


@dataclass
class ColumnFacts:
    """What the whole file says about one column: for each kind of value (`PATTERNS`) whether
    every filled value is of it so far, else the first value that is not (once a kind is
    ruled out, later batches are not tested for it: a text column costs one batch)."""

    name: str
    filled: int = 0
    ruled_out: dict[str, str] = field(default_factory=dict)  # kind -> first value not of it
    low: float = float("inf")
    high: float = float("-inf")
    native: str | None = None  # the type of a typed (GeoPackage, Shapefile) attribute

    @property
    def type(self) -> str:
        """The narrowest Table Schema type every filled value fits (string if none)."""
        if self.native:
            return self.native
        if self.filled == 0:
            return "string"
        for kind in ("integer", "number", "boolean", "date", "datetime", "wkt"):
            if kind not in self.ruled_out:
                return "geometry (WKT)" if kind == "wkt" else kind
        return "string"

    @property
    def numeric(self) -> bool:
        return self.type in ("integer", "number") and self.filled > 0


@dataclass
class Geometry:
    """Where the locations are: kind lonlat (columns lon, lat), wkt (column wkt), native
    (the file's own geometry) or none; and the CRS proposed (None: as the file declares)."""

    kind: str = "none"
    lon: str = ""
    lat: str = ""
    wkt: str = ""
    crs: str | None = None
    declared: str | None = None  # the CRS the file declares itself


@dataclass
class Preview:
    name: str
    format: str
    columns: list[str]
    rows: list[list[str]]
    facts: dict[str, ColumnFacts]
    row_count: int
    geometry: Geometry
    points: list[tuple[float, float]]  # lon/lat of the first located rows, for the map
    sheets: list[str] = field(default_factory=list)  # a workbook's sheets, in order
    sheet: str = ""  # the sheet shown (a workbook's; the first unless one was chosen)

    def proposal(self, schema: TableSchema) -> dict[str, str]:
        """Schema field -> source column, each column at most once."""
        return propose(schema, [c for c in self.columns if c != GEOMETRY],
                       {self.geometry.lon, self.geometry.lat, self.geometry.wkt} - {""})

    def misfits(self, schema: TableSchema, mapping: dict[str, str]) -> dict[str, str]:
        """Mapped fields whose column has a value that does not fit the field's type: the
        first such value."""
        out = {}
        for name, column in mapping.items():
            facts = self.facts.get(column)
            wanted = schema.field(name).type
            kinds = {"integer": ("integer",), "number": ("number",), "boolean": ("boolean",),
                     "date": ("date",), "datetime": ("datetime", "date")}.get(wanted)
            if facts is None or facts.filled == 0 or facts.native or not kinds:
                continue
            if all(k in facts.ruled_out for k in kinds):
                out[name] = facts.ruled_out[kinds[0]]
        return out


def preview(path: Path, fmt: str, name: str, district: geo.Extent | None = None,
            options: dict[str, Any] | None = None) -> Preview:
    """Read the whole file once; `SourceError` naming the file if it cannot be read (or
    has no sheet `options["sheet"]`, naming the workbook's sheets)."""
    options = options or {}
    opened = open_source(path, fmt, options, name)
    columns = list(opened.columns)
    text_cols = [c for c in columns if c != GEOMETRY]
    facts = {c: ColumnFacts(c) for c in text_cols}
    rows: list[list[str]] = []
    geometries: list[Any] = []
    coords: dict[str, list[np.ndarray]] = {}
    count = 0
    for batch in prefetched(opened.stream(columns, None, None)):
        n = batch.length
        for column in text_cols:
            _observe(facts[column], batch.columns[column])
        if len(rows) < FIRST_ROWS:
            take = min(n, FIRST_ROWS - len(rows))
            shown = {c: batch.columns[c].slice(0, take).to_pylist() for c in columns}
            rows += [[_shown(shown[c][i], c) for c in columns] for i in range(take)]
        if GEOMETRY in columns and len(geometries) < MAP_POINTS:
            geometries += batch.columns[GEOMETRY].slice(0, MAP_POINTS - len(geometries)
                                                        ).to_pylist()
        if count < MAP_POINTS:
            for column in text_cols:
                coords.setdefault(column, []).append(
                    batch.columns[column].slice(0, MAP_POINTS - count))
        count += n
    found = _locate(facts, columns, opened.crs, district)
    points = _points(found, geometries, coords)
    sheets = sheet_names(path) if opened.format == "xlsx" else []
    sheet = str(options.get("sheet") or (sheets[0] if sheets else ""))
    return Preview(name, opened.format, columns, rows, facts, count, found, points, sheets,
                   sheet)


def sheet_names(path: Path) -> list[str]:
    """The sheets of an XLSX workbook, in order (the ingest reads the first unless its
    source's `options: {sheet: …}` names another)."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        return list(CalamineWorkbook.from_path(str(path)).sheet_names)
    except (CalamineError, OSError, ValueError):  # a broken workbook: the preview says why
        return []


def _observe(facts: ColumnFacts, values: pa.Array | pa.ChunkedArray) -> None:
    kind = values.type
    first = facts.filled == 0  # ranges (for the CRS) are taken from the first rows
    if not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
        facts.native = _native_type(kind)
        facts.filled += len(values) - values.null_count
        if facts.native in ("integer", "number") and first and facts.filled:
            low, high = _min_max(values)
            if low.is_valid:
                facts.low, facts.high = float(low.as_py()), float(high.as_py())
        return
    filled = len(values) - values.null_count - int(pc.sum(pc.equal(values, "")).as_py() or 0)
    if not filled:
        return
    facts.filled += filled
    for kind, pattern in PATTERNS.items():
        if kind in facts.ruled_out or (kind == "number" and "integer" not in facts.ruled_out):
            continue  # (while every value is an integer, every value is a number)
        fits = pc.match_substring_regex(values, SPACED.format(pattern))
        if not pc.all(fits).as_py():
            facts.ruled_out[kind] = str(values[pc.index(fits, False).as_py()]).strip()
    if first and "number" not in facts.ruled_out:
        text = pc.utf8_trim_whitespace(values)
        text = pc.filter(text, pc.not_equal(text, ""))
        low, high = _min_max(pc.cast(pc.replace_substring(text, ",", "."), pa.float64()))
        facts.low, facts.high = low.as_py(), high.as_py()


def _min_max(values: pa.Array) -> tuple[pa.Scalar, pa.Scalar]:
    both = pc.min_max(values)
    return both["min"], both["max"]


def _native_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "datetime"
    return "string"


def _shown(value: Any, column: str) -> str:
    if value is None:
        return ""
    if column == GEOMETRY:
        geom = shapely.from_wkb(value) if isinstance(value, bytes) else None
        return "" if geom is None else geom.geom_type
    return str(value)


def normal(name: str) -> str:
    """A column or field name compared loosely: lower case, umlauts spelled out, only letters
    and digits."""
    text = name.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    text = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return re.sub(r"[^a-z0-9]", "", text.encode("ascii", "ignore").decode())


def _locate(facts: dict[str, ColumnFacts], columns: list[str], declared: str | None,
            district: geo.Extent | None) -> Geometry:
    if GEOMETRY in columns:
        return Geometry("native", crs=None if declared else "EPSG:4326", declared=declared)
    wkt = next((c for c, f in facts.items() if f.type == "geometry (WKT)"), "")
    numeric = [c for c, f in facts.items() if f.numeric]
    x = _by_name(numeric, X_NAMES)
    y = _by_name([c for c in numeric if c != x], Y_NAMES)
    if x and y:
        return Geometry("lonlat", lon=x, lat=y, crs=guess_crs(facts[x], facts[y], district))
    if wkt:
        return Geometry("wkt", wkt=wkt, crs="EPSG:4326")
    for x, y in itertools.pairwise(numeric):  # unnamed: by their ranges
        crs = guess_crs(facts[x], facts[y], district, strict=True)
        if crs:
            return Geometry("lonlat", lon=x, lat=y, crs=crs)
    return Geometry()


def _by_name(columns: list[str], names: tuple[str, ...]) -> str:
    by_normal = {normal(c): c for c in columns}
    return next((by_normal[n] for n in names if n in by_normal), "")


def guess_crs(x: ColumnFacts, y: ColumnFacts, district: geo.Extent | None,
              strict: bool = False) -> str | None:
    """The first CRS of `CRS_CHOICES` in which the middle of the columns' ranges lies in the
    district (or, without a district, in Germany); `strict`: None if none fits."""
    if not (np.isfinite([x.low, x.high, y.low, y.high]).all()):
        return None if strict else "EPSG:4326"
    mx, my = (x.low + x.high) / 2, (y.low + y.high) / 2
    box = district or geo.Extent(5.5, 47.0, 15.5, 55.5)
    for crs in CRS_CHOICES:
        transformer = geo.to_storage(crs)
        lon, lat = (mx, my) if transformer is None else transformer.transform(
            mx, my, errcheck=False)
        if box.minx <= lon <= box.maxx and box.miny <= lat <= box.maxy:
            return crs
    return None if strict else "EPSG:4326"


def _points(found: Geometry, geometries: list[Any],
            coords: dict[str, list[pa.Array]]) -> list[tuple[float, float]]:
    crs = found.crs or found.declared or "EPSG:4326"
    if found.kind == "native":
        geoms = shapely.from_wkb(np.array(geometries, dtype=object), on_invalid="ignore")
    elif found.kind == "wkt":
        text = pa.concat_arrays(coords[found.wkt]).to_pylist()
        geoms = shapely.from_wkt(np.array(text, dtype=object), on_invalid="ignore")
    elif found.kind == "lonlat":
        xs, ys = (_floats(pa.concat_arrays(coords[c])) for c in (found.lon, found.lat))
        geoms = shapely.points(xs, ys)
    else:
        return []
    geoms = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    if not len(geoms):
        return []
    where = shapely.get_coordinates(shapely.point_on_surface(geoms))
    try:
        transformer = geo.to_storage(crs)
    except Exception:  # a CRS the user typed that pyproj does not know: no map, no error
        return []
    lon, lat = (where[:, 0], where[:, 1]) if transformer is None else transformer.transform(
        where[:, 0], where[:, 1], errcheck=False)
    keep = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    return [(round(float(a), 6), round(float(b), 6)) for a, b in
            zip(np.asarray(lon)[keep], np.asarray(lat)[keep], strict=True)]


def _floats(values: pa.Array) -> np.ndarray:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        text = pc.replace_substring(pc.utf8_trim_whitespace(values), ",", ".")
        ok = pc.match_substring_regex(text, SPACED.format(PATTERNS["number"]))
        values = pc.cast(pc.if_else(ok, text, None), pa.float64())
    return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False),
                      dtype=np.float64)


def propose(schema: TableSchema, columns: list[str], taken: set[str]) -> dict[str, str]:
    """Each schema field's best column: same name or title (loosely compared), else a close
    spelling (difflib, cutoff 0.8); a column is given to one field only; location columns
    are not given to attribute fields."""
    free = {normal(c): c for c in columns if c not in taken}
    out: dict[str, str] = {}
    fields = schema.columns
    for rule in ("exact", "close"):
        for f in fields:
            if f.name in out:
                continue
            keys = [k for k in (normal(f.name), normal(f.title)) if k]
            hit = next((k for k in keys if k in free), None)
            if hit is None and rule == "close":
                for key in keys:
                    close = difflib.get_close_matches(key, list(free), n=1, cutoff=0.8)
                    if close:
                        hit = close[0]
                        break
            if hit is not None:
                out[f.name] = free.pop(hit)
    for name in schema.primary_key:  # a key field's column is often just "Nr." or "ID"
        hit = next((k for k in KEY_NAMES if k in free), None)
        if name not in out and hit is not None:
            out[name] = free.pop(hit)
    return {f.name: out[f.name] for f in fields if f.name in out}


def best_schema(schemas: dict[str, TableSchema], found: Preview) -> str | None:
    """The schema most of whose fields the file's columns fill (None if none fills any)."""
    scored = [(len(found.proposal(s)) / max(len(s.columns), 1), name)
              for name, s in schemas.items()]
    score, name = max(scored, default=(0.0, None))
    return name if score > 0 else None
