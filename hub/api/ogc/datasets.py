"""Which datasets the store holds and their current versions, re-read only after a change.

Asking the store costs two queries per request. The database's mark (`Database.mark`: SQLite's
`PRAGMA data_version`, PostgreSQL's snapshot) changes whenever anything commits; so the
listing is rebuilt (through the Store's own API) only when a commit happened — an ingest, a
rollback, a purge — and a new version is served from the next request on.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from hub.store.versions import Dataset, Store, Version


class Current:
    """A cached {name: (dataset, current version)} of the store, exact after every commit."""

    def __init__(self, store: Store):
        self.store = store
        self._seen: Hashable = None
        self._entries: dict[str, tuple[Dataset, Version]] = {}
        self._lock = threading.Lock()

    def entries(self) -> dict[str, tuple[Dataset, Version]]:
        with self._lock:
            seen = self.store.db.mark()
            if seen != self._seen:
                entries = {}
                for d in self.store.datasets():
                    version = self.store.current(d.name) if d.current_version else None
                    if version is not None:
                        entries[d.name] = (d, version)
                self._entries, self._seen = entries, seen
            return self._entries
