"""A real PostgreSQL 15 server (Debian's `postgresql-15`) in a temporary folder: for the
backend-parity tests and the reference deployment on one machine (deploy/cluster.py).

Started once per test session (or per `make cluster`) in a temporary folder: its own cluster
(initdb), a free port, the socket in that folder, no TCP listener. PostgreSQL refuses to run
as root, so as root the server runs as the system user `hubtest` (made with useradd when
absent) through runuser.
Each test takes a fresh database of its own (`Postgres.database`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "hubtest"


class Postgres:
    def __init__(self, folder: Path, port: int, user: str):
        self.folder, self.port, self.user = folder, port, user
        self._names = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        return (f"postgresql+psycopg://{self.user}@/{database}"
                f"?host={self.folder}&port={self.port}")

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=str(self.folder), port=self.port, user=self.user,
                               dbname=database, autocommit=True)

    @property
    def pid(self) -> int:
        """The postmaster's process id (its children are the backends and helpers)."""
        return int((self.folder / "data" / "postmaster.pid").read_text().split("\n", 1)[0])

    def database(self, name: str = "") -> str:
        """A new, empty database (`name`, or one of its own); returns its SQLAlchemy URL."""
        name = name or f"test_{os.getpid()}_{next(self._names)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @classmethod
    @contextlib.contextmanager
    def started(cls, port: int) -> Iterator[Postgres]:
        folder = Path(tempfile.mkdtemp(prefix="hub-postgres-"))
        run_as: list[str] = []
        user = pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            _ensure_user(USER)
            shutil.chown(folder, USER, USER)
            run_as, user = ["runuser", "-u", USER, "--"], USER
        data, log = folder / "data", folder / "server.log"
        try:
            subprocess.run([*run_as, BIN / "initdb", "-D", data, "-U", user, "--auth=trust",
                            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
                           check=True, capture_output=True)
            options = (f"-p {port} -k {folder} -c listen_addresses='' -c fsync=off "
                       "-c max_connections=200")
            subprocess.run([*run_as, BIN / "pg_ctl", "-D", data, "-l", log, "-o", options,
                            "-w", "-t", "60", "start"], check=True, capture_output=True)
        except subprocess.CalledProcessError as exc:
            detail = log.read_text() if log.exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r} {detail}") from None
        try:
            yield cls(folder, port, user)
        finally:
            subprocess.run([*run_as, BIN / "pg_ctl", "-D", data, "-m", "immediate", "-w",
                            "stop"], capture_output=True)
            shutil.rmtree(folder, ignore_errors=True)


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                               "/usr/sbin/nologin", name], capture_output=True)
        if made.returncode not in (0, 9):  # 9: made meanwhile by another test process (xdist)
            made.check_returncode()
