"""The reference deployment on one machine: `make cluster` (`python -m deploy.cluster`).

    PostgreSQL 15      a cluster of its own in a temporary folder (deploy/postgres.py)
    S3                 moto's standalone server as the object store (deploy/s3.py)
    3 × hub serve      replicas on ports of their own, each with its own local folder
    1 × hub worker     takes the jobs (pipeline runs) from the queue in PostgreSQL
    haproxy            deploy/haproxy.cfg, checking /ready, in front of the replicas; its admin
                       socket (`show stat`: each replica UP or DOWN) in the temporary folder

Every hub process gets the environment of deploy/hub.env, with the addresses and credentials
of the database and the object store started here. The project (pipelines/, schemas/,
catalog/) is ingested into PostgreSQL + S3 first, as `make ingest` does for one machine. It
runs in the foreground until Ctrl-C (or SIGTERM), then stops everything and removes the
temporary folder. The multi-replica tests (tests/test_replicas.py) run this same `Cluster`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from bench._serve import HUB, HubServer, free_port, wait
from deploy.postgres import Postgres
from deploy.s3 import S3

HERE = Path(__file__).resolve().parent
HAPROXY_CFG = HERE / "haproxy.cfg"
ENV_FILE = HERE / "hub.env"
REPLICAS = 3  # haproxy.cfg names three servers
BUCKET, PREFIX, DATABASE = "hub", "store", "hub"


def environment_file(path: Path = ENV_FILE) -> dict[str, str]:
    """KEY=value lines of a systemd EnvironmentFile (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


class Cluster:
    """The processes of the deployment, started by `Cluster.started`; replicas and workers
    can be killed (SIGKILL) and started again, haproxy's view of them is `servers()`."""

    def __init__(self, root: Path, folder: Path, env: dict[str, str], port: int,
                 worker_options: Sequence[str], replicas: int = REPLICAS, workers: int = 1):
        self.root, self.folder, self.env = root, folder, env
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.socket = folder / "haproxy.sock"
        self.worker_options = list(worker_options)
        self.replicas = [HubServer(root, folder / f"replica-{i}", log=folder / f"replica-{i}.log",
                                   ready="/ready", **env) for i in range(1, replicas + 1)]
        self.worker_count = workers  # started by start()
        self.workers: list[subprocess.Popen[bytes]] = []
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.postgres: Postgres | None = None  # set by started()
        self.s3: S3 | None = None
        self._logs: list[IO[bytes]] = []

    @classmethod
    @contextlib.contextmanager
    def started(cls, root: Path, port: int | None = None, ingest: bool = True,
                worker_options: Sequence[str] = (), replicas: int = REPLICAS,
                workers: int = 1) -> Iterator[Cluster]:
        """Everything started and haproxy answering /ready; stopped and removed afterwards.
        `ingest`: run every pipeline of `root` and load its catalog first; `replicas` (1 to
        3, the servers haproxy.cfg names) and `workers`: how many of each (bench/backends.py
        runs 2 replicas and no worker)."""
        if not 1 <= replicas <= REPLICAS:
            raise ValueError(f"replicas: 1 to {REPLICAS} (haproxy.cfg names {REPLICAS})")
        folder = Path(tempfile.mkdtemp(prefix="hub-cluster-"))
        try:
            with Postgres.started(free_port()) as postgres, S3.started(free_port()) as s3:
                s3.bucket(BUCKET)
                env = environment_file() | s3.environment() | {
                    "HUB_DATABASE_URL": postgres.database(DATABASE),
                    "HUB_STORAGE_URL": f"s3://{BUCKET}/{PREFIX}",
                    "HUB_ROOT": str(root), "HUB_BASE_URL": ""}
                cluster = cls(root, folder, env, port or free_port(), worker_options,
                              replicas, workers)
                cluster.postgres, cluster.s3 = postgres, s3
                try:
                    if ingest:
                        cluster.ingest()
                    cluster.start()
                    yield cluster
                finally:
                    cluster.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def hub(self, *args: str, store: str = "setup") -> None:
        """`hub ARGS` with the deployment's environment; a failure raises with its output."""
        done = subprocess.run([sys.executable, "-c", HUB, *args, "--root", str(self.root),
                               "--store", str(self.folder / store)],
                              env=os.environ | self.env, capture_output=True, text=True,
                              check=False)
        if done.returncode:
            raise RuntimeError(f"hub {' '.join(args)}: {(done.stderr or done.stdout)[-2000:]}")

    def ingest(self) -> None:
        """Every pipeline into PostgreSQL + S3, the catalog loaded (as `make ingest`)."""
        self.hub("ingest", "--all")
        self.hub("catalog", "load")
        inventory = self.root / "catalog" / "inventory" / "dateninventur.csv"
        if inventory.exists():
            self.hub("catalog", "import", str(inventory), "--apply")

    def start(self) -> None:
        with ThreadPoolExecutor(len(self.replicas)) as pool:  # side by side: faster
            list(pool.map(HubServer.start, self.replicas))
        for _ in range(self.worker_count):
            self.start_worker()
        self.start_haproxy()

    def start_worker(self) -> subprocess.Popen[bytes]:
        number = len(self.workers) + 1
        log = open(self.folder / f"worker-{number}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        worker = subprocess.Popen(
            [sys.executable, "-c", HUB, "worker", *self.worker_options, "--root",
             str(self.root), "--store", str(self.folder / f"worker-{number}")],
            env=os.environ | self.env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(worker)
        return worker

    def start_haproxy(self) -> None:
        env = os.environ | {"HUB_LB_BIND": f"127.0.0.1:{self.port}",
                            "HUB_LB_SOCKET": str(self.socket)} | {
            f"HUB_REPLICA_{i}": f"127.0.0.1:{r.port}" for i, r in enumerate(self.replicas, 1)}
        log = open(self.folder / "haproxy.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        config = haproxy_config(len(self.replicas), self.folder)
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)], env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        wait(self.port, "/ready", self.haproxy, 60)  # a bound against a hang only

    @staticmethod
    def server_name(replica: int) -> str:
        """haproxy's name of replica number `replica` (0-based, as in `replicas`)."""
        return f"replica{replica + 1}"

    def admin(self, command: str) -> str:
        """The answer of haproxy's admin socket to `command` (e.g. "show sess all")."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as admin:
            admin.settimeout(10)
            admin.connect(str(self.socket))
            admin.sendall(command.encode() + b"\n")
            return b"".join(iter(lambda: admin.recv(65536), b"")).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """haproxy's statistics of the backend (`show stat`): a row per server by name, and
        "BACKEND"; e.g. status ("UP", "DOWN", "UP 1/2" while going down), stot (requests sent
        to it), wretr and wredis (retries, redispatches), chkdown (times taken out)."""
        rows = csv.DictReader(self.admin("show stat").removeprefix("# ").splitlines())
        return {row["svname"]: row for row in rows if row["pxname"] == "replicas"}

    def kill_replica(self, replica: HubServer) -> None:
        """SIGKILL to a replica and its worker processes (`HUB_WORKERS`), as in a crash: the
        supervising process first, so it forks no replacement."""
        workers = _children(replica.pid)
        replica.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """haproxy, the replicas (SIGTERM: they drain), the workers (their job finished)."""
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=30)
        with ThreadPoolExecutor(len(self.replicas)) as pool:  # each drains: side by side
            list(pool.map(HubServer.stop, self.replicas))
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for log in self._logs:
            log.close()


def _children(pid: int) -> list[int]:
    """The processes `pid` started (Linux: /proc)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def haproxy_config(replicas: int, folder: Path) -> Path:
    """deploy/haproxy.cfg itself for all replicas; for fewer, a copy in `folder` without the
    `server replicaN` lines of those not started (an address left empty does not parse)."""
    if replicas == REPLICAS:
        return HAPROXY_CFG
    unused = tuple(f"server replica{i} " for i in range(replicas + 1, REPLICAS + 1))
    lines = HAPROXY_CFG.read_text(encoding="utf-8").splitlines(keepends=True)
    copy = folder / "haproxy.cfg"
    copy.write_text("".join(line for line in lines if not line.strip().startswith(unused)),
                    encoding="utf-8")
    return copy


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="the project (pipelines/, schemas/, catalog/); default: here")
    parser.add_argument("--port", type=int, default=8000, help="haproxy's port on 127.0.0.1")
    args = parser.parse_args(argv)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("Starting PostgreSQL, the S3 endpoint, ingesting the project …", flush=True)
    with Cluster.started(args.root.resolve(), args.port) as cluster:
        print(f"Serving on {cluster.url} (haproxy) from {REPLICAS} replicas:", flush=True)
        for i, replica in enumerate(cluster.replicas, 1):
            print(f"  replica {i}: {replica.url} (folder {replica.store})", flush=True)
        print(f"haproxy's admin socket: {cluster.socket} (e.g. show stat)", flush=True)
        print(f"Logs in {cluster.folder}. Ctrl-C stops everything.", flush=True)
        while not stopping:
            time.sleep(0.2)
        print("Stopping …", flush=True)


if __name__ == "__main__":
    main()
