"""Where the store's files live: a local folder (the default) or S3-compatible object storage.

    files = for_store(Path("store"))            # HUB_STORAGE_URL unset: the store folder
    files = for_store(root, "s3://bucket/hub")  # objects under s3://bucket/hub/

Keys are relative POSIX paths (`data/<dataset>/v<N>/data.parquet`), the same on both. Files
are immutable once published; the database decides which of them exist for readers (a version
is current once its row is committed), so a crash leaves at most objects no row refers to, which
the next writer of that dataset (and `hub check`) removes.

Whatever is not a finished, immutable file stays in the local store folder on every storage:
the default SQLite database (and its writer locks, see hub.db.locks), staging folders of runs in
progress, and (with S3) the local copies of exports a replica serves with HTTP ranges.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import pyarrow as pa

from hub.errors import StoreError

if TYPE_CHECKING:
    import duckdb  # imported where a connection is made, not with the store

URL_VARIABLE = "HUB_STORAGE_URL"


class Storage(Protocol):
    """What the store needs from the place its files live."""

    url: str  # where, for messages and `hub info` (no credentials)

    def publish(self, folder: Path, key: str) -> None:
        """Put the finished files of a local `folder` under `key`; the folder is consumed."""

    def put(self, path: Path, key: str) -> None:
        """Put one finished local file at `key` (whole or not at all)."""

    def fetch(self, key: str, path: Path) -> bool:
        """Make `path` a local copy of `key` (kept when it is newer than the file and as
        large); False when there is no such file."""

    def source(self, key: str) -> str | pa.NativeFile:
        """The file for pyarrow readers: random access (row groups, footer) by ranges."""

    def open(self, key: str) -> BinaryIO:
        """The file as a stream (for hashing)."""

    def exists(self, key: str) -> bool: ...

    def reachable(self) -> None:
        """Raise StoreError unless the storage answers (one cheap look-up: /ready)."""

    def children(self, key: str) -> list[str]:
        """Names directly under the folder `key` (empty when there is none)."""

    def delete(self, key: str) -> None:
        """Remove the file `key`, or everything under the folder `key`."""

    def location(self, key: str) -> str:
        """A path or URL DuckDB's read_parquet reads (see `prepare`)."""

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make a DuckDB connection able to read `location`s (extensions, credentials)."""


def for_store(root: Path, url: str | None = None) -> Storage:
    """The storage of the store at `root`: `url` or HUB_STORAGE_URL, else the folder itself."""
    url = url if url is not None else os.environ.get(URL_VARIABLE, "")
    if not url:
        from hub.storage.local import LocalStorage

        return LocalStorage(root)
    if url.startswith("s3://"):
        from hub.storage.s3 import S3Storage

        return S3Storage(url)
    raise StoreError(f"{URL_VARIABLE}={url!r}: use s3://<bucket>/<prefix>, or leave it unset "
                     "to keep the files in the store folder")


def mirror(files: Storage, key: str, folder: Path) -> list[str]:
    """Make the local `folder` a copy of the files directly under the folder `key` of the
    storage: fetch what is missing or older, remove what the storage no longer holds (on the
    store folder's own storage, where `folder` is that folder, nothing changes). Returns the
    names of the files."""
    names = [name for name in files.children(key) if files.fetch(f"{key}/{name}", folder / name)]
    if folder.is_dir():
        for stale in folder.iterdir():
            if stale.is_file() and stale.name not in names:
                stale.unlink()
    return names
