"""Evaluate a CQL2 tree (`cql2.parse`) over a layer in memory: Arrow compute, no SQL.

Literals are passed to the kernels as typed scalars, so no value is ever interpreted as code.
Comparisons follow SQL's three-valued logic: a comparison with a missing value is unknown,
`NOT unknown` is unknown, and unknown rows do not match. The conjuncts of a top-level `AND` are
applied one after the other to the shrinking row set, spatial ones first (they use the grid
index); everything else is one vectorised pass over the remaining rows. A `Deadline` is
checked before each condition, so a long evaluation stops between two of them.

`weight(tree)` estimates a tree's cost per row in row-conditions (a comparison is 1, `LIKE` 10
as it scans text, `CASEI` adds the lower-casing), for the cost estimate made before evaluating.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from hub.api.ogc.cql2 import And, Between, Compare, Const, In, Intersects, IsNull, Like, Not, Or

if TYPE_CHECKING:
    from hub.api.ogc.layer import Layer
    from hub.api.ogc.work import Deadline

WEIGHTS = {Compare: 1, IsNull: 1, Between: 2, In: 2, Like: 10, Intersects: 5}
CASEI_WEIGHT = 5  # utf8_lower of the column (and a regex for LIKE)
KERNELS = {"=": pc.equal, "<>": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
           ">": pc.greater, ">=": pc.greater_equal}


def weight(tree: Any) -> int:
    """Estimated cost per row of evaluating `tree`, in row-conditions."""
    if isinstance(tree, And | Or):
        return sum(weight(p) for p in tree.parts)
    if isinstance(tree, Not):
        return weight(tree.part)
    if isinstance(tree, Const):
        return 0
    return WEIGHTS[type(tree)] + (CASEI_WEIGHT if getattr(tree, "casei", False) else 0)


def select(tree: Any, layer: Layer, rows: np.ndarray | None,
           deadline: Deadline | None = None) -> np.ndarray:
    """The sorted rows (of `rows`, or of the whole layer when None) where `tree` is true."""
    if isinstance(tree, And):
        for part in sorted(tree.parts, key=lambda p: not isinstance(p, Intersects)):
            rows = select(part, layer, rows, deadline)
            if not len(rows):
                break
        return rows if rows is not None else np.arange(layer.rows)
    if isinstance(tree, Intersects):
        hits = intersecting(tree, layer)
        return hits if rows is None else np.intersect1d(rows, hits, assume_unique=True)
    keep = pc.fill_null(truth(tree, layer, rows, deadline), False).to_numpy(zero_copy_only=False)
    return np.flatnonzero(keep) if rows is None else rows[keep]


def intersecting(node: Intersects, layer: Layer) -> np.ndarray:
    """Sorted rows whose geometry intersects the literal of an S_INTERSECTS."""
    if node.area is not None:
        return layer.in_area(node.area)
    return layer.in_geometry(shapely.from_wkb(node.wkb), node.crs)


def truth(tree: Any, layer: Layer, rows: np.ndarray | None,
          deadline: Deadline | None = None) -> pa.Array:
    """Per row (of `rows`, or all): true, false or null (unknown)."""
    if deadline is not None:
        deadline.check()
    size = layer.rows if rows is None else len(rows)
    if isinstance(tree, And | Or):
        combine = pc.and_kleene if isinstance(tree, And) else pc.or_kleene
        result = truth(tree.parts[0], layer, rows, deadline)
        for part in tree.parts[1:]:
            result = combine(result, truth(part, layer, rows, deadline))
        return result
    if isinstance(tree, Not):
        return pc.invert(truth(tree.part, layer, rows, deadline))
    if isinstance(tree, Const):
        return pa.array(np.full(size, tree.value))
    if isinstance(tree, Intersects):
        hits = intersecting(tree, layer)
        if rows is None:
            mask = np.zeros(size, bool)
            mask[hits] = True
            return pa.array(mask)
        return pa.array(np.isin(rows, hits, assume_unique=True))
    if isinstance(tree, IsNull):
        return pc.is_null(_column(layer, tree.prop, rows))
    column = _column(layer, tree.prop, rows)
    if isinstance(tree, Compare):
        value = tree.value
        if tree.casei:
            column, value = pc.utf8_lower(column), value.lower()
        return KERNELS[tree.op](column, _scalar(value, column.type))
    if isinstance(tree, Like):
        return pc.match_like(column, tree.pattern, ignore_case=tree.casei)
    if isinstance(tree, Between):
        return pc.and_kleene(pc.greater_equal(column, _scalar(tree.low, column.type)),
                             pc.less_equal(column, _scalar(tree.high, column.type)))
    if isinstance(tree, In):
        values = tree.values
        if tree.casei:
            column, values = pc.utf8_lower(column), tuple(v.lower() for v in values)
        found = pc.is_in(column, value_set=_values(values, column.type))
        return pc.if_else(pc.is_valid(column), found, pa.scalar(None, pa.bool_()))
    raise TypeError(f"not a CQL2 node: {tree!r}")


def _column(layer: Layer, name: str, rows: np.ndarray | None) -> pa.Array:
    geometry = layer.meta.schema.geometry
    if geometry is not None and name == geometry.name:
        column = layer.geometry if layer.geometry is not None else pa.nulls(layer.rows)
    else:
        column = layer.properties.column(name)
    if rows is not None:
        column = column.take(pa.array(rows))
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column


def _scalar(value: Any, kind: pa.DataType) -> pa.Scalar:
    """A literal as a scalar the kernel compares with `kind` (numbers keep their own type)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return pa.scalar(value).cast(kind)
    return pa.scalar(value, pa.float64() if isinstance(value, float) else pa.int64())


def _values(values: tuple[Any, ...], kind: pa.DataType) -> pa.Array:
    if pa.types.is_integer(kind):
        bounds = np.iinfo(kind.to_pandas_dtype())
        whole = [int(v) for v in values if float(v).is_integer() and bounds.min <= v <= bounds.max]
        return pa.array(whole, kind)  # 3.5 or 2**40 can never equal an int32 value
    if pa.types.is_floating(kind):
        return pa.array([float(v) for v in values], kind)
    return pa.array(list(values)).cast(kind)
