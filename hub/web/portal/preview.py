"""The first rows of a dataset's current version, as a table preview (attributes only: the
geometry is shown on maps, not as WKB)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from hub.store.geoparquet import GEOMETRY_COLUMN
from hub.store.versions import Store, Version

ROWS = 10
COLUMNS = 12  # a wider table is cut (the downloads have every column)
HIDDEN = {GEOMETRY_COLUMN, "bbox"}
KEPT = 64  # previews kept (a version never changes, so a kept one stays right)


@dataclass
class Preview:
    columns: list[str]
    rows: list[list[str]]
    more_columns: int  # how many columns were left out


class Previews:
    """The previews of recently shown versions, by dataset, version and checksum."""

    def __init__(self, store: Store):
        self.store = store
        self._kept: OrderedDict[tuple[str, int, str], Preview] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, version: Version) -> Preview:
        key = (version.dataset, version.version, version.checksum)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        preview = first_rows(self.store, version)
        with self._lock:
            self._kept[key] = preview
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return preview


def first_rows(store: Store, version: Version) -> Preview:
    """Reads one small batch of the version's file (checked by `store.reading`)."""
    store.ensure_sound(version)
    with store.reading(version):
        parquet = pq.ParquetFile(version.source())
        names = [f.name for f in parquet.schema_arrow
                 if f.name not in HIDDEN and not pa.types.is_binary(f.type)
                 and not pa.types.is_large_binary(f.type)]
        shown = names[:COLUMNS]
        batch = next(parquet.iter_batches(batch_size=ROWS, columns=shown), None)
    rows = [] if batch is None else [
        ["" if value is None else str(value) for value in row.values()]
        for row in batch.to_pylist()]
    return Preview(shown, rows, len(names) - len(shown))
