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
    sizes = np.searchsorted(_VARINT_LIMITS, v, side="right") + 1  # bytes per value
    ends = np.cumsum(sizes)
    width = int(sizes.max()) if len(v) else 0
    if width == 1:
        out = v.astype(np.uint8)
    else:  # byte k of each value, the high bit set where another byte follows; then the used ones
        k = np.arange(width, dtype=np.uint64)
        table = ((v[:, None] >> (k * np.uint64(7))) & np.uint64(0x7F)).astype(np.uint8)
        table[k[None, :] < (sizes[:, None] - 1)] |= 0x80
        out = table[k[None, :] < sizes[:, None]]
    byte_at = np.zeros(len(v) + 1, np.int64)
    byte_at[1:] = ends
    return Ragged(out, byte_at if offsets is None else byte_at[np.asarray(offsets, np.int64)])


_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], np.uint64)  # 2 bytes from 2**7 on…


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
    """Per feature tag pairs (key, value index) and the layer's keys and value table."""

    ints: np.ndarray
    offsets: np.ndarray
    keys: list[str]
    values: Ragged


def tags(columns: dict[str, pa.Array]) -> Tags:
    """Tags of n features from attribute columns (nulls are left out)."""
    n = len(next(iter(columns.values()))) if columns else 0
    keys, messages, val_idx, valid = [], [], [], []
    base = 0
    for name, column in columns.items():
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.string())
        encoded = pc.dictionary_encode(column)
        indices = encoded.indices
        if indices.null_count == n:
            continue
        keys.append(name)
        messages.append(_value_messages(encoded.dictionary))
        # the indices' values buffer as it is (a null's slot holds some index; masked below)
        at = np.frombuffer(indices.buffers()[1], np.int32)[indices.offset:indices.offset + n]
        val_idx.append(at.astype(np.int64) + base)
        valid.append(indices.is_valid().to_numpy(zero_copy_only=False)
                     if indices.null_count else None)
        base += len(encoded.dictionary)
    if not keys:
        return Tags(np.empty(0, np.uint64), np.zeros(n + 1, np.int64), [],
                    Ragged(np.empty(0, np.uint8), np.zeros(1, np.int64)))
    pairs = np.empty((n, len(keys), 2), np.uint64)  # per feature: (key, value) per column
    pairs[:, :, 0] = np.arange(len(keys), dtype=np.uint64)
    pairs[:, :, 1] = np.stack(val_idx, 1)
    if any(v is not None for v in valid):
        mask = np.stack([np.ones(n, bool) if v is None else v for v in valid], 1)
        flat, per_feature = pairs[mask].ravel(), 2 * mask.sum(axis=1)
    else:
        flat, per_feature = pairs.ravel(), np.full(n, 2 * len(keys), np.int64)
    values = Ragged(np.concatenate([m.data[m.offsets[0]:m.offsets[-1]] for m in messages]),
                    _starts(np.concatenate([m.lengths for m in messages])))
    return Tags(flat, _starts(per_feature), keys, values)


# -- the tile --------------------------------------------------------------------------------------

def layer(name: str, geom_type: np.ndarray, commands: np.ndarray, command_offsets: np.ndarray,
          columns: dict[str, pa.Array], ids: np.ndarray | None = None) -> bytes:
    """One layer's bytes (Layer message, without the Tile wrapper)."""
    n = len(geom_type)
    t = tags(columns)
    parts: list[Ragged | bytes] = []  # a Feature message's fields, in one join
    if ids is not None:
        parts += [b"\x08", varints(ids)]
    if len(t.keys):
        packed = varints(t.ints, t.offsets)
        parts += [b"\x12", varints(packed.lengths), packed]
    type_field = np.empty((n, 2), np.uint8)
    type_field[:, 0], type_field[:, 1] = 0x18, geom_type
    geometry = varints(commands, command_offsets)
    parts += [Ragged(type_field.ravel(), np.arange(n + 1, dtype=np.int64) * 2),
              b"\x22", varints(geometry.lengths), geometry]
    features = join(b"\x12", varints(np.sum(_sizes(parts), axis=0)), *parts)
    head = b"\x78\x02" + _text(0x0A, name)
    keys = b"".join(_text(0x1A, k) for k in t.keys)
    values = field(0x22, t.values).tobytes() if len(t.keys) else b""
    return head + features.tobytes() + keys + values + b"\x28" + _varint(EXTENT)


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
