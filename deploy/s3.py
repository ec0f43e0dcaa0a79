"""An S3 endpoint for the storage-parity tests and the reference deployment on one machine
(deploy/cluster.py): moto's standalone server on 127.0.0.1.

No open-source S3 server that is maintained and packaged for these machines exists (MinIO's
community edition is archived; Garage and SeaweedFS are not packaged), so the tests talk HTTP
to moto's server (`python -m moto.server`), started once per session in a child process on a
free port. The hub talks to it through the plain S3 API only, like to any other S3 store.
Each test takes a bucket of its own (`S3.bucket`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx

KEY_ID, SECRET, REGION = "hubtest", "hubtest-secret", "eu-central-1"


class S3:
    def __init__(self, endpoint: str, pid: int | None = None):
        self.endpoint = endpoint
        self.pid = pid  # moto's server process (for its CPU time: bench/backends.py)
        self._names = itertools.count(1)

    def environment(self) -> dict[str, str]:
        """The AWS_* variables a hub process needs to reach this endpoint."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION}

    def client(self) -> Any:  # boto3 (a dependency of moto), to inspect buckets
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=SECRET, region_name=REGION)

    def bucket(self, name: str = "") -> str:
        """A new, empty bucket (`name`, or one of its own); returns its name."""
        name = name or f"hub-{os.getpid()}-{next(self._names)}"
        self.client().create_bucket(Bucket=name, CreateBucketConfiguration={
            "LocationConstraint": REGION})
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    @classmethod
    @contextlib.contextmanager
    def started(cls, port: int) -> Iterator[S3]:
        # its log (a line per request) goes to a file: a pipe nobody reads fills up after
        # 64 KB and then blocks every request of the server
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                        "-p", str(port)], stdout=subprocess.DEVNULL, stderr=log)
            endpoint = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 60  # a bound against a hang only
                while True:
                    if process.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(
                            f"moto's server did not start: {log.read()[-2000:]!r}")
                    with contextlib.suppress(httpx.TransportError):
                        if httpx.get(f"{endpoint}/moto-api/", timeout=1).status_code < 500:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError("moto's server did not answer within 60 s")
                    time.sleep(0.1)
                yield cls(endpoint, process.pid)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
