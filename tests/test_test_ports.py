"""The ports the suite's servers take (bench/_serve.py `free_port`): outside the kernel's
ephemeral range, and a block of their own per pytest-xdist process, so two test processes never
start servers on the same port."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import _serve


def ports(monkeypatch: pytest.MonkeyPatch, worker: str | None, n: int) -> list[int]:
    if worker is None:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    return [_serve.free_port() for _ in range(n)]


def test_each_test_process_has_a_block_of_ports_of_its_own(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    blocks = {worker: set(ports(monkeypatch, worker, 50)) for worker in (None, "gw0", "gw1")}
    for taken in blocks.values():
        assert len(taken) == 50  # never the same port twice in a row
        assert all(not low <= port <= high for port in taken)  # no client connection gets it
    assert not blocks[None] & blocks["gw0"] and not blocks["gw0"] & blocks["gw1"]
    assert all(_serve.PORTS_FROM + 2 * _serve.PORTS_PER_PROCESS <= port
               < _serve.PORTS_FROM + 3 * _serve.PORTS_PER_PROCESS for port in blocks["gw1"])
