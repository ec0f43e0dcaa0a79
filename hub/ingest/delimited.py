"""Streaming reader for delimited text (CSV, semicolon, tab) as districts really produce it.

Handles UTF-8 with or without BOM and Windows-1252, `;` `,` tab and `|` separators, decimal
commas, and banner lines above the header. Sniffing looks at the first 256 KiB; reading streams
the file in blocks with pyarrow, so memory stays flat for files of any size. Every column is read
as raw bytes and decoded per batch, so a bad byte is reported with its row and column.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from hub.errors import SourceError
from hub.problem_codes import failing

SAMPLE_BYTES = 256 * 1024
BLOCK_BYTES = 4 << 20
DELIMITERS = (";", ",", "\t", "|")
OPTIONS = ("encoding", "delimiter", "header_row", "decimal", "quotechar")
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "cp1252": "cp1252",
             "windows-1252": "cp1252", "latin-1": "cp1252", "iso-8859-1": "cp1252",
             "iso-8859-15": "iso-8859-15"}
_COMMA_DECIMAL = re.compile(r"^-?\d+,\d+$")
_DOT_DECIMAL = re.compile(r"^-?\d+\.\d+$")
# UTF-8 length minus one of each Windows-1252 byte, for shifting offsets after transcoding
_CP1252_EXTRA = np.array(
    [len(bytes([b]).decode("cp1252", errors="replace").encode()) - 1 for b in range(256)],
    dtype=np.int64,
)

Opener = Callable[[], IO[bytes]]
csv.field_size_limit(2**31 - 1)  # cells of any size; pyarrow reads them, so must the sniffer


@dataclass(frozen=True)
class Dialect:
    """What sniffing found out about a delimited file."""

    encoding: str  # utf-8 | cp1252 | iso-8859-15
    delimiter: str
    header_line: int  # 0-based index of the header line
    columns: tuple[str, ...]
    decimal: str
    quoted: bool


def sniff(open_file: Opener, name: str, options: dict[str, Any],
          wanted: set[str] | None = None) -> Dialect:
    """Decide encoding, delimiter, header line and decimal mark (options win over guesses)."""
    if unknown := set(options) - set(OPTIONS):
        raise failing(SourceError(f"{name}: unknown CSV option(s) {sorted(unknown)}; "
                                  f"allowed: {', '.join(OPTIONS)}"), "read.options", file=name,
                      options=sorted(unknown), allowed=list(OPTIONS))
    with open_file() as fh:
        raw = fh.read(SAMPLE_BYTES)
        complete = len(fh.read(1)) == 0
    if not raw:
        raise failing(SourceError(f"{name}: the file is empty (0 bytes)"), "read.empty",
                      file=name)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise failing(SourceError(f"{name}: UTF-16 text is not supported; save the file as "
                                  "UTF-8 (Excel: 'CSV UTF-8')"), "read.utf16", file=name)
    if b"\x00" in raw:
        offset = raw.index(b"\x00")
        raise failing(SourceError(f"{name}: not a text file (binary NUL byte at offset "
                                  f"{offset}); is this really CSV?"), "read.binary", file=name,
                      offset=offset)
    encoding = _encoding(raw, name, options.get("encoding"), complete)
    text = raw.decode(encoding, errors="replace").lstrip("\ufeff")
    lines = [line.removesuffix("\r") for line in text.split("\n")]  # as pyarrow counts lines
    if not complete and lines:
        lines = lines[:-1]  # the last line of a sample may be cut off
    lines = lines[:500]
    if not any(line.strip() for line in lines):
        raise failing(SourceError(f"{name}: the file has no content (only blank lines)"),
                      "read.blank", file=name)
    quotechar = options.get("quotechar", '"')
    delimiter = options.get("delimiter") or _delimiter(lines, quotechar)
    header_line = _header_line(lines, delimiter, quotechar, options.get("header_row"), name,
                               wanted)
    header = next(csv.reader([lines[header_line]], delimiter=delimiter, quotechar=quotechar))
    columns = _column_names(header)
    decimal = options.get("decimal") or _decimal(lines[header_line + 1:], delimiter, quotechar)
    return Dialect(encoding, delimiter, header_line, columns, decimal, quotechar in text)


def _encoding(raw: bytes, name: str, declared: str | None, complete: bool) -> str:
    if declared:
        key = declared.lower().replace("_", "-")
        if key not in ENCODINGS:
            raise failing(SourceError(f"{name}: encoding {declared!r} is not supported; "
                                      "use one of utf-8, cp1252, iso-8859-15"),
                          "read.encoding-unknown", file=name, encoding=declared)
        return ENCODINGS[key]
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def _split(lines: list[str], delimiter: str, quotechar: str) -> list[list[str]]:
    try:
        return list(csv.reader(lines, delimiter=delimiter, quotechar=quotechar))
    except csv.Error:
        return [line.split(delimiter) for line in lines]


def _delimiter(lines: list[str], quotechar: str) -> str:
    """The separator that splits the most lines into the same number (> 1) of fields."""
    best, best_score = ";", (0, 0)
    for d in DELIMITERS:
        counts = [len(r) for r in _split(lines, d, quotechar) if any(c.strip() for c in r)]
        if not counts:
            continue
        width, freq = Counter(counts).most_common(1)[0]
        score = (freq if width > 1 else 0, width)
        if score > best_score:
            best, best_score = d, score
    return best


def _header_line(lines: list[str], delimiter: str, quotechar: str, header_row: Any, name: str,
                 wanted: set[str] | None) -> int:
    """The header is the first line naming the wanted columns, or that starts the table body."""
    rows = _split(lines, delimiter, quotechar)
    if header_row is not None:
        if not isinstance(header_row, int) or not 1 <= header_row <= len(rows):
            raise failing(SourceError(f"{name}: header_row {header_row!r} is not a line of "
                                      f"the file (1 to {len(rows)})"), "read.header-row",
                          file=name, header_row=header_row, last=len(rows))
        return header_row - 1
    if wanted:
        for i, r in enumerate(rows):
            if wanted <= {c.strip() for c in r}:
                return i
    widths = [len(r) if any(c.strip() for c in r) else 0 for r in rows]
    width = Counter(w for w in widths if w).most_common(1)[0][0]
    for i, w in enumerate(widths):
        if w == width:
            return i
    return 0


def _column_names(header: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for i, raw in enumerate(header, 1):
        base = raw.strip().lstrip("\ufeff") or f"column_{i}"
        candidate, n = base, 2
        while candidate in names:
            candidate, n = f"{base}_{n}", n + 1
        names.append(candidate)
    return tuple(names)


def _decimal(lines: list[str], delimiter: str, quotechar: str) -> str:
    if delimiter == ",":
        return "."
    comma = dot = 0
    for row in _split(lines[:200], delimiter, quotechar):
        for cell in row:
            cell = cell.strip()
            comma += bool(_COMMA_DECIMAL.match(cell))
            dot += bool(_DOT_DECIMAL.match(cell))
    return "," if comma > dot else "."


class _Counting(io.RawIOBase):
    """A file wrapper that reports how many bytes were read (for progress bars)."""

    def __init__(self, fh: IO[bytes], on_read: Callable[[int], None] | None):
        self._fh, self._on_read = fh, on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)
        if self._on_read and n:
            self._on_read(n)
        return n or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


@dataclass
class Batch:
    """Raw columns of consecutive records, and how to name their rows in the source."""

    columns: dict[str, pa.Array]
    length: int
    first: int  # index of the batch's first record among the file's well-formed records
    numbering: Numbering

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Source row numbers of records at these positions of the batch."""
        return self.numbering(self.first + np.asarray(positions, dtype=np.int64))


