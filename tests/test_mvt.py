"""The vectorised MVT encoder (hub/api/ogc/mvt.py) against an independent decoder
(mapbox-vector-tile) and a plain-Python varint: every attribute type, nulls, sliced and chunked
Arrow arrays, points, lines and polygons."""

from __future__ import annotations

import datetime as dt
from typing import Any

import mapbox_vector_tile
import numpy as np
import pyarrow as pa
import pytest

from hub.api.ogc import mvt


def python_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


EDGES = [0, 1, 127, 128, 255, 16383, 16384, 2**21 - 1, 2**21, 2**35, 2**56 - 1, 2**56,
         2**63 - 1, 2**63, 2**64 - 1]


def test_varints_match_the_protobuf_encoding_at_every_byte_boundary() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([np.array(EDGES, np.uint64),
                             rng.integers(0, 2**63, 500, dtype=np.uint64)])
    encoded = mvt.varints(values)
    assert encoded.tobytes() == b"".join(python_varint(int(v)) for v in values)
    for i, v in enumerate(values):
        assert bytes(encoded.data[encoded.offsets[i]:encoded.offsets[i + 1]]) == \
            python_varint(int(v))
    grouped = mvt.varints(values, np.array([0, 3, 3, len(values)]))  # an empty group too
    assert grouped.lengths.tolist() == [sum(len(python_varint(int(v))) for v in part)
                                        for part in (values[:3], [], values[3:])]
    assert mvt.varints(np.array([], np.uint64)).tobytes() == b""
    for v in EDGES:
        assert mvt._varint(v) == python_varint(v)


def test_integer_value_fields_match_the_protobuf_encoding() -> None:
    """A tile's integer values as `values` fields: tag 4, length, Value.sint_value (zigzag)."""
    rng = np.random.default_rng(8)
    for ints in (np.array([0, -1, 1, 63, -64, 64, -65, 2**62, -2**63, 2**63 - 1]),
                 rng.integers(-2**40, 2**40, 300), rng.integers(0, 100, 50),
                 np.array([], np.int64)):
        zigzagged = [((int(v) << 1) ^ (int(v) >> 63)) & (2**64 - 1) for v in ints]
        assert mvt._number_fields(ints) == b"".join(
            b"\x22" + bytes([len(python_varint(z)) + 1]) + b"\x30" + python_varint(z)
            for z in zigzagged)


def test_varint_cells_hold_each_rows_present_varints_side_by_side() -> None:
    """Rows of several values (a feature's tags), some left out, at every byte width; cells
    side by side with constant bytes concatenate item by item."""
    rng = np.random.default_rng(9)
    for top in (2, 200, 20_000, 2**30, 2**64 - 1):
        values = rng.integers(0, top, (40, 3), dtype=np.uint64, endpoint=True)
        values[0] = min(top, 127), min(top, 128), top
        present = rng.random((40, 3)) < 0.7
        packed = mvt.beside(b"<", mvt.varint_cells(values, present), b">").ragged()
        for i, (row, keep) in enumerate(zip(values, present, strict=True)):
            item = packed.data[packed.offsets[i]:packed.offsets[i + 1]].tobytes()
            assert item == b"<" + b"".join(python_varint(int(v))
                                           for v, k in zip(row, keep, strict=True) if k) + b">"
    assert mvt.varint_cells(np.empty((0, 2), np.uint64)).ragged().tobytes() == b""


def test_join_puts_constant_and_ragged_parts_item_by_item() -> None:
    words = mvt.Ragged(np.frombuffer(b"abcdef", np.uint8), np.array([0, 2, 2, 6]))
    joined = mvt.join(b"<", words, b"/>", mvt.varints(np.array([1, 300, 2])))
    items = [bytes(joined.data[joined.offsets[i]:joined.offsets[i + 1]]) for i in range(3)]
    assert items == [b"<ab/>\x01", b"</>\xac\x02", b"<cdef/>\x02"]


def decode(layer: bytes) -> list[dict[str, Any]]:
    tile = mapbox_vector_tile.decode(mvt.tile(layer), default_options={"y_coord_down": True})
    return tile["t"]["features"]


