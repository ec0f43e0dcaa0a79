"""A version's layer as files mapped into memory, shared by every worker of a replica.

`hub serve --workers N` runs N processes; if each read a version into its own memory, a
replica would hold N copies of every layer. Instead the first worker to need a version writes
its table as an uncompressed Arrow IPC file and its numpy arrays (boxes, grid index) as .npy
files into a folder of the local layer cache, and every worker maps those files: the pages
live once, in the operating system's page cache, and a layer evicted from a worker's cache
costs nothing to map again.

A folder is named by the version and its checksum and carries a manifest, written last, with
the checksum, the format and every file's size; a folder that does not match (another
version's, half-written by a killed worker, truncated) is removed and written again. Folders
are written under a temporary name and renamed into place, so two workers that build the same
version at once never see each other's partial files. Versions are immutable, so a folder is
never changed once it is in place; when a dataset's new version is written, the folders of its
other versions are removed (a worker that still maps one keeps its pages until it lets go).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hub.store.versions import Version

FORMAT = 1
MANIFEST = "manifest.json"
TABLE = "table.arrow"
STALE_SECONDS = 3600.0  # a build this old was left by a worker that died


@dataclass(frozen=True)
class Files:
    """What a folder holds: the table, named arrays and small facts (JSON values)."""

    table: pa.Table
    arrays: dict[str, np.ndarray]
    facts: dict[str, Any]


def folder_of(root: Path, version: Version) -> Path:
    return root / version.dataset / f"v{version.version}-{version.checksum[:16]}"


def ready(root: Path, version: Version) -> bool:
    """Are the version's files in place (`load` checks them)?"""
    return (folder_of(root, version) / MANIFEST).exists()


def load(root: Path, version: Version) -> Files | None:
    """The version's files mapped into memory, or None when there are none that match."""
    where = folder_of(root, version)
    try:
        manifest = json.loads((where / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        _remove(where)  # missing (nothing to remove) or half-written
        return None
    sizes: dict[str, int] = manifest.get("files", {})
    sound = manifest.get("format") == FORMAT and manifest.get("checksum") == version.checksum \
        and TABLE in sizes and all(_size(where / name) == size for name, size in sizes.items())
    if not sound:
        _remove(where)
        return None
    try:
        table = pa.ipc.open_file(pa.memory_map(str(where / TABLE))).read_all()
        arrays = {name.removesuffix(".npy"): np.load(where / name, mmap_mode="r")
                  .view(np.ndarray) for name in sizes if name.endswith(".npy")}
    except (OSError, ValueError, pa.ArrowInvalid):
        _remove(where)
        return None
    return Files(table, arrays, manifest.get("facts", {}))


def save(root: Path, version: Version, files: Files) -> None:
    """Write the version's files (unless another worker was quicker) and remove the folders of
    the dataset's other versions. Raises OSError when the cache folder cannot be written."""
    where = folder_of(root, version)
    where.parent.mkdir(parents=True, exist_ok=True)
    building = where.parent / f".building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    building.mkdir()
    try:
        with pa.OSFile(str(building / TABLE), "wb") as sink, \
                pa.ipc.new_file(sink, files.table.schema) as writer:
            writer.write_table(files.table)
        for name, array in files.arrays.items():
            np.save(building / f"{name}.npy", np.ascontiguousarray(array))
        sizes = {p.name: p.stat().st_size for p in building.iterdir()}
        manifest = {"format": FORMAT, "dataset": version.dataset, "version": version.version,
                    "checksum": version.checksum, "files": sizes, "facts": files.facts}
        (building / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        try:
            building.rename(where)
        except OSError:  # written meanwhile by another worker: theirs is as good
            if not (where / MANIFEST).exists():
                raise
    finally:
        _remove(building)
    for other in where.parent.iterdir():  # other versions, and builds a killed worker left
        if other != where and (not other.name.startswith(".") or _age(other) > STALE_SECONDS):
            _remove(other)


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _remove(where: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(where)
