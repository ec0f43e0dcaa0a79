"""A vectorised Mapbox Vector Tile (MVT 2.1) encoder: numpy arrays in, protobuf bytes out.

Every part of a tile is a *ragged byte array* (`Ragged`: one byte string per item, stored as
one buffer plus offsets), and every protobuf message is a concatenation of such parts per item
(`join`), so a tile of thousands of features is a handful of numpy operations instead of a
Python loop per feature. Geometries arrive as integer tile coordinates with ring/part offsets
(`shapely.to_ragged_array` layout), properties as Arrow arrays; values are de-duplicated per
tile into the layer's value table.

Written from the vector tile specification 2.1 (github.com/mapbox/vector-tile-spec):
Tile.layers = 3; Layer: name = 1, features = 2, keys = 3, values = 4, extent = 5, version = 15;
Feature: id = 1, tags = 2 (packed), type = 3, geometry = 4 (packed);
Value: string = 1, double = 3, sint = 6, bool = 7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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

    @classmethod
    def constant(cls, value: bytes, n: int) -> Ragged:
        data = np.tile(np.frombuffer(value, np.uint8), n)
        return cls(data, np.arange(n + 1, dtype=np.int64) * len(value))

    def tobytes(self) -> bytes:
        return self.data[self.offsets[0]:self.offsets[-1]].tobytes()


def _starts(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def varints(values: np.ndarray, offsets: np.ndarray | None = None) -> Ragged:
    """Base-128 varints of unsigned values; grouped per item by `offsets` (into `values`),
    else one item per value."""
    v = np.asarray(values, np.uint64)
    sizes = np.ones(len(v), np.int64)
    for k in range(1, 10):
        sizes += v >= np.uint64(1 << (7 * k))
    ends = np.cumsum(sizes)
    out = np.empty(int(ends[-1]) if len(v) else 0, np.uint8)
    starts = ends - sizes
    for k in range(int(sizes.max()) if len(v) else 0):
        has = sizes > k
        byte = (v[has] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (sizes[has] > k + 1).astype(np.uint64) << np.uint64(7)
        out[starts[has] + k] = (byte | more).astype(np.uint8)
    if offsets is None:
        return Ragged(out, np.concatenate([[0], ends]).astype(np.int64))
    byte_at = np.concatenate([[0], ends]).astype(np.int64)
    return Ragged(out, byte_at[np.asarray(offsets, np.int64)])


def join(*parts: Ragged) -> Ragged:
    """Item-wise concatenation: item i is parts[0][i] + parts[1][i] + …"""
    lengths = np.stack([p.lengths for p in parts])
    offsets = _starts(lengths.sum(axis=0))
    out = np.empty(int(offsets[-1]), np.uint8)
    before = offsets[:-1].copy()
    for part, size in zip(parts, lengths, strict=True):
        first, last = int(part.offsets[0]), int(part.offsets[-1])
        if last > first:  # byte s of the part goes to s + (item's start there - its start here)
            out[np.arange(first, last) + np.repeat(before - part.offsets[:-1], size)] = \
                part.data[first:last]
        before += size
    return Ragged(out, offsets)


def field(tag: int, payload: Ragged) -> Ragged:
    """A length-delimited protobuf field per item: tag, length, payload."""
    n = len(payload.offsets) - 1
    return join(Ragged.constant(bytes([tag]), n), varints(payload.lengths), payload)


def zigzag(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


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
        return join(Ragged.constant(b"\x30", n), varints(zigzag(values.to_numpy())))
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
    """Per feature tag pairs (key, value index) and the layer's keys and value table."""

    ints: np.ndarray
    offsets: np.ndarray
    keys: list[str]
    values: Ragged


def tags(columns: dict[str, pa.Array]) -> Tags:
    """Tags of n features from attribute columns (nulls are left out)."""
    n = len(next(iter(columns.values()))) if columns else 0
    keys, messages, key_idx, val_idx, valid = [], [], [], [], []
    base = 0
    for name, column in columns.items():
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.string())
        encoded = pc.dictionary_encode(column)
        dictionary = encoded.dictionary
        indices = encoded.indices
        ok = indices.is_valid().to_numpy(zero_copy_only=False)
        if not ok.any():
            continue
        keys.append(name)
        messages.append(_value_messages(dictionary))
        key_idx.append(np.full(n, len(keys) - 1, np.int64))
        val_idx.append(pc.fill_null(indices, 0).to_numpy().astype(np.int64) + base)
        valid.append(ok)
        base += len(dictionary)
    if not keys:
        return Tags(np.empty(0, np.uint64), np.zeros(n + 1, np.int64), [],
                    Ragged(np.empty(0, np.uint8), np.zeros(1, np.int64)))
    pairs = np.stack([np.stack(key_idx, 1), np.stack(val_idx, 1)], axis=2)  # n, k, 2
    mask = np.stack(valid, 1)
    flat = pairs[mask].ravel().astype(np.uint64)
    offsets = _starts(2 * mask.sum(axis=1))
    values = Ragged(np.concatenate([m.data[m.offsets[0]:m.offsets[-1]] for m in messages]),
                    _starts(np.concatenate([m.lengths for m in messages])))
    return Tags(flat, offsets, keys, values)


# -- the tile --------------------------------------------------------------------------------------

def layer(name: str, geom_type: np.ndarray, commands: np.ndarray, command_offsets: np.ndarray,
          columns: dict[str, pa.Array], ids: np.ndarray | None = None) -> bytes:
    """One layer's bytes (Layer message, without the Tile wrapper)."""
    n = len(geom_type)
    t = tags(columns)
    parts = []
    if ids is not None:
        parts.append(join(Ragged.constant(b"\x08", n), varints(ids)))
    if len(t.keys):
        parts.append(field(0x12, varints(t.ints, t.offsets)))
    type_field = np.empty((n, 2), np.uint8)
    type_field[:, 0], type_field[:, 1] = 0x18, geom_type
    parts.append(Ragged(type_field.ravel(), np.arange(n + 1, dtype=np.int64) * 2))
    parts.append(field(0x22, varints(commands, command_offsets)))
    features = field(0x12, join(*parts))
    head = b"\x78\x02" + _text(0x0A, name)
    keys = b"".join(_text(0x1A, k) for k in t.keys)
    values = field(0x22, t.values).tobytes() if len(t.keys) else b""
    return head + features.tobytes() + keys + values + b"\x28" + _varint(EXTENT)


def tile(*layers: bytes) -> bytes:
    """A tile of encoded layers."""
    return b"".join(b"\x1a" + _varint(len(lay)) + lay for lay in layers)


def _varint(value: int) -> bytes:
    return varints(np.array([value])).tobytes()


def _text(tag: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    return bytes([tag]) + _varint(len(raw)) + raw
