"""Fetching sources to local files: paths and globs here, remote sources in `remote`.

Every source has validators (size and mtime of local files; ETag and Last-Modified of URLs) so
an unchanged source is recognised without reading it, and a content fingerprint.
"""

from __future__ import annotations

import glob
import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import SourceError
from hub.ingest.pipeline import Source
from hub.problem_codes import failing

CHUNK = 1 << 20


@dataclass
class Fetched:
    """A source's local files, its content fingerprint and its HTTP validators."""

    files: list[tuple[Path, str]]  # (local path, name shown to people)
    fingerprint: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    not_modified: bool = False  # the server answered 304 Not Modified


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 30.0
    max_bytes: int = 20 << 30
    page_size: int = 1000
    max_pages: int = 10_000
    # hosts and networks (CIDR) that are not public but may be fetched (HUB_FETCH_ALLOW); any
    # other host whose address is not public is refused (`hub.ingest.remote`)
    allow: tuple[str, ...] = ()


def human_size(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def source_key(source: Source) -> str:
    return hashlib.sha1(json.dumps([source.kind, source.location], sort_keys=True,
                                   default=str).encode()).hexdigest()[:16]


def fetch(source: Source, base: Path, staging: Path, settings: FetchSettings,
          previous: dict[str, Any] | None = None) -> Fetched:
    """Bring one source to local files; `previous` holds the validators of the last run."""
    if source.kind == "path":
        return _local(source.location, base, settings)
    from hub.ingest import remote  # HTTP clients are loaded only for remote sources

    target = staging / "sources" / source_key(source)
    target.mkdir(parents=True, exist_ok=True)
    return remote.fetch(source, target, settings, previous)


def _local(pattern: str, base: Path, settings: FetchSettings) -> Fetched:
    """Local files: their validators are size and modification time, like an HTTP ETag; the
    content hash is computed later (`fingerprint`), while the files are being read."""
    full = pattern if Path(pattern).is_absolute() else str(base / pattern)
    matches = sorted(Path(p) for p in glob.glob(full))
    if not matches:
        raise failing(SourceError(f"{pattern}: no such file (looked in {base})"),
                      "read.missing", file=pattern)
    files, stats = [], []
    for path in matches:
        size = path.stat().st_size if path.is_file() else 0
        if size > settings.max_bytes:
            raise failing(SourceError(f"{path.name}: {human_size(size)} is more than the limit "
                                      f"of {human_size(settings.max_bytes)} "
                                      "(HUB_MAX_SOURCE_BYTES)"), "read.too-large",
                          file=path.name, size=size, limit=settings.max_bytes)
        for member in _members(path):
            st = member.stat()
            stats.append([str(member), st.st_size, st.st_mtime_ns])
        files.append((path, path.name if len(matches) > 1 or not path.is_dir() else pattern))
    return Fetched(files, "", {"files": stats})


def _members(path: Path) -> list[Path]:
    return [m for m in sorted(path.rglob("*")) if m.is_file()] if path.is_dir() else [path]


def fingerprint(files: list[tuple[Path, str]], stop: threading.Event | None = None) -> str:
    """SHA-256 over the files' names and contents; gives up early when `stop` is set."""
    digest = hashlib.sha256()
    for path, _ in files:
        digest.update(path.name.encode())
        for member in _members(path):
            with open(member, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    if stop is not None and stop.is_set():
                        return ""
                    digest.update(chunk)
    return digest.hexdigest()


