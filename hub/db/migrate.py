"""Schema migrations (Alembic, scripts in hub/db/migrations/versions/), run on open.

A database is brought to the newest revision inside one transaction that no other process can
enter meanwhile: on SQLite the transaction starts with BEGIN IMMEDIATE (DDL is transactional
there), on PostgreSQL it first takes an advisory lock, so replicas starting together do not
race. A store made before migrations existed (no `alembic_version` table) is recognised by the
baseline revision and stamped, not recreated (see migrations/versions/0001_baseline.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from hub.db.database import Database

SCRIPTS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x6875622D6462  # "hub-db": the advisory lock that serialises migrations


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The newest revision this hub's code knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None, "hub/db/migrations/versions has no revision"
    return found


def current(db: Database) -> str | None:
    """The revision the database is at (None: not migrated yet)."""
    with db.connection() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the database to the newest revision; returns (revision before, after)."""
    before = current(db)
    if before == head():
        return before, before
    with db.engine.connect() as conn, conn.begin():
        if db.is_sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        before = MigrationContext.configure(conn).get_current_revision()  # under the lock
        command.upgrade(_config(conn), "head")
    return before, head()
