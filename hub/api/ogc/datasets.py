"""Which datasets the store holds and their current versions, re-read only after a change.

Asking the store costs two SQLite connections per request (about 0.6 ms). SQLite's
`PRAGMA data_version`, read on one long-lived connection, changes whenever any other connection
commits; so the listing is rebuilt (through the Store's own API) only when a commit happened —
an ingest, a rollback, a purge — and a new version is served from the next request on.
"""

from __future__ import annotations

import sqlite3
import threading

from hub.store.versions import Dataset, Store, Version


class Current:
    """A cached {name: (dataset, current version)} of the store, exact after every commit."""

    def __init__(self, store: Store):
        self.store = store
        self._reader: sqlite3.Connection | None = None
        self._seen: int | None = None
        self._entries: dict[str, tuple[Dataset, Version]] = {}
        self._lock = threading.Lock()

    def entries(self) -> dict[str, tuple[Dataset, Version]]:
        with self._lock:
            if self._reader is None:
                self._reader = self.store.db.connect_sqlite()
            seen = self._reader.execute("PRAGMA data_version").fetchone()[0]
            if seen != self._seen:
                entries = {}
                for d in self.store.datasets():
                    version = self.store.current(d.name) if d.current_version else None
                    if version is not None:
                        entries[d.name] = (d, version)
                self._entries, self._seen = entries, seen
            return self._entries