class Numbering:
    """Record index → row number as people see it (a sheet row, a feature number)."""

    def __init__(self, first_row: int):
        self.first_row = first_row

    def __call__(self, records: np.ndarray) -> np.ndarray:
        return self.first_row + records

    def malformed(self) -> list[tuple[int, str]]:
        return []


class CsvNumbering(Numbering):
    """CSV rows as a spreadsheet program shows them: blank lines count, a multi-line quoted
    cell counts once. pyarrow skips blank and malformed lines without saying where, so the
    exact numbers come from a second, lazy pass over the file, made only when a row has to be
    named (a violation, a quarantined row)."""

    def __init__(self, open_file: Opener, dialect: Dialect):
        super().__init__(dialect.header_line + 2)
        self._open, self._dialect = open_file, dialect
        self._gaps: np.ndarray | None = None  # well-formed records before each gap row
        self._malformed: list[tuple[int, str]] = []
        self._lock = threading.Lock()  # the reader thread and the run may both ask first

    def _scan(self) -> np.ndarray:
        with self._lock:
            return self._scan_once()

    def _scan_once(self) -> np.ndarray:
        if self._gaps is None:
            d, gaps = self._dialect, []
            with io.TextIOWrapper(self._open(), encoding=d.encoding, errors="replace",
                                  newline="") as text:
                for _ in range(d.header_line + 1):
                    text.readline()
                row = self.first_row
                for record in csv.reader(text, delimiter=d.delimiter, quotechar='"'):
                    if len(record) != len(d.columns):
                        gaps.append(row)
                        if record:
                            self._malformed.append((row, d.delimiter.join(record)))
                    row += 1
            self._gaps = np.array(gaps, dtype=np.int64) - self.first_row - np.arange(len(gaps))
        return self._gaps

    def __call__(self, records: np.ndarray) -> np.ndarray:
        gaps = self._scan()
        return self.first_row + records + np.searchsorted(gaps, records, side="right")

    def malformed(self) -> list[tuple[int, str]]:
        self._scan()
        return self._malformed


