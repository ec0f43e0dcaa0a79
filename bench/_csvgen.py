"""A seeded generator of point CSVs as a district office exports them from Excel.

`;` separator, decimal comma, Windows-1252, CRLF line ends, ETRS89 / UTM 33N (EPSG:25833)
coordinates in the Elbe-Elster area, German text with ß, umlauts, „quotes“ and en dashes.
Columns: id (unique integer), name, ort, kategorie, anzahl (integer >= 0), wert (decimal
>= 0), rechtswert, hochwert. Rows are built column-wise with numpy and Arrow string kernels,
a million at a time, so no Python code runs per row.

Files are cached under bench/data/ (gitignored): a file is made once, when it is missing, and
written under a temporary name first so an interrupted run leaves no half file behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEED = 20_250_601
VERSION = 1  # bump when the generator's output changes, so cached files are not reused
CHUNK_ROWS = 1_000_000
ENCODING = "cp1252"
COLUMNS = ("id", "name", "ort", "kategorie", "anzahl", "wert", "rechtswert", "hochwert")
EASTING = (350_000, 420_000)  # metres, EPSG:25833
NORTHING = (5_690_000, 5_740_000)

STREETS = (
    "Hauptstraße", "Bahnhofstraße", "Lindenstraße", "Schulstraße", "Dorfstraße", "Mühlenweg",
    "Am Anger", "Kirchplatz", "Gartenstraße", "Waldstraße", "Lange Straße", "Torgauer Straße",
    "Dresdner Straße", "Straße der Jugend", "Über den Gärten", "Schützenstraße",
    "Am Flößgraben", "Weinbergstraße", "Grüner Weg", "Großenhainer Straße", "Rößchenweg",
    "Käthe-Kollwitz-Straße", "Friedrich-Engels-Straße", "Am Bürgerhaus",
)
SUFFIXES = ("", "", "", "", "a", "b", " – Hinterhaus", " – Hof", " (Nebengebäude)",
            " „Alte Schmiede“")
PLACES = (
    "Herzberg (Elster)", "Finsterwalde", "Bad Liebenwerda", "Elsterwerda",
    "Doberlug-Kirchhain", "Mühlberg/Elbe", "Uebigau-Wahrenbrück", "Sonnewalde", "Schönewalde",
    "Falkenberg/Elster", "Schlieben", "Röderland", "Großthiemig", "Gröden", "Hirschfeld",
    "Plessa", "Schraden", "Crinitz", "Lichterfeld-Schacksdorf", "Sallgast",
    "Massen-Niederlausitz", "Rückersdorf", "Tröbitz", "Heideland", "Fichtwald", "Kremitzaue",
    "Hohenleipisch", "Merzdorf", "Schönborn", "Kremitzaue – Frankenhain",
)
CATEGORIES = (
    "Schule", "Kita", "Pflegeheim", "Arztpraxis", "Apotheke", "Sporthalle", "Bürgerhaus",
    "Feuerwehr", "Gaststätte", "Einzelhandel – Lebensmittel", "Spielplatz", "Haltestelle",
)


def csv_path(rows: int) -> Path:
    from bench._harness import DATA_DIR

    return DATA_DIR / f"points-{rows}-s{SEED}-v{VERSION}.csv"


def ensure_csv(rows: int) -> tuple[Path, bool]:
    """The cached CSV of `rows` rows, generated if missing; True if it was generated now."""
    path = csv_path(rows)
    if path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        write_csv(tmp, rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path, True


def write_csv(path: Path, rows: int, seed: int = SEED) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.permutation(rows).astype(np.int64) + 1  # unique, not in file order
    with open(path, "wb") as fh:
        fh.write((";".join(COLUMNS) + "\r\n").encode(ENCODING))
        for start in range(0, rows, CHUNK_ROWS):
            fh.write(_chunk(rng, ids[start:start + CHUNK_ROWS]))


def _chunk(rng: np.random.Generator, ids: np.ndarray) -> memoryview:
    """The CSV lines of one chunk, as Windows-1252 bytes."""
    n = len(ids)
    street = _pick(rng, STREETS, n)
    number = _text(rng.integers(1, 180, n))
    name = pc.binary_join_element_wise(
        pc.binary_join_element_wise(street, number, b" "), _pick(rng, SUFFIXES, n), b"")
    cols = [
        _text(ids),
        name,
        _pick(rng, PLACES, n),
        _pick(rng, CATEGORIES, n),
        _text(rng.integers(0, 500, n)),
        _decimal(rng.integers(0, 10_000_000, n)),  # 0,00 .. 99 999,99
        _decimal(rng.integers(EASTING[0] * 100, EASTING[1] * 100, n)),
        _decimal(rng.integers(NORTHING[0] * 100, NORTHING[1] * 100, n)),
    ]
    lines = pc.binary_join_element_wise(*cols, b";")
    body = pc.binary_join_element_wise(lines, b"", b"\r\n")  # "line" + CRLF + ""
    if isinstance(body, pa.ChunkedArray):
        body = body.combine_chunks()
    offsets = np.frombuffer(body.buffers()[1], dtype=np.int32)[body.offset:body.offset + n + 1]
    return memoryview(body.buffers()[2])[int(offsets[0]):int(offsets[-1])]


def _pick(rng: np.random.Generator, words: tuple[str, ...], n: int) -> pa.Array:
    dictionary = pa.array([w.encode(ENCODING) for w in words], pa.binary())
    return dictionary.take(pa.array(rng.integers(0, len(words), n)))


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pc.cast(pa.array(values), pa.string()), pa.binary())


def _decimal(cents: np.ndarray) -> pa.Array:
    """Integers of hundredths as decimal-comma text: 12345 -> "123,45"."""
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), width=2, padding="0")
    return pc.cast(pc.binary_join_element_wise(whole, frac, ","), pa.binary())