def test_points_with_every_attribute_type_and_nulls_decode_as_given() -> None:
    n = 7
    xy = np.array([[0, 0], [1, 2], [4095, 4095], [-10, 5], [100, 4200], [7, 7], [2048, 1]])
    whole = pa.array(["x", "a", "ä – ü", "", None, "a", "zz", "a", "tail"])
    columns: dict[str, Any] = {
        "text": whole.slice(1, n),  # an offset into the buffers
        "ints": pa.array([0, -1, 2**40, None, 5, 5, -(2**40)], pa.int64()),
        "small": pa.array([1, 2, 3, 4, 5, 6, 7], pa.int8()),
        "floats": pa.array([0.5, None, -2.25, 1e300, 0.5, float("inf"), 3.0]),
        "flags": pa.array([True, False, None, True, True, False, False]),
        "day": pa.array([dt.date(2026, 1, 2), None, dt.date(1999, 12, 31), dt.date(2026, 1, 2),
                         None, None, dt.date(2000, 2, 29)]),
        "chunked": pa.chunked_array([["p", "q"], ["p", None, "r", "s", "p"]]),
        "empty": pa.array([None] * n, pa.string()),
    }
    cmd, off = mvt.point_commands(xy)
    ids = np.arange(n) + 10**6
    features = decode(mvt.layer("t", np.full(n, mvt.POINT, np.uint8), cmd, off, columns, ids=ids))
    assert len(features) == n
    for i, f in enumerate(features):
        assert f["id"] == ids[i]
        assert f["geometry"] == {"type": "Point", "coordinates": xy[i].tolist()}
        expected = {}
        for name, column in columns.items():
            value = column[i].as_py()
            if value is not None:
                expected[name] = value.isoformat() if isinstance(value, dt.date) else value
        assert f["properties"] == expected, i


def test_lines_and_polygons_without_attributes() -> None:
    # a line of three points and a square ring (closing point dropped), one feature each
    xy = np.array([[1, 1], [10, 1], [10, 10], [0, 0], [8, 0], [8, 8], [0, 8]], np.int64)
    for kind, counts, closed in ((mvt.LINESTRING, [3], False), (mvt.POLYGON, [4], True)):
        points = xy[:3] if kind == mvt.LINESTRING else xy[3:]
        cmd, off = mvt.path_commands(points, np.array(counts), np.array([0]), 1, closed)
        (feature,) = decode(mvt.layer("t", np.array([kind], np.uint8), cmd, off, {}))
        assert feature["properties"] == {}
        if kind == mvt.LINESTRING:
            assert feature["geometry"] == {"type": "LineString",
                                           "coordinates": [[1, 1], [10, 1], [10, 10]]}
        else:
            assert feature["geometry"]["type"] == "Polygon"
            ring = feature["geometry"]["coordinates"][0]
            assert ring[0] == ring[-1] and sorted(map(tuple, ring[:-1])) == \
                sorted(map(tuple, points.tolist()))


@pytest.mark.parametrize("n", [1, 300])
def test_many_features_keep_their_own_tags(n: int) -> None:
    rng = np.random.default_rng(n)
    names = [f"n{int(v)}" for v in rng.integers(0, 20, n)]
    columns = {"name": pa.array(names), "k": pa.array(rng.integers(-5, 5, n))}
    cmd, off = mvt.point_commands(rng.integers(0, 4096, (n, 2)))
    features = decode(mvt.layer("t", np.full(n, mvt.POINT, np.uint8), cmd, off, columns))
    assert [f["properties"]["name"] for f in features] == names
    assert [f["properties"]["k"] for f in features] == columns["k"].to_pylist()


def test_small_varints_byte_by_byte_match_the_protobuf_encoding() -> None:
    """Values under 2**21 (one to three bytes) take the byte-by-byte path."""
    values = np.array([0, 1, 127, 128, 255, 16383, 16384, 2**21 - 1, 300, 5], np.uint64)
    for part in (values, values[:2], values[:4], np.array([2**21 - 1], np.uint64)):
        assert mvt.varints(part).tobytes() == b"".join(python_varint(int(v)) for v in part)
    grouped = mvt.varints(values, np.array([0, 0, 4, len(values)]))
    assert grouped.lengths.tolist() == [0] + [sum(len(python_varint(int(v))) for v in part)
                                              for part in (values[:4], values[4:])]


