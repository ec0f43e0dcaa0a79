"""The one way into the hub's database: a `Database` opened from a URL.

    sqlite:///<store>/hub.sqlite            the default: one file beside the version data
    postgresql+psycopg://user@host/name     PostgreSQL through psycopg 3 (`HUB_DATABASE_URL`,
                                            see hub.config; postgresql://… means the same)

Statements are SQLAlchemy Core (see hub.db.schema). Each thread keeps one connection, opened
on first use, in autocommit mode: a read is one statement, no transaction around it (as the
hub did before the seam, so the hot read paths stay as cheap). `write()` is one transaction; on
SQLite it starts with BEGIN IMMEDIATE, so the writer holds the write lock from its first
statement and two writers never deadlock on a lock upgrade.

`mark()` tells whether anything was committed since it was last asked (a cache of what the
database holds may be kept while it answers the same), and `reading()` is one consistent read
together with the mark of what it saw: SQLite's `PRAGMA data_version` on a connection of the
database's own, PostgreSQL's `pg_current_snapshot()` (two equal snapshots see the same
committed transactions, so the same data). SQLite's is asked every time (it costs
microseconds); PostgreSQL's is a round-trip to the server, so it is asked at most every
MARK_POLL_S and otherwise the last answer is returned: a commit by another process or replica
is noticed within MARK_POLL_S (issue 14 asks for 1 s), one of this process at once (any
statement that may write, through any `Database` of the same URL, forgets the last answer).

Every database error, from SQLAlchemy or from a driver, is a `DatabaseError`.

SQLite connections run in WAL mode (any number of readers beside one writer, across
processes), with synchronous=FULL (a commit survives a power cut) and a 30 s busy timeout.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import zlib
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, Select, Table, create_engine, event, make_url
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Compiled
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from hub.errors import StoreError

# What any database error is, from either backend (SQLAlchemy's, which wraps the driver's):
# the one type modules outside hub.db catch.
DatabaseError = SQLAlchemyError
FILE = "hub.sqlite"  # the database of a single-machine store, in its folder
BUSY_TIMEOUT_S = 30
# PostgreSQL: how long a mark is taken as current (commits elsewhere are noticed this late);
# bench/RESULTS.md "Networked backends (issue 14)" for what asking on every request cost
MARK_POLL_S = 0.2
# first words of the statements that write nothing (any other one forgets the polled mark)
_READS = frozenset({"SELECT", "BEGIN", "ROLLBACK", "SHOW", "SET"})


class _Polled:
    """PostgreSQL's mark as last asked, shared by the `Database`s of one URL in a process
    (the server has one for its store and one for its catalog)."""

    def __init__(self) -> None:
        self.writes = 0  # statements that may have written, counted (by any thread)
        self.last: tuple[float, int, Hashable] | None = None  # when asked, writes then, mark

    def current(self) -> tuple[bool, Hashable]:
        """(True, the mark) while the last answer holds: younger than MARK_POLL_S, and no
        statement that may write ran since it was asked."""
        last = self.last
        if last is not None and last[1] == self.writes \
                and time.monotonic() - last[0] < MARK_POLL_S:
            return True, last[2]
        return False, None


_POLLED: dict[str, _Polled] = {}  # by database URL


def _counter(polled: _Polled) -> Any:
    """The listener after every statement through SQLAlchemy (PostgreSQL): one that may have
    written makes the next `mark()` ask the server."""
    def executed(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if (statement.lstrip()[:8].split() or [""])[0].upper() not in _READS:
            polled.writes += 1
    return executed


class Database:
    """One database (SQLite file or PostgreSQL), shared by the modules of one process."""

    def __init__(self, url: str | URL):
        try:
            self.url = make_url(url)
        except ArgumentError:
            raise StoreError(f"database URL {str(url)!r}: expected sqlite:///PATH or "
                             "postgresql+psycopg://USER@HOST/NAME") from None
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            if not self.url.database or self.url.database == ":memory:":
                raise StoreError(f"database URL {self.url!r}: name the SQLite file "
                                 "(sqlite:///PATH)")
            self.path: Path | None = Path(self.url.database)
            path = self.path
            engine = create_engine(self.url, poolclass=NullPool,
                                   creator=lambda: open_sqlite(path, rows=True))
        elif self.dialect == "postgresql":
            if self.url.drivername not in ("postgresql", "postgresql+psycopg"):
                raise StoreError(f"database URL {self.url!r}: the hub speaks to PostgreSQL "
                                 "through psycopg 3 (postgresql+psycopg://…)")
            self.url = self.url.set(drivername="postgresql+psycopg")
            self.path = None
            engine = create_engine(self.url, poolclass=NullPool)
        else:
            raise StoreError(f"database URL {self.url!r}: the hub runs on SQLite "
                             "(sqlite:///PATH) or PostgreSQL (postgresql+psycopg://…)")
        self.engine: Engine = engine  # transactions as SQLAlchemy runs them (migrations)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._local = threading.local()
        self._prepared: dict[int, _Prepared] = {}
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._watcher: Connection | None = None  # for mark() and reading()
        self._watching = threading.RLock()
        self._polled: _Polled | None = None  # PostgreSQL's mark, asked at most so often
        if not self.is_sqlite:
            self._polled = _POLLED.setdefault(self.url.render_as_string(False), _Polled())
            # a function that holds the shared counter, not this Database: the event
            # registry must not keep a Database (and its connections) alive
            event.listen(engine, "after_cursor_execute", _counter(self._polled))

    @classmethod
    def for_store(cls, root: Path | str) -> Database:
        """The single-machine default: the SQLite file in the store's folder."""
        return cls(URL.create("sqlite", database=str(Path(root).absolute() / FILE)))

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def __str__(self) -> str:
        """What to call it in a message (never with its password)."""
        return str(self.path) if self.path else self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({str(self)!r})"

    # -- connections -------------------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """This thread's connection (opened once, kept for the next call). A transaction
        left open by an error is rolled back when the outermost block ends."""
        local = self._local
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            local.conn, local.depth = self._autocommit.connect(), 0
        local.depth += 1
        try:
            yield local.conn
        finally:
            local.depth -= 1
            if local.depth == 0 and not local.conn.invalidated and self._open(local.conn):
                local.conn.exec_driver_sql("ROLLBACK")

    @contextlib.contextmanager
    def write(self, exclusive: str | None = None) -> Iterator[Connection]:
        """One transaction on this thread's connection: committed at the end of the block,
        rolled back if it raises. On SQLite the write lock is taken at once (one writer at a
        time); on PostgreSQL an `exclusive` name takes a transaction lock of that name first,
        so writers of the same name (on any replica) take turns, as on SQLite."""
        with self.connection() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN")
            if exclusive and not self.is_sqlite:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)",
                                     (zlib.crc32(exclusive.encode()),))
            try:
                yield conn
            except BaseException:
                if not conn.invalidated and self._open(conn):
                    conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

    def in_transaction(self, conn: Connection) -> bool:
        """Whether `conn` is inside a transaction (a `write()` block, or one begun by hand)."""
        return self._open(conn)

    def _open(self, conn: Connection) -> bool:
        """Whether the connection is inside a transaction (one started by hand included)."""
        raw: Any = conn.connection.dbapi_connection
        if self.is_sqlite:
            return bool(raw.in_transaction)
        return raw.info.transaction_status.name != "IDLE"

    def rows(self, statement: Select, params: dict[str, Any] | None = None
             ) -> list[dict[str, Any]]:
        """The rows of a SELECT as dicts, for the hot read paths (the current version of a
        dataset, a token check): the statement (a module-level constant with `bindparam`s
        for its values) is compiled once for this database and run on this thread's driver
        connection, without SQLAlchemy's work per call (which would double its cost). Only
        for columns whose values the driver returns as they are (text, integers, floats)."""
        prepared = self._prepared.get(id(statement))
        if prepared is None:
            prepared = self._prepared[id(statement)] = _Prepared(statement, self.engine)
        values: Any = {**prepared.defaults, **params} if params else prepared.defaults
        if prepared.order is not None:
            values = [values[name] for name in prepared.order]
        raw = self._raw()
        try:
            cursor = raw.execute(prepared.sql, values)
        except self._driver_error as exc:
            if getattr(raw, "closed", False):  # a PostgreSQL connection that broke
                self._local.conn = None
            raise DBAPIError.instance(prepared.sql, values, exc, self._driver_error) from exc
        columns = prepared.columns
        if columns is None:
            columns = prepared.columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def _raw(self) -> Any:
        """This thread's driver connection (inside a `write()` block: its transaction)."""
        local = self._local
        if getattr(local, "conn", None) is None:
            with self.connection():
                pass
        elif local.depth == 0 and (local.conn.closed or local.conn.invalidated):
            local.conn = None
            return self._raw()
        return local.conn.connection.dbapi_connection

    def insert(self, table: Table) -> postgresql.Insert | sqlite_dialect.Insert:
        """An INSERT that can say what to do on a conflict (`on_conflict_do_update`,
        `on_conflict_do_nothing`): both backends spell it alike, each in its own dialect."""
        return (sqlite_dialect if self.is_sqlite else postgresql).insert(table)

    # -- what changed ------------------------------------------------------------------------

    def mark(self, fresh: bool = False) -> Hashable:
        """Changes whenever a transaction was committed to the database (by any connection,
        process or replica); equal marks: the same data. On PostgreSQL a commit elsewhere
        changes it within MARK_POLL_S, one of this process at once; `fresh`: ask the
        server now."""
        polled = self._polled
        if polled is None:
            with self._watching:
                return self._mark(self._watch())
        held, mark = polled.current()
        if held and not fresh:
            return mark
        with self._watching:
            held, mark = polled.current()  # another thread may have asked meanwhile
            if held and not fresh:
                return mark
            writes, asked = polled.writes, time.monotonic()  # the answer is at least this new
            mark = self._mark(self._watch())
            polled.last = (asked, writes, mark)
            return mark


    @contextlib.contextmanager
    def reading(self) -> Iterator[tuple[Connection, Hashable]]:
        """One consistent read (a read-only transaction) and the mark of the data it sees
        (taken just before, so a commit in between only makes the mark older)."""
        with self._watching:
            mark = self.mark()
            conn = self._watch()
            conn.exec_driver_sql("BEGIN" if self.is_sqlite else
                                 "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield conn, mark
            finally:
                if not conn.invalidated:
                    conn.exec_driver_sql("ROLLBACK")

    def _watch(self) -> Connection:
        if self._watcher is None or self._watcher.closed or self._watcher.invalidated:
            self._watcher = self._autocommit.connect()
        return self._watcher

    def _mark(self, conn: Connection) -> Hashable:
        """On the driver's connection (asked before every cached answer: SQLAlchemy's work
        per statement would be most of its cost)."""
        sql = "PRAGMA data_version" if self.is_sqlite else "SELECT pg_current_snapshot()::text"
        try:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(sql)
            return cursor.fetchone()[0]
        except self._driver_error as exc:
            if self._watcher is not None:  # a connection that broke: a new one next time
                self._watcher.invalidate()
            raise DBAPIError.instance(sql, None, exc, self._driver_error) from exc

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        with self._watching:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
        self.engine.dispose()


class _Prepared:
    """A SELECT compiled for one database: its SQL, the order of its parameters (for
    drivers that take them by position) and the values the statement itself carries."""

    def __init__(self, statement: Select, engine: Engine):
        compiled: Compiled = statement.compile(dialect=engine.dialect)
        self.statement = statement  # kept alive: the cache is keyed by its id
        self.sql = compiled.string
        self.defaults = compiled.construct_params(_check=False)
        self.order = compiled.positiontup
        self.columns: list[str] | None = None  # from the first result


def open_sqlite(path: Path, rows: bool = True) -> sqlite3.Connection:
    """A connection to an SQLite database as the hub uses it (see the module's docstring)."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                         check_same_thread=False)
    if rows:
        db.row_factory = sqlite3.Row
    _use_wal(db)
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    return db


def _use_wal(db: sqlite3.Connection) -> None:
    """WAL mode (kept in the file, so asked first). Switching a new file to it is refused with
    "database is locked" at once, without the busy timeout, while other connections open it
    too (replicas starting together): then it is tried again until BUSY_TIMEOUT_S."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
