"""A server's memory: what each cache holds, what the process uses, and the allocator's settings
for a process that runs for months.

- **Caches** are registered where they are made (`register(name, cache)`: anything with
  `nbytes` and `max_bytes`); `usage()` lists each one's bytes beside its bound, so a long run
  shows which one grows. They are held weakly: a cache that is gone (an app of a test) drops out.
- **The process** (`process()`): RSS, PSS and USS from /proc/self/smaps_rollup. RSS counts the
  pages shared with the other workers (code, mapped layers, pre-rendered tiles) in full, PSS
  shares them out, USS is what this process alone holds.
- **The allocator.** glibc's malloc gives each thread that allocates at the same time as
  another an arena of its own (up to 8 per core) and returns freed memory of an arena only
  from its top. A server with a pool of worker threads (uvicorn's, the OGC pool, the
  pre-rendering) then keeps the peak of every arena: RSS grows from run to run without a cache
  growing. `tune_allocator()` limits the arenas to `HUB_MALLOC_ARENAS` (default 2) and
  `Housekeeper` gives freed pages back (`malloc_trim`) every `TRIM_SECONDS` and after large
  work (`trim()`).
- **The log.** With `HUB_MEMORY_LOG=SECONDS` the housekeeper writes one line
  `hub.memory {json}` (process and caches, as `usage()`) to stderr every SECONDS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from hub.errors import HubError

M_ARENA_MAX = -8  # mallopt's parameter (malloc.h)
ARENAS = 2  # default of HUB_MALLOC_ARENAS
TRIM_SECONDS = 10.0


class MemorySettingError(HubError):
    """A memory setting (HUB_MALLOC_ARENAS, HUB_MEMORY_LOG, a cache's bound) has a value the
    server cannot use."""


_caches: list[tuple[str, weakref.ref[Any], str, str]] = []
_lock = threading.Lock()


def register(name: str, cache: object, nbytes: str = "nbytes",
             max_bytes: str = "max_bytes") -> None:
    """Report `cache` under `name` in `usage()`: its attributes `nbytes` (bytes held) and
    `max_bytes` (its bound); several caches of one name add up."""
    with _lock:
        _caches[:] = [entry for entry in _caches if entry[1]() is not None]
        _caches.append((name, weakref.ref(cache), nbytes, max_bytes))


def caches() -> dict[str, dict[str, int]]:
    """Bytes held and the bound of each registered cache, by name."""
    out: dict[str, dict[str, int]] = {}
    with _lock:
        held = [(name, ref(), nbytes, bound) for name, ref, nbytes, bound in _caches]
    for name, cache, nbytes, bound in held:
        if cache is None:
            continue
        entry = out.setdefault(name, {"bytes": 0, "max_bytes": 0})
        entry["bytes"] += int(getattr(cache, nbytes))
        entry["max_bytes"] += int(getattr(cache, bound))
    return out


def process(pid: int | str = "self") -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of a process in MiB (smaps_rollup)."""
    kib: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                kib[key] = int(parts[0])
    return {"rss_mib": round(kib.get("Rss", 0) / 1024, 1),
            "pss_mib": round(kib.get("Pss", 0) / 1024, 1),
            "uss_mib": round((kib.get("Private_Clean", 0) + kib.get("Private_Dirty", 0)) / 1024,
                             1),
            "anonymous_mib": round(kib.get("Anonymous", 0) / 1024, 1)}


def usage() -> dict[str, Any]:
    """The process's memory and its caches' (see the module's text)."""
    return {"pid": os.getpid(), **process(), "caches": caches()}


# -- the allocator ------------------------------------------------------------------------------

def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


def setting(variable: str, default: float | None, kind: type[int] | type[float] = float,
            zero: bool = False, env: Mapping[str, str] = os.environ) -> float | None:
    """A number from the environment (`default` when unset or empty), or a
    `MemorySettingError` naming the variable unless it is a `kind` above 0 (≥ 0 with `zero`)."""
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not zero):
        raise MemorySettingError(
            f"{variable}={raw!r}: expected a{'' if zero else ' positive'} "
            f"{'whole ' if kind is int else ''}number" + (" (0: none)" if zero else ""))
    return value


def megabytes(variable: str, default: int) -> int:
    """A cache's bound in bytes from a setting in MiB (0: keep nothing)."""
    return int((setting(variable, default, zero=True) or 0) * (1 << 20))


def arenas_from_environment() -> int:
    """HUB_MALLOC_ARENAS (a whole number ≥ 1, default 2)."""
    return int(setting("HUB_MALLOC_ARENAS", ARENAS, int) or ARENAS)


def tune_allocator() -> None:
    """Limit glibc's malloc arenas (HUB_MALLOC_ARENAS) unless MALLOC_ARENA_MAX is set."""
    arenas = arenas_from_environment()
    libc = _libc()
    if libc is not None and "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(M_ARENA_MAX, arenas)


def trim() -> None:
    """Give the heap's free pages back to the system (glibc; elsewhere nothing)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def log_interval() -> float | None:
    """HUB_MEMORY_LOG: seconds between two `hub.memory` lines (unset or empty: none)."""
    return setting("HUB_MEMORY_LOG", None)


class Housekeeper:
    """A daemon thread: `trim()` every `TRIM_SECONDS`, and a `hub.memory` line every
    `log_every` seconds (None: no log)."""

    def __init__(self, log_every: float | None):
        self.log_every = log_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory", daemon=True)

    def start(self) -> Housekeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        every = min(TRIM_SECONDS, self.log_every or TRIM_SECONDS)
        since_trim = since_log = 0.0
        while not self._stop.wait(every):
            since_trim, since_log = since_trim + every, since_log + every
            if since_trim >= TRIM_SECONDS:
                since_trim = 0.0
                trim()
            if self.log_every is not None and since_log >= self.log_every:
                since_log = 0.0
                sys.stderr.write(f"hub.memory {json.dumps(usage(), sort_keys=True)}\n")
                sys.stderr.flush()
