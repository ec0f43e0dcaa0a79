"""Files uploaded as distributions (CKAN's resource uploads), kept beside the store.

A file is received into a staging file (counted and hashed while it streams, refused as soon as
it passes the size limit), and moved to `uploads/<record id>/<distribution id>/<file name>`
only after the catalog has recorded it, so a failed call leaves neither a record pointing at a
missing file nor a replaced file. With S3 storage (hub.storage) the file is put at that key in
the storage too, and the folder is each replica's local copy, fetched when missing or older.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hub.errors import HubError
from hub.storage import Storage

CHUNK = 1 << 20


class UploadTooLarge(HubError):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"File upload too large: the limit is {limit:,} bytes")


@dataclass
class Received:
    staging: Path
    filename: str
    size: int
    sha256: str


def safe_name(filename: str) -> str:
    """A file name that is safe on disk and in URLs (CKAN munges names the same way)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename.replace("\\", "/")).name).strip(".-")
    return name[-100:] or "upload"


class Uploads:
    def __init__(self, store_root: Path, limit: int, files: Storage | None = None):
        """Uploads under `store_root`; `files`: the store's storage (None: that folder)."""
        self.root = Path(store_root) / "uploads"
        self.limit = limit
        self.files = files

    def path(self, record_id: str, dist_id: str, filename: str) -> Path:
        return self.root / safe_name(record_id) / safe_name(dist_id) / safe_name(filename)

    def _key(self, path: Path) -> str:
        return f"uploads/{path.relative_to(self.root).as_posix()}"

    def local(self, record_id: str, dist_id: str, filename: str) -> Path | None:
        """The uploaded file on this machine (fetched from the storage if need be), or None."""
        path = self.path(record_id, dist_id, filename)
        if self.files is not None and self.files.fetch(self._key(path), path):
            return path
        return path if path.is_file() else None

    def receive(self, stream: BinaryIO, filename: str) -> Received:
        staging_dir = self.root / ".staging"
        staging_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=staging_dir)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.limit:
                        raise UploadTooLarge(self.limit)
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Received(Path(tmp), safe_name(filename), size, digest.hexdigest())

    def commit(self, received: Received, record_id: str, dist_id: str) -> Path:
        """Put a received file in place, replacing the distribution's earlier file."""
        target = self.path(record_id, dist_id, received.filename)
        if self.files is not None:
            self.files.delete(self._key(target.parent))  # the earlier file, on any storage
        if target.parent.exists():
            shutil.rmtree(target.parent)
        target.parent.mkdir(parents=True)
        os.replace(received.staging, target)
        if self.files is not None:
            self.files.put(target, self._key(target))  # nothing to do in the store folder
        return target

    @staticmethod
    def discard(received: Received | None) -> None:
        if received is not None:
            received.staging.unlink(missing_ok=True)
