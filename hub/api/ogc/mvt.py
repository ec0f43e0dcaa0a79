"""A vectorised Mapbox Vector Tile (MVT 2.1) encoder: numpy arrays in, protobuf bytes out.

Every part of a tile is a *ragged byte array* (`Ragged`: one byte string per item, stored as
one buffer plus offsets), and every protobuf message is a concatenation of such parts per item
(`join`), so a tile of thousands of features is a handful of numpy operations instead of a
Python loop per feature. A Feature's short fields (id, tags, type, the geometry's length) are
fixed-width rows of bytes with a mask of those used (`Cells`), put side by side and packed by
one gather; varints are made that way too. Geometries arrive as integer tile coordinates with
ring/part offsets (`shapely.to_ragged_array` layout), properties as Arrow arrays or as the
rows of a layer's `Attributes` (made ready once per version, so a tile gathers instead of
encoding); values are de-duplicated per tile into the layer's value table.

Written from the vector tile specification 2.1 (github.com/mapbox/vector-tile-spec):
Tile.layers = 3; Layer: name = 1, features = 2, keys = 3, values = 4, extent = 5, version = 15;
Feature: id = 1, tags = 2 (packed), type = 3, geometry = 4 (packed);
Value: string = 1, double = 3, sint = 6, bool = 7.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

EXTENT = 4096
POINT, LINESTRING, POLYGON = 1, 2, 3
MOVE_TO, LINE_TO, CLOSE_PATH = 1, 2, 7


@dataclass
class Ragged:
    """n byte strings: `data[offsets[i]:offsets[i + 1]]` is item i."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, n + 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def tobytes(self) -> bytes:
        return self.data[self.offsets[0]:self.offsets[-1]].tobytes()


