"""Is a stored file still the one that was written? Checksums and readable footers.

Every version records the SHA-256 of its data file when it is committed. `problem` compares the
file with that record and opens its Parquet footer (and the GeoParquet `geo` key); it returns
why the file cannot be served, or None. `hub check` runs it over every version; the server runs
it (through `Store.ensure_sound`) the first time a process reads a version in full — loading it
into memory for the OGC API, streaming a download, building an export — and after any error
reading a version; the answer is remembered for the life of the process (files never change).
A damaged version is marked `broken` in the version log and is not served until an operator
repairs it (`hub check` clears the mark when the file is sound again) or rolls back.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from hub.errors import StoreError
from hub.store.geoparquet import GEOMETRY_COLUMN

if TYPE_CHECKING:
    from hub.store.versions import Version

CHUNK = 1 << 20

HINT = "an operator must run `hub check {dataset}` and `hub rollback {dataset} <version>`"


class CorruptVersion(StoreError):
    """A version's file is damaged: its own URLs answer 503, everything else is served."""

    status = 503

    def __init__(self, dataset: str, version: int, reason: str):
        self.dataset, self.version, self.reason = dataset, version, reason
        super().__init__(f"version {version} of {dataset!r} failed its integrity check "
                         f"({reason}); " + HINT.format(dataset=dataset))


def sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _stream_sha256(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    with stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def problem(file: Path | Version, checksum: str) -> str | None:
    """Why a version's data file (in its storage, or a local file) is not the one recorded
    (None when it is sound)."""
    local = isinstance(file, Path)
    name = file.name if isinstance(file, Path) else "data.parquet"
    try:
        if isinstance(file, Path):
            found = sha256(file)
        elif file.files is None or not file.exists():
            return f"{name} is missing"
        else:
            found = _stream_sha256(file.files.open(f"{file.key}/{name}"))
    except FileNotFoundError:
        return f"{name} is missing"
    except OSError as exc:
        return f"{name} cannot be read: {exc.strerror or exc}"
    if found != checksum:
        return f"checksum mismatch: recorded {checksum[:12]}…, file has {found[:12]}…"
    try:
        meta = pq.ParquetFile(file if local else file.source()).metadata
    except (pa.ArrowException, OSError) as exc:
        return f"the Parquet footer cannot be read: {exc}"
    if GEOMETRY_COLUMN in meta.schema.names:
        try:
            geo = json.loads((meta.metadata or {})[b"geo"])
            geo["columns"][geo["primary_column"]]
        except (KeyError, TypeError, ValueError):
            return "the GeoParquet metadata (footer key 'geo') is missing or invalid"
    return None
