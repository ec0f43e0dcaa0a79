"""`hub serve` in a process of its own, for the HTTP cases (standard library only)."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench._harness import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(port: int, path: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Until `path` answers 200 (fails if the process exits or time runs out)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not answer {path} in {seconds:g} s")


def add_catalog(root: Path) -> None:
    """The catalog production has (the repository's vocabularies and organisations), unless
    the project has one: the server does not start without a catalog (see hub/access.py)."""
    catalog = root / "catalog"
    if (catalog / "organizations.yaml").exists():
        return
    catalog.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "catalog" / "vocabularies", catalog / "vocabularies",
                    dirs_exist_ok=True)
    shutil.copy(ROOT / "catalog" / "organizations.yaml", catalog / "organizations.yaml")


class HubServer:
    """`with HubServer(root) as server:` — `server.port`, `server.pid`, `server.hwm_mib()`."""

    def __init__(self, root: Path, ready: str = "/api/3"):
        self.root, self.ready = root, ready

    def __enter__(self) -> HubServer:
        add_catalog(self.root)
        self.port = free_port()
        code = "import sys; from hub.cli import app; sys.exit(app())"
        env = {k: v for k, v in os.environ.items() if k != "HUB_BASE_URL"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--port", str(self.port), "--root",
             str(self.root), "--store", str(self.root / "store")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        wait(self.port, self.ready, self.process, 60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)

    @property
    def pid(self) -> int:
        return self.process.pid

    def hwm_mib(self) -> float:
        """The server's peak resident memory so far (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")
