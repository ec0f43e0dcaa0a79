"""A version's pre-rendered tiles and its points' tile index in files, written once and mapped
by every worker.

With `hub serve --workers N`, each worker would otherwise render a version's low-zoom tiles
(`hub.api.ogc.prerender`) and hold them in its own tile cache: N copies of the same bytes, and N
times the CPU after every commit. Instead the first worker renders them and writes one file
into the local layer cache folder (`<folder>/tiles/<dataset>/v<N>-<checksum>-e<encoder>-z<top>
.tiles`, next to the mapped layers of `hub.api.ogc.mapped`); every worker maps that file, so the
tiles live once, in the page cache. A lock file (`flock`) lets one worker render while the
others wait for the file; a lock is released when its process dies. The same holds for the
arrays a point layer's tiles are cut from (`hub.api.ogc.tiles.Source`: Web Mercator positions
and sorted Morton codes, 40 bytes per point): `arrays` maps them from a folder of `.npy` files
that `save_arrays` writes once (`<folder>/_tiles/<dataset>/v<N>-<checksum>-e<encoder>.index`).
The folder `_tiles` cannot be a dataset's (their names begin with a letter or digit).

Format: `MAGIC`, the number of tiles (uint32 LE), an index of `INDEX` records (z, x, y, offset,
length), then the tiles' bytes. A file whose size does not add up (cut short by a crash or a
full disk) is removed and written again. Files are written under a temporary name and renamed
into place; writing a version's file removes the files of the dataset's other versions (a
worker that still maps one keeps its pages until it lets go).
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from hub.store.versions import Version

MAGIC = b"HUBTILE1"
INDEX = np.dtype([("z", "<u1"), ("x", "<u4"), ("y", "<u4"), ("offset", "<u8"),
                  ("length", "<u4")])
HEADER = len(MAGIC) + 4
SUFFIX = ".tiles"


def path_of(folder: Path, version: Version, encoder: str, top: int) -> Path:
    return folder / "_tiles" / version.dataset / f"{_prefix(version)}e{encoder}-z{top}{SUFFIX}"


def index_of(folder: Path, version: Version, encoder: str, kind: str = "index") -> Path:
    """The folder of a version's arrays of one kind (`index`: the points' tile index;
    `values`: the attributes made ready for encoding, `hub.api.ogc.mvt.Attributes`)."""
    return folder / "_tiles" / version.dataset / f"{_prefix(version)}e{encoder}.{kind}"


def _prefix(version: Version) -> str:
    return f"v{version.version}-{version.checksum[:16]}-"


class TileFile:
    """The tiles of one file, mapped: `get((z, x, y))` gives a tile's bytes (b"": empty)."""

    def __init__(self, path: Path, view: mmap.mmap, index: dict[tuple[int, int, int],
                                                               tuple[int, int]]):
        self.path, self._view, self._index = path, view, index

    @classmethod
    def open(cls, path: Path) -> TileFile | None:
        """The file mapped, or None when there is none or it is damaged (then removed)."""
        try:
            with open(path, "rb") as fh:
                view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # missing, or empty (mmap refuses length 0)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        index = _index(view)
        if index is None:
            view.close()
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return cls(path, view, index)

    def get(self, tile: tuple[int, int, int]) -> bytes | None:
        found = self._index.get(tile)
        if found is None:
            return None
        offset, length = found
        return self._view[offset:offset + length]

    def __len__(self) -> int:
        return len(self._index)

    @property
    def nbytes(self) -> int:
        return len(self._view)


def _index(view: mmap.mmap) -> dict[tuple[int, int, int], tuple[int, int]] | None:
    if len(view) < HEADER or view[:len(MAGIC)] != MAGIC:
        return None
    count = int.from_bytes(view[len(MAGIC):HEADER], "little")
    start = HEADER + count * INDEX.itemsize
    if len(view) < start:
        return None
    records = np.frombuffer(view, INDEX, count, HEADER)
    if start + int(records["length"].sum(dtype=np.uint64)) != len(view):
        return None
    return {(int(r["z"]), int(r["x"]), int(r["y"])): (int(r["offset"]), int(r["length"]))
            for r in records}


def write(path: Path, tiles: Mapping[tuple[int, int, int], bytes]) -> None:
    """Write `tiles` to `path` (under a temporary name, renamed into place) and remove the
    dataset's other versions' files."""
    records = np.zeros(len(tiles), INDEX)
    offset = HEADER + len(tiles) * INDEX.itemsize
    for record, ((z, x, y), data) in zip(records, tiles.items(), strict=True):
        record["z"], record["x"], record["y"] = z, x, y
        record["offset"], record["length"] = offset, len(data)
        offset += len(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as fh:
            fh.write(MAGIC + len(tiles).to_bytes(4, "little"))
            fh.write(records.tobytes())
            for data in tiles.values():
                fh.write(data)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _remove_other_versions(path)


def arrays(where: Path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays of a folder `save_arrays` wrote, mapped (None: there is none)."""
    try:
        return {name: np.load(where / f"{name}.npy", mmap_mode="r").view(np.ndarray)
                for name in names}
    except (OSError, ValueError):
        return None


def save_arrays(where: Path, found: Mapping[str, np.ndarray]) -> None:
    """Write the arrays as `.npy` files into the folder `where` (a temporary one renamed into
    place) and remove the dataset's other versions' files."""
    where.parent.mkdir(parents=True, exist_ok=True)
    temporary = where.with_name(f"{where.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.mkdir()
        for name, array in found.items():
            np.save(temporary / f"{name}.npy", array)
        os.rename(temporary, where)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    _remove_other_versions(where)


def _remove_other_versions(path: Path) -> None:
    """Files and folders beside `path` of the dataset's other versions (a worker that still
    maps one keeps its pages until it lets go)."""
    mine = path.name.split("-e", 1)[0] + "-"
    for other in path.parent.iterdir():
        if not other.name.startswith(mine):
            if other.is_dir():
                shutil.rmtree(other, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    other.unlink()


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Held by one process (or thread) at a time per file: the one that renders it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
