"""Sign-in throttling: after `LIMIT` failed attempts within `WINDOW` seconds for one account,
or `CLIENT_LIMIT` for one client address, further attempts are refused until the oldest
failure leaves the window.

Kept in the memory of the server process (so it starts empty after a restart and each
replica counts its own); the addresses are not stored anywhere else.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

LIMIT = 5
CLIENT_LIMIT = 20
WINDOW = 15 * 60.0


class Throttle:
    def __init__(self, limit: int = LIMIT, client_limit: int = CLIENT_LIMIT,
                 window: float = WINDOW):
        self.limits = {"account": limit, "client": client_limit}
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, account: str | None, client: str) -> bool:
        """Are sign-in attempts for `account` (None: not known yet) or from `client` refused
        now?"""
        with self._lock:
            return any(self._recent(kind, key) >= self.limits[kind]
                       for kind, key in _keys(account, client))

    def failed(self, account: str | None, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in _keys(account, client):
                self._failures[key].append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(("account", account.lower()), None)

    def _recent(self, kind: str, key: str) -> int:
        """How many failures of (`kind`, `key`) are within the window (older ones go)."""
        found = self._failures.get((kind, key))
        if found is None:
            return 0
        edge = time.monotonic() - self.window
        while found and found[0] <= edge:
            found.popleft()
        if not found:
            del self._failures[(kind, key)]
        return len(found)


def _keys(account: str | None, client: str) -> list[tuple[str, str]]:
    return [("client", client)] + ([] if account is None else [("account", account.lower())])