def _starts(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def varints(values: np.ndarray, offsets: np.ndarray | None = None) -> Ragged:
    """Base-128 varints of unsigned values; grouped per item by `offsets` (into `values`),
    else one item per value."""
    each = varint_cells(np.asarray(values, np.uint64)).ragged()
    return each if offsets is None else Ragged(each.data,
                                               each.offsets[np.asarray(offsets, np.int64)])


def join(*parts: Ragged | bytes) -> Ragged:
    """Item-wise concatenation: item i is parts[0][i] + parts[1][i] + …; a `bytes` part is
    the same bytes for every item (a field's tag)."""
    sizes = _sizes(parts)
    offsets = _starts(np.sum(sizes, axis=0))
    out = np.empty(int(offsets[-1]), np.uint8)
    before = offsets[:-1].copy()
    for part, size in zip(parts, sizes, strict=True):
        if isinstance(part, bytes):
            for k, byte in enumerate(part):
                out[before + k] = byte
        else:
            first, last = int(part.offsets[0]), int(part.offsets[-1])
            if last > first:  # byte s goes to s + (item's start there - its start here)
                out[np.arange(first, last) + np.repeat(before - part.offsets[:-1], size)] = \
                    part.data[first:last]
        before += size
    return Ragged(out, offsets)


def _sizes(parts: tuple[Ragged | bytes, ...] | list[Ragged | bytes]) -> list[np.ndarray]:
    """Each part's length per item."""
    n = next(len(p.offsets) - 1 for p in parts if isinstance(p, Ragged))
    return [np.full(n, len(p), np.int64) if isinstance(p, bytes) else p.lengths for p in parts]


def field(tag: int, payload: Ragged) -> Ragged:
    """A length-delimited protobuf field per item: tag, length, payload."""
    return join(bytes([tag]), varints(payload.lengths), payload)


def zigzag(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


@dataclass
class Cells:
    """n items of at most `width` bytes each, as fixed-width rows: item i is
    `data[i][used[i]]`. Parts side by side (`beside`) are their items concatenated, packed by
    one boolean gather (`ragged`): two assignments per part, where `join` computes every byte's
    place (better for long items such as geometries)."""

    data: np.ndarray  # uint8 (n, width)
    used: np.ndarray  # bool (n, width)

    @property
    def lengths(self) -> np.ndarray:
        return self.used.sum(axis=1)

    def ragged(self) -> Ragged:
        return Ragged(self.data[self.used], _starts(self.lengths))


def varint_cells(values: np.ndarray, present: np.ndarray | None = None) -> Cells:
    """Base-128 varints of unsigned values, shape (n,) or (n, m): item i is the varints of
    row i one after the other, those not `present` (same shape) left out."""
    v = np.asarray(values, np.uint64)
    v = v[:, None] if v.ndim == 1 else v
    top = int(v.max()) if v.size else 0
    if top < 1 << 7:
        data, used = v.astype(np.uint8)[..., None], np.ones((*v.shape, 1), bool)
    else:  # byte k: bits 7k to 7k + 6, the high bit set where byte k + 1 is used
        width = (top.bit_length() + 6) // 7
        data = ((v[..., None] >> _SHIFTS[:width]) & np.uint64(0x7F)).astype(np.uint8)
        used = v[..., None] >= _FROM[:width]
        data[..., :-1] |= used[..., 1:].view(np.uint8) << 7
    if present is not None:
        used = used & present[..., None]
    width = data.shape[-1] * v.shape[1]
    return Cells(data.reshape(len(v), width), used.reshape(len(v), width))


_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)  # byte k of a varint: bits from 7k on
_FROM = np.array([0] + [1 << (7 * k) for k in range(1, 10)], np.uint64)  # used from this value


def beside(*parts: Cells | bytes) -> Cells:
    """Item-wise concatenation of cells; a `bytes` part is the same bytes for every item (a
    field's tag)."""
    n = next(len(p.data) for p in parts if isinstance(p, Cells))
    widths = [len(p) if isinstance(p, bytes) else p.data.shape[1] for p in parts]
    data = np.empty((n, sum(widths)), np.uint8)
    used = np.empty((n, sum(widths)), bool)
    at = 0
    for part, width in zip(parts, widths, strict=True):
        if isinstance(part, bytes):
            data[:, at:at + width] = np.frombuffer(part, np.uint8)
            used[:, at:at + width] = True
        else:
            data[:, at:at + width], used[:, at:at + width] = part.data, part.used
        at += width
    return Cells(data, used)


# -- geometry commands ---------------------------------------------------------------------------

def point_commands(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One point per feature: [MoveTo(1), x, y] each (the cursor starts at 0, 0)."""
    n = len(xy)
    out = np.empty((n, 3), np.uint64)
    out[:, 0] = MOVE_TO | (1 << 3)
    out[:, 1:] = zigzag(xy)
    return out.ravel(), np.arange(n + 1, dtype=np.int64) * 3


def path_commands(xy: np.ndarray, ring_counts: np.ndarray, ring_feature: np.ndarray,
                  n_features: int, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Command integers of lines (closed=False) or polygon rings (closed=True, the closing
    point already dropped): per ring MoveTo(1) p0, LineTo(n-1) p1…, [ClosePath]; the cursor
    runs on across the rings of a feature and restarts at 0, 0 for the next."""
    counts = np.asarray(ring_counts, np.int64)
    ring_len = 2 * counts + (3 if closed else 2)
    ring_at = _starts(ring_len)
    out = np.empty(int(ring_at[-1]), np.uint64)
    heads = ring_at[:-1]
    out[heads] = MOVE_TO | (1 << 3)
    out[heads + 3] = (LINE_TO | ((counts - 1) << 3)).astype(np.uint64)
    if closed:
        out[ring_at[1:] - 1] = CLOSE_PATH | (1 << 3)
    point_ring = np.repeat(np.arange(len(counts)), counts)
    local = np.arange(len(xy)) - np.repeat(_starts(counts)[:-1], counts)
    pos = heads[point_ring] + np.where(local == 0, 1, 2 + 2 * local)
    prev = np.roll(xy, 1, axis=0)
    point_feature = ring_feature[point_ring]
    first = np.ones(len(xy), bool)
    first[1:] = point_feature[1:] != point_feature[:-1]
    prev[first] = 0
    delta = zigzag(xy - prev)
    out[pos], out[pos + 1] = delta[:, 0], delta[:, 1]
    feature_len = np.bincount(ring_feature, weights=ring_len, minlength=n_features)
    return out, _starts(feature_len.astype(np.int64))


# -- properties ----------------------------------------------------------------------------------

def _value_messages(values: pa.Array) -> Ragged:
    """Value messages for the distinct values of one column (no nulls)."""
    kind = values.type
    n = len(values)
    if pa.types.is_boolean(kind):
        flags = values.to_numpy(zero_copy_only=False).astype(np.uint8)
        data = np.empty((n, 2), np.uint8)
        data[:, 0], data[:, 1] = 0x38, flags
        return Ragged(data.ravel(), np.arange(n + 1, dtype=np.int64) * 2)
    if pa.types.is_integer(kind):
        return join(b"\x30", varints(zigzag(values.to_numpy())))
    if pa.types.is_floating(kind):
        data = np.empty((n, 9), np.uint8)
        data[:, 0] = 0x19
        data[:, 1:] = values.cast(pa.float64()).to_numpy().astype("<f8").view(np.uint8) \
            .reshape(n, 8)
        return Ragged(data.ravel(), np.arange(n + 1, dtype=np.int64) * 9)
    text = values if pa.types.is_string(kind) else pc.cast(values, pa.string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset:text.offset + n + 1]
    raw = np.frombuffer(text.buffers()[2], np.uint8) if text.buffers()[2] else \
        np.empty(0, np.uint8)
    return field(0x0A, Ragged(raw, offsets.astype(np.int64)))


@dataclass
class Tags:
    """Per feature and key the index of its value in the layer's value table (`at`, n × keys;
    where `present` is False the feature has no value for the key), the layer's keys, and its
    value table as the layer's encoded `values` fields (tag 4, length, Value message), in
    value index order."""

    at: np.ndarray
    present: np.ndarray | None  # None: every feature has every key
    keys: list[str]
    values: bytes

    def packed(self) -> Cells:
        """Each feature's packed tags: the pairs (key index, value index) it has."""
        n, k = self.at.shape
        keys, values = varint_cells(np.arange(k)), varint_cells(self.at, self.present)
        split = keys.data.shape[1]  # a key's bytes, then its value's
        width = split + values.data.shape[1] // k
        data = np.empty((n, k, width), np.uint8)
        used = np.empty((n, k, width), bool)
        data[:, :, :split], data[:, :, split:] = keys.data, values.data.reshape(n, k, -1)
        used[:, :, :split] = keys.used if self.present is None else \
            keys.used & self.present[:, :, None]
        used[:, :, split:] = values.used.reshape(n, k, -1)
        return Cells(data.reshape(n, k * width), used.reshape(n, k * width))


@dataclass
class _Column:
    """One column's part of a tile: per feature its index into the column's values in this
    tile (-1: null), and those values' encoded fields."""

    at: np.ndarray
    fields: bytes
    count: int


def _fields(messages: Ragged) -> bytes:
    """Value messages as the layer's `values` fields (tag 4, length, message)."""
    return field(0x22, messages).tobytes() if len(messages.offsets) > 1 else b""


def _arrow_column(column: pa.Array | pa.ChunkedArray) -> _Column | None:
    """A column's part of a tile by Arrow's dictionary encoding of the tile's values (None:
    all of them are null)."""
    n = len(column)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.string())
    encoded = pc.dictionary_encode(column)
    indices = encoded.indices
    if indices.null_count == n:
        return None
    # the indices' values buffer as it is (a null's slot holds some index; masked here)
    at = np.frombuffer(indices.buffers()[1], np.int32)[indices.offset:indices.offset + n] \
        .astype(np.int64)
    if indices.null_count:
        at[~indices.is_valid().to_numpy(zero_copy_only=False)] = -1
    return _Column(at, _fields(_value_messages(encoded.dictionary)), len(encoded.dictionary))


def _first_seen(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values in the order they first occur (the order of Arrow's dictionary
    encoding), and each value's index among them (a hash table: pandas' factorize)."""
    at, distinct = pd.factorize(values, use_na_sentinel=False)
    return distinct, at


def _first_seen_codes(codes: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_first_seen` for codes from 0 to len(table) - 1, by a table of one slot per code
    instead of a hash table (half the time; the table's contents do not matter)."""
    n = len(codes)
    where = np.arange(n, dtype=np.int32)
    table[codes[::-1]] = where[::-1]  # each code's first position (written last)
    distinct = codes[table[codes] == where]
    table[distinct] = np.arange(len(distinct), dtype=np.int32)
    return distinct, table[codes]


def _number_fields(values: np.ndarray) -> bytes:
    """`values` fields of integers (sint) or floats (double)."""
    if values.dtype.kind == "f":
        data = np.empty((len(values), 11), np.uint8)
        data[:, :3] = (0x22, 9, 0x19)
        data[:, 3:] = values.astype("<f8").view(np.uint8).reshape(-1, 8)
        return data.tobytes()
    # a field: tag, length (< 128), 0x30, the varint; as one row of cells per value
    v = zigzag(values)
    top = int(v.max()) if len(v) else 0
    width = max(1, (top.bit_length() + 6) // 7)
    data = np.empty((len(v), width + 3), np.uint8)
    used = np.ones((len(v), width + 3), bool)
    data[:, 3:] = (v[:, None] >> _SHIFTS[:width]) & np.uint64(0x7F)
    used[:, 3:] = v[:, None] >= _FROM[:width]
    data[:, 3:-1] |= used[:, 4:].view(np.uint8) << 7
    data[:, 0], data[:, 2] = 0x22, 0x30
    data[:, 1] = used[:, 3:].sum(axis=1) + 1
    return data[used].tobytes()


def take(ragged: Ragged, items: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The bytes of the given items of `ragged`, one after the other, and where each starts
    there (and the end)."""
    begin = ragged.offsets[items]
    lengths = ragged.offsets[items + 1] - begin
    out_at = _starts(lengths)
    where = np.arange(int(out_at[-1])) + np.repeat(begin - out_at[:-1], lengths)
    return ragged.data[where].tobytes(), out_at


def _tags(names: list[str], columns: list[_Column | None], n: int) -> Tags:
    """Tags from each column's part (None: all null in the tile, no key)."""
    kept = [(name, c) for name, c in zip(names, columns, strict=True) if c is not None]
    at = np.empty((n, len(kept)), np.int64)
    base, present = 0, None
    for k, (_, c) in enumerate(kept):
        at[:, k] = c.at + base
        if (c.at < 0).any():
            present = np.ones((n, len(kept)), bool) if present is None else present
            present[:, k] = c.at >= 0
        base += c.count
    return Tags(at, present, [name for name, _ in kept], b"".join(c.fields for _, c in kept))


def tags(columns: dict[str, pa.Array]) -> Tags:
    """Tags of n features from attribute columns (nulls are left out)."""
    n = len(next(iter(columns.values()))) if columns else 0
    return _tags(list(columns), [_arrow_column(c) for c in columns.values()], n)


# -- attributes made ready once per version -----------------------------------------------------

DICTIONARY_MAX = 65_536  # a column of at most this many distinct values is encoded once
# how a column is encoded (`Attributes`)
DICTIONARY, INTEGERS, FLOATS, PER_TILE, UNIQUE_INTEGERS = 0, 1, 2, 3, 4


class Attributes:
    """A layer's attribute columns made ready once per version, so that a tile only gathers.

    A column of few distinct values (at most `DICTIONARY_MAX` and half the rows) has them
    encoded once as value fields, and per row the index of its value among those of all such
    columns (`codes`: row-major, one column per such attribute; -1 null). A numeric column
    without nulls of many distinct values is kept as numbers (`ints`, `floats`, row-major),
    de-duplicated per tile by numpy (integers distinct in every row, such as ids, need not
    be). Any other column (many distinct strings, nulls among many
    numbers) is encoded per tile by Arrow (`tags`). Either way a tile's bytes are those of
    Arrow's dictionary encoding of the tile's values (the values in the order they first occur
    per column). `prepare` computes the arrays (`NAMES`) once; the workers of a server share one
    copy of them (mapped files, `hub.api.ogc.tilefiles`)."""

    NAMES = ("kinds", "bases", "codes", "fields_data", "fields_offsets", "ints", "floats")

    def __init__(self, table: pa.Table, found: dict[str, np.ndarray]):
        self.table, self.arrays = table, found
        self.names = table.column_names
        self.kinds = found["kinds"]
        self.bases = found["bases"]  # the first global index of each DICTIONARY column; the end
        self.codes = found["codes"]
        self.fields = Ragged(found["fields_data"], found["fields_offsets"])
        self.ints, self.floats = found["ints"], found["floats"]
        # which columns are where: the ints' and floats' columns j of each column k
        self._numbers = [(block, [(j, int(k)) for j, k in enumerate(np.flatnonzero(
            np.isin(self.kinds, kinds)))]) for kinds, block in (
                ((INTEGERS, UNIQUE_INTEGERS), self.ints), ((FLOATS,), self.floats))]
        self._dictionary = np.flatnonzero(self.kinds == DICTIONARY).tolist()
        self._per_tile = np.flatnonzero(self.kinds == PER_TILE).tolist()
        self._tables = threading.local()  # per thread: a slot per value code (`_codes_table`)

    @staticmethod
    def prepare(table: pa.Table) -> dict[str, np.ndarray]:
        """The arrays of `Attributes`, computed from the whole table."""
        rows = table.num_rows
        kinds, bases, codes, messages, ints, floats = [], [0], [], [], [], []
        for name in table.column_names:
            column = table.column(name).combine_chunks()
            if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
                column = pc.cast(column, pa.string())
            encoded = pc.dictionary_encode(column)
            size = len(encoded.dictionary)
            if size <= DICTIONARY_MAX and 2 * size <= max(rows, 2):
                kinds.append(DICTIONARY)
                at = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
                codes.append(np.where(at >= 0, at.astype(np.int64) + bases[-1], -1))
                messages.append(_value_messages(encoded.dictionary))
                bases.append(bases[-1] + size)
            elif column.null_count == 0 and pa.types.is_signed_integer(column.type):
                kinds.append(UNIQUE_INTEGERS if size == rows else INTEGERS)
                ints.append(column.to_numpy().astype(np.int64))
            elif column.null_count == 0 and pa.types.is_floating(column.type):
                kinds.append(FLOATS)
                floats.append(column.cast(pa.float64()).to_numpy())
            else:
                kinds.append(PER_TILE)
        fields = field(0x22, Ragged(
            np.concatenate([m.data[m.offsets[0]:m.offsets[-1]] for m in messages]),
            _starts(np.concatenate([m.lengths for m in messages])))) if messages else \
            Ragged(np.empty(0, np.uint8), np.zeros(1, np.int64))

        def block(columns: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.stack(columns, 1).astype(dtype) if columns else np.empty((rows, 0), dtype)
        return {"kinds": np.array(kinds, np.int8), "bases": np.array(bases, np.int64),
                "codes": block(codes, np.int16 if bases[-1] < 2 ** 15 else np.int32),
                "fields_data": fields.data, "fields_offsets": fields.offsets,
                "ints": block(ints, np.int64), "floats": block(floats, np.float64)}

    def tags(self, rows: np.ndarray) -> Tags:
        """The tags of features made from these rows (distinct, in this order)."""
        n = len(rows)
        parts: list[_Column | None] = [None] * len(self.names)
        if self.codes.shape[1] and n:
            self._dictionary_parts(self.codes[rows], parts)
        for block, columns in self._numbers:
            if columns and n:
                gathered = block[rows]
                for j, k in columns:
                    values, at = (gathered[:, j], np.arange(n)) \
                        if self.kinds[k] == UNIQUE_INTEGERS else _first_seen(gathered[:, j])
                    parts[k] = _Column(at, _number_fields(values), len(values))
        for k in self._per_tile:
            parts[k] = _arrow_column(self.table.column(k).take(pa.array(rows)))
        return _tags(self.names, parts, n)

    def _codes_table(self) -> np.ndarray:
        """This thread's table of a slot per value code of the DICTIONARY columns."""
        table = getattr(self._tables, "table", None)
        if table is None:
            table = self._tables.table = np.empty(int(self.bases[-1]), np.int32)
        return table

    def _dictionary_parts(self, codes: np.ndarray, parts: list[_Column | None]) -> None:
        """The DICTIONARY columns' parts from the global codes of a tile's rows: one
        de-duplication and one gathering of value fields for all of them (read column by
        column, the values first seen come column by column too: each column's global
        indices lie between its `bases`)."""
        n, width = codes.shape
        flat = codes.T.ravel().astype(np.int64)
        valid = flat >= 0
        everything = bool(valid.all())
        distinct, at = _first_seen_codes(flat if everything else flat[valid],
                                         self._codes_table())
        if not everything:
            full = np.full(len(flat), -1, np.int64)
            full[valid] = at
            at = full
        counts = np.bincount(np.searchsorted(self.bases, distinct, side="right") - 1,
                             minlength=width)
        first = _starts(counts)
        blob, byte_at = take(self.fields, distinct)
        for j, k in enumerate(self._dictionary):
            if counts[j]:
                mine = at[j * n:(j + 1) * n]
                parts[k] = _Column(np.where(mine >= 0, mine - first[j], -1) if not everything
                                   else mine - first[j], blob[byte_at[first[j]]:
                                                             byte_at[first[j + 1]]],
                                   int(counts[j]))


# -- the tile --------------------------------------------------------------------------------------

def layer(name: str, geom_type: np.ndarray, commands: np.ndarray, command_offsets: np.ndarray,
          columns: dict[str, pa.Array] | Tags, ids: np.ndarray | None = None) -> bytes:
    """One layer's bytes (Layer message, without the Tile wrapper); the features' attributes
    as columns or as their tags (`Attributes.tags`)."""
    n = len(geom_type)
    t = columns if isinstance(columns, Tags) else tags(columns)
    fields: list[Cells | bytes] = []  # a Feature message's fields before its geometry's bytes
    if ids is not None:
        fields += [b"\x08", varint_cells(ids)]
    if len(t.keys):
        packed = t.packed()
        fields += [b"\x12", varint_cells(packed.lengths), packed]
    fields += [b"\x18", Cells(geom_type[:, None], np.ones((n, 1), bool)), b"\x22"]
    if len(commands) == 3 * n:  # one point each (every geometry has 3 integers or more)
        points = varint_cells(np.asarray(commands).reshape(n, 3))
        head = beside(*fields, varint_cells(points.lengths), points)
        features = beside(b"\x12", varint_cells(head.lengths), head).ragged()
    else:  # lines and polygons: long items, joined
        geometry = varints(commands, command_offsets)
        head = beside(*fields, varint_cells(geometry.lengths))
        feature = beside(b"\x12", varint_cells(head.lengths + geometry.lengths), head)
        features = join(feature.ragged(), geometry)
    keys = b"".join(_text(0x1A, k) for k in t.keys)
    return b"\x78\x02" + _text(0x0A, name) + features.tobytes() + keys + t.values + b"\x28" \
        + _varint(EXTENT)


def tile(*layers: bytes) -> bytes:
    """A tile of encoded layers."""
    return b"".join(b"\x1a" + _varint(len(lay)) + lay for lay in layers)


def _varint(value: int) -> bytes:
    """One varint (the layer's few lengths and the extent; numpy would cost more here)."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _text(tag: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    return bytes([tag]) + _varint(len(raw)) + raw
