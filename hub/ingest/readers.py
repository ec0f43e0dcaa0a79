"""Readers: every input format becomes a stream of `Batch`es of raw columns.

Tabular formats (CSV, XLSX, GTFS) give strings, which the schema casts; geodata formats
(GeoJSON, Shapefile, GeoPackage, FlatGeobuf, GeoParquet) give typed attributes plus the geometry
as WKB in the column `GEOMETRY`, and the CRS the file declares.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hub.errors import SourceError
from hub.ingest import delimited
from hub.ingest.delimited import Batch, Numbering
from hub.problem_codes import failing

GEOMETRY = "__geometry__"
BATCH_ROWS = 65_536
EXTENSIONS = {
    ".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
    ".geojson": "geojson", ".json": "geojson", ".shp": "shapefile", ".gpkg": "gpkg",
    ".parquet": "geoparquet", ".geoparquet": "geoparquet", ".fgb": "flatgeobuf",
}
GDAL_FORMATS = {"geojson", "shapefile", "gpkg", "flatgeobuf"}
Progress = Callable[[int], None] | None


@dataclass
class Opened:
    """A source file ready to stream: its columns, CRS, and a batch iterator."""

    name: str
    format: str
    columns: tuple[str, ...]
    crs: str | None
    stream: Callable[[list[str], Progress, list[tuple[int, str]] | None], Iterator[Batch]]
    size: int = 0  # bytes or rows, for progress bars (0 when unknown)
    decimal: str = "."  # decimal mark of text numbers (CSV sniffing may find ",")

    @property
    def has_geometry(self) -> bool:
        return GEOMETRY in self.columns


def prefetched(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """Read ahead in a background thread, so parsing overlaps the caller's work on the batch
    before (pyarrow and GDAL release the GIL while they parse)."""
    done = object()
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put(exc)
        finally:
            closer = getattr(batches, "close", None)
            if closer is not None:
                closer()

    worker = threading.Thread(target=produce, name="reader", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        worker.join()


def detect_format(path: Path) -> str:
    """Guess the format from the file name (and a zip's contents)."""
    if path.is_dir():
        if (path / "stops.txt").exists():
            return "gtfs"
        if any(path.glob("*.shp")):
            return "shapefile"
        raise failing(SourceError(f"{path.name}: folder holds neither a shapefile nor GTFS "
                                  "stops.txt"), "read.no-data", file=path.name)
    if path.name == "stops.txt":
        return "gtfs"
    if path.suffix.lower() == ".zip":
        names = _zip_names(path)
        if "stops.txt" in {Path(n).name for n in names}:
            return "gtfs"
        if any(n.lower().endswith(".shp") for n in names):
            return "shapefile"
        raise failing(SourceError(f"{path.name}: the zip holds neither a shapefile nor GTFS "
                                  "stops.txt"), "read.no-data", file=path.name)
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        formats = sorted(set(EXTENSIONS.values()))
        raise failing(SourceError(f"{path.name}: cannot tell the format from the name; set "
                                  f"`format:` in the pipeline ({', '.join(formats)})"),
                      "read.format", file=path.name, formats=formats)
    return fmt


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except zipfile.BadZipFile:
        raise failing(SourceError(f"{path.name}: not a valid zip archive (truncated or "
                                  "damaged)"), "read.zip", file=path.name) from None


def open_source(path: Path, fmt: str | None, options: dict[str, Any], name: str,
                wanted: set[str] | None = None) -> Opened:
    """Open one local file (or folder) for reading in the given or detected format."""
    if not path.exists():
        raise failing(SourceError(f"{name}: file not found"), "read.missing", file=name)
    if path.is_file() and path.stat().st_size == 0:
        raise failing(SourceError(f"{name}: the file is empty (0 bytes)"), "read.empty",
                      file=name)
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        return _open_delimited(lambda: open(path, "rb"), name, options, wanted,
                               path.stat().st_size, "csv")
    if fmt == "gtfs":
        return _open_gtfs(path, name, options)
    if fmt == "xlsx":
        return _open_xlsx(path, name, options, wanted)
    if fmt == "geoparquet":
        return _open_geoparquet(path, name, options)
    if fmt in GDAL_FORMATS:
        return _open_gdal(path, fmt, name, options)
    raise failing(SourceError(f"{name}: unsupported format {fmt!r}"), "read.unsupported",
                  file=name, format=fmt)


def _open_delimited(opener: delimited.Opener, name: str, options: dict[str, Any],
                    wanted: set[str] | None, size: int, fmt: str) -> Opened:
    dialect = delimited.sniff(opener, name, options, wanted)

    def stream(columns: list[str], progress: Progress,
               bad: list[tuple[int, str]] | None) -> Iterator[Batch]:
        return delimited.read_batches(opener, name, dialect, columns, progress, bad)

    return Opened(name, fmt, dialect.columns, None, stream, size, dialect.decimal)


def _open_gtfs(path: Path, name: str, options: dict[str, Any]) -> Opened:
    """GTFS stops: `stops.txt` itself, a feed folder or a feed zip (UTF-8, comma)."""
    options = {"encoding": "utf-8", "delimiter": ",", "header_row": 1, **options}
    if path.is_dir():
        path = path / "stops.txt"
    if path.suffix.lower() != ".zip":
        return _open_delimited(lambda: open(path, "rb"), name, options, None,
                               path.stat().st_size, "gtfs")
    member = next((n for n in _zip_names(path) if Path(n).name == "stops.txt"), None)
    if member is None:
        raise failing(SourceError(f"{name}: the GTFS zip has no stops.txt"), "read.no-stops",
                      file=name)
    zf = zipfile.ZipFile(path)
    return _open_delimited(lambda: zf.open(member), f"{name}!{member}", options, None,
                           zf.getinfo(member).file_size, "gtfs")


def _open_xlsx(path: Path, name: str, options: dict[str, Any],
               wanted: set[str] | None) -> Opened:
    from python_calamine import CalamineError, CalamineWorkbook

    if unknown := set(options) - {"sheet", "header_row"}:
        raise failing(SourceError(f"{name}: unknown XLSX option(s) {sorted(unknown)}; "
                                  "allowed: sheet, header_row"), "read.options", file=name,
                      options=sorted(unknown), allowed=["sheet", "header_row"])
    try:
        book = CalamineWorkbook.from_path(str(path))
    except (CalamineError, OSError, ValueError) as exc:
        raise failing(SourceError(f"{name}: cannot open as XLSX workbook ({exc})"),
                      "read.xlsx", file=name) from None
    sheet_ref = options.get("sheet", 0)
    try:
        sheet = (book.get_sheet_by_index(sheet_ref) if isinstance(sheet_ref, int)
                 else book.get_sheet_by_name(str(sheet_ref)))
        cells = sheet.to_python(skip_empty_area=False)
    except (CalamineError, IndexError, KeyError, ValueError):
        raise failing(SourceError(f"{name}: no sheet {sheet_ref!r}; the workbook has "
                                  f"{', '.join(map(repr, book.sheet_names))}"),
                      "read.no-sheet", file=name, sheet=sheet_ref,
                      sheets=list(book.sheet_names)) from None
    texts = [[_cell_text(c) for c in row] for row in cells]
    if not any(any(c is not None for c in row) for row in texts):
        raise failing(SourceError(f"{name}: sheet {sheet_ref!r} is empty"), "read.empty-sheet",
                      file=name, sheet=sheet_ref)
    header_idx = _xlsx_header(texts, options.get("header_row"), name, wanted)
    columns = delimited._column_names([c or "" for c in texts[header_idx]])
    body = [(i + 1, row) for i, row in enumerate(texts) if i > header_idx
            and any(c is not None and c != "" for c in row)]  # blank rows are layout, not data

    numbering = _SheetRows(np.array([n for n, _ in body], dtype=np.int64))

    def stream(wanted_cols: list[str], progress: Progress,
               bad: list[tuple[int, str]] | None) -> Iterator[Batch]:
        index = {c: columns.index(c) for c in wanted_cols}
        for start in range(0, len(body), BATCH_ROWS):
            chunk = body[start:start + BATCH_ROWS]
            cols = {c: pa.array([r[i] if i < len(r) else None for _, r in chunk], pa.string())
                    for c, i in index.items()}
            if progress:
                progress(len(chunk))
            yield Batch(cols, len(chunk), start, numbering)

    return Opened(name, "xlsx", columns, None, stream, len(body))


class _SheetRows(Numbering):
    """Sheet row numbers of the non-blank data rows."""

    def __init__(self, rows: np.ndarray):
        super().__init__(0)
        self.table = rows

    def __call__(self, records: np.ndarray) -> np.ndarray:
        return self.table[records]


def _cell_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep="T") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip() or None