def read_batches(open_file: Opener, name: str, dialect: Dialect, columns: list[str],
                 on_read: Callable[[int], None] | None = None,
                 malformed: list[tuple[int, str]] | None = None) -> Iterator[Batch]:
    """Stream the chosen columns as UTF-8 strings.

    Rows with too many or too few fields are skipped; once the stream is exhausted,
    `malformed` holds each one's row number and text. Without a list they fail the read, and
    so does a quote that is never closed (the rest of the file would be one cell).
    """
    numbering = CsvNumbering(open_file, dialect)
    skipped = []
    refused: list[SourceError] = []  # pyarrow cannot raise the handler's error: kept here

    def on_invalid(row: Any) -> str:
        if not (row.text or "").strip():
            return "skip"  # a blank line is layout, not data
        if malformed is None or _unclosed(row.text):  # a quote that swallows the file's rest
            refused.append(_ragged(name, numbering, row))
            return "error"
        skipped.append(1)
        return "skip"

    stream = io.BufferedReader(_Counting(open_file(), on_read), BLOCK_BYTES)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                skip_rows=dialect.header_line + 1, column_names=list(dialect.columns),
                block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect.delimiter, newlines_in_values=dialect.quoted,
                invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns, column_types={c: pa.binary() for c in columns},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        stream.close()
        if "Empty CSV file" in str(exc):
            return
        if refused:
            raise refused[0] from None
        raise failing(SourceError(f"{name}: cannot parse as CSV: {exc}"), "read.csv",
                      file=name, row=None) from None
    record = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                if refused:
                    raise refused[0] from None
                after = int(numbering(np.array([max(record - 1, 0)]))[0])
                raise failing(SourceError(f"{name}: cannot parse as CSV after row {after}: "
                                          f"{exc}"), "read.csv", file=name, row=after) from None
            n = batch.num_rows
            out = Batch({}, n, record, numbering)
            out.columns = {c: decode(batch.column(c), dialect.encoding, name, c, out)
                           for c in columns}
            record += n
            yield out
        if skipped and malformed is not None:
            malformed.extend(numbering.malformed())
    finally:
        stream.close()


def _ragged(name: str, numbering: CsvNumbering, row: Any) -> SourceError:
    """The error for a row with too many or too few fields: one whose quote is never closed
    (it runs over the line's end) is said as that."""
    bad = numbering.malformed()
    if _unclosed(row.text):  # the last malformed row: it runs to the end of the file
        number = bad[-1][0] if bad else None
        where = f"row {number}" if bad else "a row"
        return failing(SourceError(f"{name}, {where}: a quote is opened and not closed (the "
                                   "cell runs on over the following lines)"), "read.quote",
                       file=name, row=number)
    number = bad[0][0] if bad else None
    where = f"row {number}" if bad else "a row"
    return failing(SourceError(f"{name}, {where}: expected {row.expected_columns} fields, "
                               f"found {row.actual_columns}"), "read.fields", file=name,
                   row=number, expected=row.expected_columns, found=row.actual_columns)


def _unclosed(text: str | None) -> bool:
    """Whether a malformed record's text opens a quote it never closes (and so runs on over
    the lines after it)."""
    text = (text or "").rstrip("\r\n")
    return text.count('"') % 2 == 1 and "\n" in text


def decode(arr: pa.Array, encoding: str, name: str, column: str, batch: Batch) -> pa.Array:
    """Binary cells to UTF-8 strings; undecodable bytes name their row and column."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data_buf = arr.buffers()[2]
    data = (np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]]
            if data_buf is not None else np.empty(0, np.uint8))
    high = np.flatnonzero(data >= 0x80)
    if high.size == 0:
        return arr.cast(pa.string())
    try:
        if encoding == "utf-8":
            return arr.cast(pa.string())
        out = data.tobytes().decode(encoding).encode("utf-8")
    except (pa.ArrowInvalid, UnicodeDecodeError):
        bad = _first_undecodable(arr, encoding)
        hint = ("the file is probably Windows-1252; set `encoding: cp1252`"
                if encoding == "utf-8" else "check the file's encoding")
        row = int(batch.rows(np.array([bad]))[0])
        raise failing(SourceError(f"{name}, row {row}, column {column!r}: bytes that are not "
                                  f"valid {encoding.upper()} ({hint})"), "read.encoding",
                      file=name, row=row, column=column, encoding=encoding) from None
    if encoding == "cp1252":
        extra = np.concatenate([[0], np.cumsum(_CP1252_EXTRA[data[high]])])
    else:  # single-byte ISO-8859-15: every byte >= 0x80 becomes two UTF-8 bytes
        extra = np.arange(high.size + 1, dtype=np.int64)
    rel = offsets.astype(np.int64) - offsets[0]
    new_offsets = rel + extra[np.searchsorted(high, rel, side="left")]
    validity = arr.buffers()[0] if arr.null_count else None
    return pa.StringArray.from_buffers(
        len(arr), pa.py_buffer(new_offsets.astype(np.int32)), pa.py_buffer(out), validity,
        arr.null_count, 0)


def _first_undecodable(arr: pa.Array, encoding: str) -> int:
    for i, value in enumerate(arr.to_pylist()):
        if value is None:
            continue
        try:
            value.decode(encoding)
        except UnicodeDecodeError:
            return i
    return 0
