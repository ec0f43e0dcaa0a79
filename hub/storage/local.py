"""The store's files in its own folder: the default, and what a single machine runs."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from hub.errors import StoreError

if TYPE_CHECKING:
    import duckdb



class LocalStorage:
    """Keys are paths under `root`; publishing a version is renaming its staging folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    def publish(self, folder: Path, key: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            fsync(f)
        os.rename(folder, target)
        fsync(target.parent)

    def put(self, path: Path, key: str) -> None:
        target = self.path(key)
        if path != target:  # a copy under a temporary name, renamed into place
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".put-{os.getpid()}-{target.name}")
            shutil.copyfile(path, tmp)
            fsync(tmp)
            os.replace(tmp, target)

    def fetch(self, key: str, path: Path) -> bool:
        source = self.path(key)
        if path != source:
            shutil.copyfile(source, path)
        return path.exists()

    def source(self, key: str) -> str:
        return str(self.path(key))  # a path: pyarrow may memory-map it

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def reachable(self) -> None:
        if not self.root.is_dir():
            raise StoreError(f"{self.root}: the store folder is missing")

    def children(self, key: str) -> list[str]:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            return sorted(p.name for p in self.path(key).iterdir())
        return []

    def delete(self, key: str) -> None:
        target = self.path(key)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def location(self, key: str) -> str:
        return str(self.path(key))

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Local files need nothing."""


def fsync(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
