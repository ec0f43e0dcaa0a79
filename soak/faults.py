"""Faults made on purpose, shared by the fast fault tests (tests/) and the long soak (`make soak`).

A `hub` command in a process of its own (so it can be killed), SIGKILL at a named fault point
(`HUB_FAULT_POINT`, see hub/store/faults.py), a server that is killed and started again on the
same port, damaged files, a full disk (a size-limited tmpfs), and a download cut off part-way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from bench._serve import HubServer  # a server that can be killed and started again
from hub.store.faults import wait_stopped

#: the named fault points an ingest meets, in order (hub/store/faults.py)
INGEST_POINTS = ("first-batch-staged", "version-renamed", "committed")
#: the named fault point a server meets while building an export
SERVER_POINTS = ("export-written",)
#: lon/lat bbox of the test district (Elbe-Elster)
DISTRICT_BBOX = (13.05, 51.368, 13.89, 51.884)
_HUB = "import sys; from hub.cli import app; sys.exit(app())"


class MountDenied(RuntimeError):
    """A size-limited filesystem cannot be mounted here (needs root or CAP_SYS_ADMIN)."""


# -- hub commands in processes of their own -----------------------------------------------------

def hub_process(root: Path, store: Path, *args: str, log: Path | None = None,
                **env: str) -> subprocess.Popen[bytes]:
    """`hub ARGS --root ROOT --store STORE` started in a child process, its output piped (or
    appended to `log`: a long-running server would block on a full pipe); `env` is added to
    the environment (e.g. HUB_FAULT_POINT=...)."""
    environment = {k: v for k, v in os.environ.items() if k != "HUB_BASE_URL"} | env
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(log, "ab")) if log else subprocess.PIPE
        return subprocess.Popen([sys.executable, "-c", _HUB, *args, "--root", str(root),
                                 "--store", str(store)],
                                stdout=out, stderr=subprocess.STDOUT, env=environment)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL `process` (stopped or running) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def kill_at(process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Wait until `process` stops itself at its fault point, then SIGKILL it there."""
    wait_stopped(process.pid, timeout)
    kill(process)


def output(process: subprocess.Popen[bytes], timeout: float = 300.0) -> str:
    """The whole output of a finished `hub_process`, whitespace flattened."""
    out, _ = process.communicate(timeout=timeout)
    return " ".join(out.decode(errors="replace").split())


# -- downloads cut off part-way ------------------------------------------------------------------

class Cut:
    """What a client received of a download during which the server was killed."""

    def __init__(self, body: bytes, error: Exception | None, headers: httpx.Headers):
        self.body, self.error, self.headers = body, error, headers

    @property
    def framing(self) -> str:
        """How the end of the body is marked: 'length' (Content-Length) or 'chunked'."""
        if "content-length" in self.headers:
            return "length"
        assert self.headers.get("transfer-encoding") == "chunked", self.headers
        return "chunked"


def cut_download(url: str, server: HubServer, after: int) -> Cut:
    """Download `url`, SIGKILL the server once `after` bytes have arrived and read on: a
    transfer the server could not finish must end in an error, never look complete."""
    received = bytearray()
    error: Exception | None = None
    # identity: the bytes on the wire are the file's, so the framing is checked directly
    with httpx.stream("GET", url, headers={"Accept-Encoding": "identity"},
                      timeout=60) as response:
        assert response.status_code == 200, (url, response.status_code)
        headers = response.headers
        try:
            for chunk in response.iter_raw(16_384):
                received += chunk
                if len(received) >= after and server.process is not None \
                        and server.process.poll() is None:
                    server.kill()
        except httpx.TransportError as exc:  # incomplete chunked read / short body
            error = exc
    return Cut(bytes(received), error, headers)


# -- damaged files and full disks ----------------------------------------------------------------

def flip_bytes(path: Path) -> None:
    """Damage a data page in the middle of a file (the footer stays readable)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    """Cut off the end of a file, footer included (a copy or a disk write that stopped)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of `size` (e.g. "2m") mounted at `path`: a real disk that can fill up.
    Raises MountDenied where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise MountDenied(f"cannot mount a size-limited tmpfs at {path}: {exc}") from exc
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def resize(path: Path, size: str) -> None:
    """Give the tmpfs mounted at `path` a new size (smaller than in use fails)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True,
                   capture_output=True, timeout=30)


def used_kib(path: Path) -> int:
    """KiB in use on the filesystem holding `path`."""
    stat = os.statvfs(path)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize // 1024


# -- source data ---------------------------------------------------------------------------------

def write_points(path: Path, n: int, seed: int,
                 bbox: tuple[float, float, float, float] = DISTRICT_BBOX) -> None:
    """A UTF-8 CSV `id,wert,lon,lat` of `n` points in `bbox` (ids P<seed>-<i>)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bbox
    lon, lat = rng.uniform(x0, x1, n).round(6), rng.uniform(y0, y1, n).round(6)
    wert = rng.uniform(0, 100, n).round(2)
    lines = [f"P{seed}-{i},{w:.2f},{a},{b}" for i, (w, a, b) in
             enumerate(zip(wert.tolist(), lon.tolist(), lat.tolist(), strict=True))]
    path.write_text("id,wert,lon,lat\n" + "\n".join(lines) + "\n", encoding="utf-8")