def _xlsx_header(rows: list[list[str | None]], header_row: Any, name: str,
                 wanted: set[str] | None) -> int:
    if header_row is not None:
        if not isinstance(header_row, int) or not 1 <= header_row <= len(rows):
            raise failing(SourceError(f"{name}: header_row {header_row!r} is outside the "
                                      f"sheet (rows 1 to {len(rows)})"), "read.header-row",
                          file=name, header_row=header_row, last=len(rows))
        return header_row - 1
    if wanted:
        for i, row in enumerate(rows[:200]):
            if wanted <= {c for c in row if c}:
                return i
    filled = [sum(c is not None for c in row) for row in rows[:200]]
    widest = max(filled)
    return next(i for i, n in enumerate(filled) if n >= max(2, widest * 0.8) or n == widest)


def _open_gdal(path: Path, fmt: str, name: str, options: dict[str, Any]) -> Opened:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    if unknown := set(options) - {"layer", "encoding"}:
        raise failing(SourceError(f"{name}: unknown option(s) {sorted(unknown)}; allowed: "
                                  "layer, encoding"), "read.options", file=name,
                      options=sorted(unknown), allowed=["layer", "encoding"])
    if fmt == "shapefile" and path.suffix.lower() == ".zip":
        _zip_names(path)  # a clear message for a truncated zip
    layer = options.get("layer")
    kwargs = {"encoding": options["encoding"]} if options.get("encoding") else {}
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
        if layer is not None and str(layer) not in layers:
            raise failing(SourceError(f"{name}: no layer {layer!r}; the file has "
                                      f"{', '.join(map(repr, layers))}"), "read.no-layer",
                          file=name, layer=layer, layers=layers)
        if layer is None and len(layers) > 1:
            raise failing(SourceError(f"{name}: the file has several layers "
                                      f"({', '.join(map(repr, layers))}); choose one with "
                                      "options.layer"), "read.layers", file=name,
                          layers=layers)
        info = pyogrio.read_info(path, layer=layer, **kwargs)
    except (DataSourceError, DataLayerError) as exc:
        raise failing(SourceError(f"{name}: cannot read as {fmt}: {_gdal_message(exc)}"),
                      "read.geodata", file=name, format=fmt) from None
    columns = (*[str(c) for c in info["fields"]], GEOMETRY)

    def stream(wanted_cols: list[str], progress: Progress,
               bad: list[tuple[int, str]] | None) -> Iterator[Batch]:
        attrs = [c for c in wanted_cols if c != GEOMETRY]
        row, numbering = 1, Numbering(1)
        try:
            with pyogrio.open_arrow(path, layer=layer, columns=attrs, batch_size=BATCH_ROWS,
                                    use_pyarrow=True,
                                    **kwargs) as (meta, reader):
                geom_name = meta["geometry_name"] or "wkb_geometry"
                for batch in reader:
                    cols = {c: batch.column(c) for c in attrs}
                    cols[GEOMETRY] = batch.column(geom_name)
                    n = batch.num_rows
                    if progress:
                        progress(n)
                    yield Batch(cols, n, row - 1, numbering)
                    row += n
        except (DataSourceError, DataLayerError, OSError) as exc:
            raise failing(SourceError(f"{name}: read error after feature {row - 1}: "
                                      f"{_gdal_message(exc)}"), "read.feature", file=name,
                          row=row - 1) from None

    return Opened(name, fmt, columns, info.get("crs"), stream, int(info.get("features") or 0))


