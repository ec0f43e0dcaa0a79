"""The store's files in S3-compatible object storage (`HUB_STORAGE_URL=s3://bucket/prefix`).

Written against the plain S3 API only (PUT, ranged GET, HEAD, LIST, DELETE), through pyarrow's
S3 file system — the library the readers use anyway, so Parquet footers and row groups are read
with HTTP range requests and nothing else in between. Any S3-compatible store works (AWS,
Ceph RGW, Garage, a provider's); the tests run against moto's standalone server.

Endpoint, region and credentials come from the standard environment: AWS_ENDPOINT_URL (or
AWS_ENDPOINT_URL_S3), AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN. DuckDB reads the same objects through its httpfs
extension (from the `duckdb-extension-httpfs` package, never downloaded) with a secret made
from the same variables.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast
from urllib.parse import urlparse

import pyarrow as pa
from pyarrow import fs

from hub.errors import StoreError

if TYPE_CHECKING:
    import duckdb

CHUNK = 8 << 20


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to talk S3, from the AWS_* environment."""

    host: str  # host[:port]; empty for AWS itself
    https: bool
    region: str
    key_id: str
    secret: str
    token: str

    @classmethod
    def from_environment(cls) -> Endpoint:
        env = os.environ
        url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
        parsed = urlparse(url) if url else None
        if parsed is not None and (parsed.scheme not in ("http", "https") or not parsed.netloc):
            raise StoreError(f"AWS_ENDPOINT_URL={url!r}: use http(s)://host[:port]")
        return cls(host=parsed.netloc if parsed else "",
                   https=parsed is None or parsed.scheme == "https",
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                   key_id=env.get("AWS_ACCESS_KEY_ID", ""),
                   secret=env.get("AWS_SECRET_ACCESS_KEY", ""),
                   token=env.get("AWS_SESSION_TOKEN", ""))


class S3Storage:
    """Keys are objects under `s3://bucket/prefix/`; a folder is a key prefix."""

    def __init__(self, url: str, endpoint: Endpoint | None = None):
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(f"HUB_STORAGE_URL={url!r}: use s3://<bucket>/<prefix>")
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.endpoint = endpoint or Endpoint.from_environment()
        e = self.endpoint
        self.fs = fs.S3FileSystem(
            access_key=e.key_id or None, secret_key=e.secret or None,
            session_token=e.token or None, region=e.region,
            endpoint_override=e.host or None, scheme="https" if e.https else "http",
            allow_bucket_creation=False, allow_bucket_deletion=False,
            check_directory_existence_before_creation=False)

    def path(self, key: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, key.strip("/")) if p)

    def publish(self, folder: Path, key: str) -> None:
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.put(f, f"{key}/{f.relative_to(folder).as_posix()}")
        import shutil

        shutil.rmtree(folder, ignore_errors=True)

    def put(self, path: Path, key: str) -> None:
        try:  # one PUT (or a multipart upload completed last): the object appears whole
            with open(path, "rb") as local, self.fs.open_output_stream(
                    self.path(key), metadata={"Content-Type": "application/octet-stream"}) as out:
                while chunk := local.read(CHUNK):
                    out.write(chunk)
        except OSError as exc:
            raise StoreError(f"{self.url}: could not write {key}: {exc}") from exc

    def fetch(self, key: str, path: Path) -> bool:
        info = self.fs.get_file_info(self.path(key))
        if info.type != fs.FileType.File:
            return False
        with contextlib.suppress(FileNotFoundError):
            here = path.stat()
            if here.st_size == info.size and info.mtime_ns is not None \
                    and here.st_mtime_ns >= info.mtime_ns:
                return True  # the copy made after the object was last written
        tmp = path.with_name(f".fetch-{os.getpid()}-{path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.fs.open_input_stream(self.path(key)) as remote, open(tmp, "wb") as local:
                while chunk := remote.read(CHUNK):
                    local.write(chunk)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def source(self, key: str) -> pa.NativeFile:
        return self.fs.open_input_file(self.path(key))  # random access: ranged GETs

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, self.fs.open_input_stream(self.path(key)))

    def exists(self, key: str) -> bool:
        return self.fs.get_file_info(self.path(key)).type != fs.FileType.NotFound

    def reachable(self) -> None:
        try:  # one HEAD of the bucket
            found = self.fs.get_file_info(self.bucket).type == fs.FileType.Directory
        except OSError as exc:
            raise StoreError(f"{self.url}: {exc}") from None
        if not found:
            raise StoreError(f"{self.url}: the bucket {self.bucket!r} is missing")

    def children(self, key: str) -> list[str]:
        selector = fs.FileSelector(self.path(key), allow_not_found=True)
        return sorted(Path(i.path).name for i in self.fs.get_file_info(selector))

    def delete(self, key: str) -> None:
        target = self.path(key)
        kind = self.fs.get_file_info(target).type
        if kind == fs.FileType.Directory:
            self.fs.delete_dir(target)
        elif kind == fs.FileType.File:
            self.fs.delete_file(target)

    def location(self, key: str) -> str:
        return f"s3://{self.path(key)}"

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"INSTALL '{_quoted(str(httpfs_extension()))}'")
        con.execute("LOAD httpfs")
        e = self.endpoint
        options = {"KEY_ID": e.key_id, "SECRET": e.secret, "SESSION_TOKEN": e.token,
                   "REGION": e.region, "ENDPOINT": e.host}
        listed = ", ".join(f"{k} '{_quoted(v)}'" for k, v in options.items() if v)
        style = ", URL_STYLE 'path'" if e.host else ""
        con.execute(f"CREATE OR REPLACE SECRET hub_storage (TYPE s3, {listed}{style}, "
                    f"USE_SSL {'true' if e.https else 'false'}, "
                    f"SCOPE 's3://{_quoted(self.bucket)}')")


def httpfs_extension() -> Path:
    """The httpfs extension binary shipped by the PyPI package for this DuckDB version."""
    import duckdb
    import duckdb_extension_httpfs

    base = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    path = base / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if not path.exists():
        raise RuntimeError(f"duckdb-extension-httpfs does not match duckdb {duckdb.__version__}"
                           f" (looked for {path})")
    return path


def _quoted(text: str) -> str:
    return text.replace("'", "''")
