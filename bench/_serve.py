"""`hub serve` in a process of its own (standard library only): `HubServer`, which the tests
(tests/conftest.py `hub_server`), the benchmarks' HTTP cases and the soak (soak/faults.py) use."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bench._harness import ROOT

HUB = "import sys; from hub.cli import app; sys.exit(app())"


# Ports handed out by `free_port`: below the kernel's ephemeral range (32768-60999 by default),
# so no client connection is given one between the check and the server's bind, and in a block
# of its own per pytest-xdist process ("gw0", "gw1", ...), so two test processes never pick the
# same one. Within a block the ports are taken in turn from a start that differs per process.
PORTS_FROM, PORTS_PER_PROCESS = 12000, 1500
_next_port: list[int] = []


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and that this function gives no other caller of
    this process or of another test process soon."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    block = PORTS_FROM + PORTS_PER_PROCESS * (int(worker[2:]) + 1 if worker[2:].isdigit() else 0)
    if not _next_port:
        _next_port.append(os.getpid() % PORTS_PER_PROCESS)
    for _ in range(PORTS_PER_PROCESS):
        port = block + _next_port[0]
        _next_port[0] = (_next_port[0] + 1) % PORTS_PER_PROCESS
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or still waiting out a closed connection
            return port
    raise RuntimeError(f"no free port in {block}-{block + PORTS_PER_PROCESS - 1}")


def wait(port: int, path: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Until `path` answers 200 (fails if the process exits or time runs out)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
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
    """`hub serve` in a process of its own on 127.0.0.1 — the one way the tests, the benchmarks
    and the soak start a server.

        with HubServer(root) as server:      # started and answering, stopped afterwards
            server.url, server.port, server.pid, server.hwm_mib()
        server = HubServer(root, store, port, log=path)
        server.start(HUB_FAULT_POINT="export-written")  # `env` added for this start
        server.kill()                                   # SIGKILL; start() again, same port

    The environment's HUB_BASE_URL is dropped and `env` added. Its output is appended to `log`
    (default: a temporary file — a pipe nobody reads fills up after some hundred requests, and
    the server then hangs writing its access log) and shown when it does not start. It is
    ready when `ready` (a path) answers 200.
    """

    def __init__(self, root: Path, store: Path | None = None, port: int | None = None,
                 log: Path | None = None, ready: str = "/api/3", **env: str):
        self.root, self.store = root, store or root / "store"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log, self.ready, self.env = log, ready, env
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    def start(self, ready: float = 120.0, **env: str) -> HubServer:
        """Start the server and wait until it answers (`ready`: a hang guard, in seconds)."""
        environment = {k: v for k, v in os.environ.items() if k != "HUB_BASE_URL"} \
            | self.env | env
        self._close_output()
        # kept open while the server runs (read back by `output`), closed by stop()
        self._output = open(self.log, "ab") if self.log else tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-c", HUB, "serve", "--port", str(self.port), "--root",
             str(self.root), "--store", str(self.store)],
            stdout=self._output, stderr=subprocess.STDOUT, env=environment)
        try:
            wait(self.port, self.ready, self.process, ready)
        except RuntimeError as exc:
            self.kill()
            raise RuntimeError(f"hub serve on {self.root}: {exc}:\n{self.output()[-2000:]}") \
                from None
        return self

    def output(self) -> str:
        """What the server wrote so far (the last start's, or the whole `log`, also once
        stopped)."""
        if self._output is not None:
            self._output.flush()
        if self.log:
            return self.log.read_text(errors="replace") if self.log.exists() else ""
        if self._output is None:
            return ""
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)

    def stop(self) -> None:
        """The ordinary way: SIGTERM, then wait (SIGKILL after 20 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_output()

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def hwm_mib(self) -> float:
        """The server's peak resident memory so far (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")


def hub_run(*args: str) -> None:
    """`hub ARGS` in a child process; a failure raises with the tail of its output."""
    done = subprocess.run([sys.executable, "-c", HUB, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, check=False)
    if done.returncode:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        raise RuntimeError(f"hub {' '.join(args)} failed:\n{tail}")


def demo_project(root: Path, extend: Callable[[Path], None] | None = None) -> Path:
    """The demo district as `make demo` leaves it, in `root`, made once (a READY mark): the
    repository's content copied, the data generated, every pipeline ingested, the catalog
    loaded and the inventory imported. `extend(root)` adds a benchmark's own pipelines and
    data before the ingest."""
    if (root / "READY").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for part in ("pipelines", "schemas", "catalog"):
        shutil.copytree(ROOT / part, root / part,  # code stays in the repository
                        ignore=shutil.ignore_patterns("generated", "__pycache__", "*.py"))
    generated = subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "generate_demo_data.py"), "--out",
         str(root / "pipelines" / "data" / "generated")],
        capture_output=True, text=True, timeout=900, check=False)
    if generated.returncode:
        raise RuntimeError(f"generate_demo_data.py failed:\n{generated.stderr[-2000:]}")
    if extend is not None:
        extend(root)
    where = ("--root", str(root), "--store", str(root / "store"))
    hub_run("ingest", "--all", *where)
    hub_run("catalog", "load", *where)
    hub_run("catalog", "import", str(root / "catalog" / "inventory" / "dateninventur.csv"),
            "--apply", *where)
    (root / "READY").write_text("ok")
    return root
