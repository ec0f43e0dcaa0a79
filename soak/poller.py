"""Readers that keep asking the server while the soak makes its faults."""

from __future__ import annotations

import threading
import time

import httpx


class Poller(threading.Thread):
    """Asks `/api/datasets/<name>` for each name in turn until stopped, and remembers each
    answer (name, version, rows, checksum). A failed request counts as a failure
    unless the server was being killed (`down`) or the dataset was being damaged (`skip`)."""

    def __init__(self, url: str, names: list[str]):
        super().__init__(daemon=True)
        self.url, self.names = url, names
        self.answers: list[tuple[str, int, int, str]] = []
        self.errors: list[str] = []
        self.requests = 0
        self.refused = 0  # failed while the server was down, as expected
        self.down = threading.Event()
        self.skip: set[str] = set()
        self.halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        client = httpx.Client(base_url=self.url, timeout=60)
        try:
            while not self.halt.is_set():
                for name in self.names:
                    if name not in self.skip:
                        client = self._ask(client, name)
                time.sleep(0.02)
        finally:
            client.close()

    def _ask(self, client: httpx.Client, name: str, again: bool = True) -> httpx.Client:
        down = self.down.is_set()
        try:
            response = client.get(f"/api/datasets/{name}")
        except httpx.TransportError as exc:
            if down or self.down.is_set():
                self.refused += 1
                time.sleep(0.05)
            elif again:  # a kept-alive connection to a server since restarted: ask anew
                client.close()
                return self._ask(httpx.Client(base_url=self.url, timeout=60), name, False)
            else:
                self._error(f"GET /api/datasets/{name}: {exc!r} while the server was up")
            return client
        self.requests += 1
        if response.status_code != 200:
            if name not in self.skip:
                self._error(f"GET /api/datasets/{name}: {response.status_code} "
                            f"{response.text[:200]}")
            return client
        body = response.json()
        with self._lock:
            self.answers.append((name, body["version"], body["rows"], body["checksum"]))
        return client

    def _error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def take(self) -> tuple[list[tuple[str, int, int, str]], list[str]]:
        """The answers and errors so far, handed over once."""
        with self._lock:
            answers, self.answers = self.answers, []
            errors, self.errors = self.errors, []
        return answers, errors
