"""Named locks held for as long as a piece of work runs (one writer per dataset, see
hub.store.versions), on whichever database the hub runs on, and released when their holder dies.

    with hold(db, "points") as lock:   # `Taken` at once if someone else holds it
        ...
        lock.check()                    # still held? (before the work's commit)

PostgreSQL (any number of machines): a session-level advisory lock
(`pg_try_advisory_lock(namespace, crc32(name))`) on a connection of its own, opened for the work
and closed after it. The server releases the lock when that session ends, so a holder that is
killed (SIGKILL, power cut, a machine that is gone) frees it as soon as the server notices the
connection is gone: at once for a process on a live machine, whose kernel closes the socket;
within TCP keepalive for a machine that vanished. The lock lives on the server, not in any
folder, so replicas and CLI runs with folders of their own exclude each other. `check` asks the
lock's session for a sign of life: a session that broke (its lock is gone) raises `Lost`, so a
run that lost its lock does not commit. Session locks need a session: a pooler in transaction
mode (PgBouncer's `pool_mode = transaction`) between the hub and PostgreSQL breaks them; point
HUB_DATABASE_URL at PostgreSQL itself or at a pooler in session mode.

SQLite (one machine by definition: an SQLite file must not be shared over a network file system,
so every process using it runs on the machine that holds it): `flock` on a file in the folder
`locks/` beside the database file (the store folder by default). The kernel releases it when
its holder dies, however it dies, and it cannot be lost while the holder lives. Keyed by the
database file, not by a store folder, so two store folders that share one database exclude each
other too. A lease row in the database (owner, expiry, heartbeat) would work as well but would
need a heartbeat thread and an expiry a dead holder's successor has to wait out; the kernel
already does both better on one machine.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import re
import zlib
from collections.abc import Iterator
from typing import Any

from hub.db.database import Database, DatabaseError
from hub.errors import StoreError

NAMESPACE = 0x68756201  # "hub\x01": the first key of the hub's advisory locks (int4)


class Taken(StoreError):
    """Another holder (process, replica, machine) has the lock."""


class Lost(StoreError):
    """The lock's session ended while its holder still worked (PostgreSQL)."""


class Lock:
    """A lock held (see `hold`)."""

    def __init__(self, name: str, connection: Any = None):
        self.name = name
        self._connection = connection  # PostgreSQL: the session that holds it

    def check(self) -> None:
        """Raise `Lost` unless the lock is still held."""
        if self._connection is None:
            return  # flock: held while this process lives
        try:
            self._connection.exec_driver_sql("SELECT 1")
        except DatabaseError as exc:
            raise Lost(f"the lock {self.name!r} was lost: its database session ended "
                       f"({type(exc.__cause__ or exc).__name__})") from None


@contextlib.contextmanager
def hold(db: Database, name: str) -> Iterator[Lock]:
    """Hold the lock `name` for the block; `Taken` at once when another holder has it."""
    if db.is_sqlite:
        with _flock(db, name) as lock:
            yield lock
    else:
        with _advisory(db, name) as lock:
            yield lock


@contextlib.contextmanager
def _advisory(db: Database, name: str) -> Iterator[Lock]:
    key = int.from_bytes(zlib.crc32(name.encode()).to_bytes(4, "big"), "big", signed=True)
    # A connection of its own (the engine does not pool), in autocommit: the lock belongs to
    # the session, not to a transaction, and no transaction stays open while the work runs.
    conn = db.engine.execution_options(isolation_level="AUTOCOMMIT").connect()
    try:
        got = conn.exec_driver_sql("SELECT pg_try_advisory_lock(%s, %s)",
                                   (NAMESPACE, key)).scalar()
        if not got:
            raise Taken(f"the lock {name!r} is held by another process")
        try:
            yield Lock(name, conn)
        finally:
            with contextlib.suppress(DatabaseError):  # a broken session has released it
                conn.exec_driver_sql("SELECT pg_advisory_unlock(%s, %s)", (NAMESPACE, key))
    finally:
        with contextlib.suppress(DatabaseError):
            conn.close()


@contextlib.contextmanager
def _flock(db: Database, name: str) -> Iterator[Lock]:
    assert db.path is not None
    folder = db.path.parent / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{_file_name(name)}.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise Taken(f"the lock {name!r} is held by another process") from None
            raise
        yield Lock(name)


def _file_name(name: str) -> str:
    """The lock's file name: the name with anything but letters, digits, - and _ spelled out."""
    return re.sub(r"[^A-Za-z0-9_-]", lambda m: f"%{ord(m.group()):02x}", name)

