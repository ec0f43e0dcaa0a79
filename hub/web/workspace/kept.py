"""What a workspace page derives from the whole catalog (the dashboard's rows and tables, the
to-do list's stale datasets, usage, the quarterly report), kept while the database holds the
same data: computed once per change, not once per request.

An answer is kept under the database's mark (`hub.db.Database.mark`: any commit — a record,
a version, an audit entry, saved usage counts, a session's `seen` — changes it and empties
the cache) and a key that names everything else it was made from: always the viewer
(`hub.access.Viewer`, what decides which rows one may see: a kept answer is never shown to
another user), and the day, the language or the period where the answer depends on them.
At most `max_bytes` are kept (each answer weighed by the page that keeps it; the least
recently used go first), reported to `hub.memory`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from hub import memory
from hub.db import Database

T = TypeVar("T")
MAX_BYTES = 4 << 20  # per cache: the dashboard of 90 datasets weighs ~0.2 MB, its HTML 0.1 MB
OVERHEAD = 1024  # bytes counted for a kept answer besides what `weigh` says (key, entry)


class Kept:
    def __init__(self, name: str, weigh: Callable[[Any], int], max_bytes: int = MAX_BYTES):
        """`name`: as `hub.memory.usage` lists it; `weigh`: an answer's bytes."""
        self.weigh, self.max_bytes = weigh, max_bytes
        self._answers: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._mark: Hashable = None
        self._bytes = 0
        self._lock = threading.Lock()
        memory.register(f"workspace: {name}", self)

    def get(self, db: Database, key: Hashable, make: Callable[[], T]) -> T:
        """The answer kept under `key` for the data as it is now, else `make()` kept (call it
        off the event loop: it asks the database for its mark)."""
        mark = db.mark()
        with self._lock:
            if mark != self._mark:
                self._answers.clear()
                self._bytes, self._mark = 0, mark
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
                return found[0]
        value = make()  # reads data at least as new as `mark`: a later commit changes it
        nbytes = self.weigh(value) + OVERHEAD
        with self._lock:
            # not if another thread saw a newer mark meanwhile, nor what would fill the cache
            if mark == self._mark and nbytes <= self.max_bytes:
                old = self._answers.pop(key, None)
                self._bytes += nbytes - (old[1] if old is not None else 0)
                self._answers[key] = (value, nbytes)
                while self._bytes > self.max_bytes:
                    self._bytes -= self._answers.popitem(last=False)[1][1]
        return value

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._answers)