def _gdal_message(exc: Exception) -> str:
    return str(exc).split("\n")[0].replace(str(Path.cwd()) + "/", "")


def _open_geoparquet(path: Path, name: str, options: dict[str, Any]) -> Opened:
    if options:
        raise failing(SourceError(f"{name}: GeoParquet takes no options (got "
                                  f"{sorted(options)})"), "read.options", file=name,
                      options=sorted(options), allowed=[])
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise failing(SourceError(f"{name}: not a readable Parquet file ({exc})"),
                      "read.parquet", file=name) from None
    meta = (pf.schema_arrow.metadata or {}).get(b"geo")
    names = list(pf.schema_arrow.names)
    crs: str | None = None
    geom_col = None
    if meta:
        geo = json.loads(meta)
        geom_col = geo.get("primary_column")
        col = geo.get("columns", {}).get(geom_col, {})
        if col.get("encoding", "WKB").upper() != "WKB":
            raise failing(SourceError(f"{name}: GeoParquet geometry encoding "
                                      f"{col['encoding']!r} is not supported; write WKB"),
                          "read.parquet-encoding", file=name, encoding=col["encoding"])
        crs = _projjson_to_crs(col["crs"]) if "crs" in col else "OGC:CRS84"
    columns = tuple([c for c in names if c != geom_col] + ([GEOMETRY] if geom_col else []))

    def stream(wanted_cols: list[str], progress: Progress,
               bad: list[tuple[int, str]] | None) -> Iterator[Batch]:
        read = [geom_col if c == GEOMETRY else c for c in wanted_cols]
        row, numbering = 1, Numbering(1)
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=read):
            cols = {(GEOMETRY if c == geom_col else c): batch.column(c) for c in read}
            n = batch.num_rows
            if progress:
                progress(n)
            yield Batch(cols, n, row - 1, numbering)
            row += n

    return Opened(name, "geoparquet", columns, crs, stream, pf.metadata.num_rows)


def _projjson_to_crs(value: Any) -> str | None:
    if value is None:
        return None
    from pyproj import CRS

    return CRS.from_user_input(value).to_string()