def attribute_table(n: int) -> pa.Table:
    """Columns of every kind `mvt.Attributes` tells apart, with nulls where a kind allows."""
    rng = np.random.default_rng(n)
    few = ["Ort A", "Ort B", "ä – ü", ""]
    return pa.table({
        "id": pa.array(rng.permutation(n) * 7 - 3 * n, pa.int64()),  # ints, each once
        "anzahl": pa.array(np.where(np.arange(n) % 10 == 1, 5, rng.permutation(n)),
                           pa.int32()),  # many ints, some twice
        "ort": pa.array([few[i] if i < 4 else None for i in rng.integers(0, 5, n)]),  # few
        "code": pa.array(rng.integers(0, 3, n), pa.int32()),  # few ints
        "wert": pa.array(np.where(rng.random(n) < 0.1, -0.0, rng.normal(size=n))),  # floats
        "name": pa.array([f"n{i}" for i in rng.permutation(n)]),  # many strings
        "zahl": pa.array([None if i % 5 == 0 else i for i in range(n)], pa.int64()),  # nulls
        "flag": pa.array(rng.random(n) < 0.5),
        "tag": pa.array([dt.date(2026, 1, 1 + i % 3) for i in range(n)]),  # dates, few
        "leer": pa.array([None] * n, pa.string()),
        "selten": pa.array([1 if i == 3 else None for i in range(n)], pa.int8()),
    })


@pytest.mark.parametrize("n", [5, 400])
def test_attributes_made_ready_once_give_the_bytes_of_per_tile_encoding(n: int) -> None:
    """A tile's tags from the attributes prepared once per version (`Attributes`: codes into
    values encoded once, numbers de-duplicated by numpy, the rest by Arrow per tile) are the
    bytes of Arrow's dictionary encoding of the tile's rows, for any distinct rows in any
    order; they decode to the rows' values."""
    table = attribute_table(n)
    ready = mvt.Attributes(table, mvt.Attributes.prepare(table))
    if n == 400:  # every kind is met
        assert sorted(set(ready.kinds.tolist())) == [mvt.DICTIONARY, mvt.INTEGERS, mvt.FLOATS,
                                                     mvt.PER_TILE, mvt.UNIQUE_INTEGERS]
    rng = np.random.default_rng(1)
    for rows in (np.arange(n), rng.choice(n, min(n, 60), replace=False), np.array([1, 0]),
                 np.array([3]), np.array([n - 1])):
        chosen = table.take(pa.array(rows))
        columns = dict(zip(chosen.column_names, chosen.columns, strict=True))
        xy = rng.integers(0, 4096, (len(rows), 2))
        cmd, off = mvt.point_commands(xy)
        kinds = np.full(len(rows), mvt.POINT, np.uint8)
        expected = mvt.layer("t", kinds, cmd, off, columns, ids=rows + 1)
        assert mvt.layer("t", kinds, cmd, off, ready.tags(rows), ids=rows + 1) == expected
        for f, row in zip(decode(expected), rows, strict=True):
            assert f["id"] == row + 1
            for name in ("id", "anzahl", "ort", "code", "name", "zahl", "flag"):
                assert f["properties"].get(name) == table.column(name)[int(row)].as_py()
            assert f["properties"]["wert"] == table.column("wert")[int(row)].as_py()


def test_first_seen_gives_the_values_in_the_order_they_first_occur() -> None:
    """A tile's values are de-duplicated in the order they first occur (that of Arrow's
    dictionary encoding): integers and floats, -0.0 and 0.0 as one value, NaN as a value;
    small codes by a table of a slot per code alike."""
    rng = np.random.default_rng(3)
    floats = np.round(rng.normal(size=300), 1)
    floats[[3, 9]], floats[[20, 40]] = (-0.0, 0.0), np.nan
    for values in (rng.integers(0, 5, 1), rng.integers(0, 50, 400), rng.integers(0, 3000, 200),
                   floats):
        found = [mvt._first_seen(values)]
        if values.dtype.kind == "i":  # small codes: by a table of a slot per code too
            found.append(mvt._first_seen_codes(values, np.full(3000, 7, np.int32)))
        expected: list[Any] = []
        for v in values.tolist():
            if not any(v == e or (v != v and e != e) for e in expected):
                expected.append(v)
        for distinct, at in found:
            assert len(distinct) == len(expected)
            assert all(d == e or (d != d and e != e) for d, e in zip(
                distinct.tolist(), expected, strict=True))
            assert np.array_equal(distinct[at], values, equal_nan=True)
