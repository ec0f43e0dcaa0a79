"""hub.db: the database behind a store, its schema and its migrations, on SQLite and on a
real PostgreSQL; a store made by the hub before migrations is stamped, not recreated.

tests/fixtures/legacy/hub.sqlite was written by the hub before hub.db (commit 8881f52): the
demo's `gemeinden` (ingested twice) and `pflege`, `hub catalog load`, the user m.schulze
(admin of hauptamt) with the token below, and a row in harvest_sources."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import REPO, add_catalog
from typer.testing import CliRunner

from hub.access import ANONYMOUS
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.catalog.index import Query
from hub.cli import app
from hub.config import load_settings
from hub.db import Database, migrate
from hub.db.schema import metadata
from hub.errors import PipelineError, StoreError
from hub.store.versions import Store

LEGACY = REPO / "tests" / "fixtures" / "legacy" / "hub.sqlite"
LEGACY_TOKEN = "hub_dlUmtq54q9bCf9l-Gwxgm85iZEUwE0byARvyxz1tocY"


# What the migrations after the baseline add: tables (with their SQLite indexes) and columns.
LATER_TABLES = {"recovery_codes": ("sqlite_autoindex_recovery_codes_1", "ix_recovery_codes_user"),
                "sessions": ("sqlite_autoindex_sessions_1", "ix_sessions_user"),
                "jobs": ("sqlite_autoindex_jobs_1", "jobs_state_created", "jobs_one_writer"),
                "todos": ("todos_open",),
                "reminders": ("sqlite_autoindex_reminders_1",),
                "audit": ("sqlite_autoindex_audit_1", "sqlite_autoindex_audit_2",
                          "ix_audit_subject", "ix_audit_actor"),
                "usage": ("sqlite_autoindex_usage_1", "ix_usage_dataset"),
                "publication_requests": ("sqlite_autoindex_publication_requests_1",),
                "public_aggregates": ("sqlite_autoindex_public_aggregates_1",),
                "identities": ("sqlite_autoindex_identities_1", "ix_identities_user"),
                "pipeline_definitions": ("sqlite_autoindex_pipeline_definitions_1",),
                "catalog_words": ("sqlite_autoindex_catalog_words_1", "catalog_words_word")}
LATER_COLUMNS = {"users": ("password", "totp_secret", "totp_pending", "totp_step")}


def fts5(name: str) -> bool:
    """SQLite's FTS5 index of the catalog and its shadow tables, which `catalog_words`
    replaced (migration 0004)."""
    return name.startswith("catalog_text")


def at_baseline(found: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """`columns` of a database at the newest migration as they were at the baseline."""
    return {t: [c for c in cols if c[0] not in LATER_COLUMNS.get(t, ())]
            for t, cols in found.items() if t not in LATER_TABLES}


def differences(db: Database) -> list[Any]:
    """What Alembic finds between the database and hub.db.schema (empty: they agree). A key
    column that may hold NULL is not one: SQLite's tables made before migrations said
    `name TEXT PRIMARY KEY`, which (unlike PostgreSQL) allows NULL; the baseline makes new
    keys NOT NULL and leaves existing tables as they are."""
    with db.connection() as conn:
        context = MigrationContext.configure(conn)
        found = compare_metadata(context, metadata)
    return [d for d in found if not (
        isinstance(d, list) and len(d) == 1 and d[0][0] == "modify_nullable"
        and metadata.tables[d[0][2]].c[d[0][3]].primary_key)]


def objects(path: Path) -> dict[str, str]:
    """Every table, index and trigger of an SQLite file with the SQL that made it."""
    with sqlite3.connect(path) as db:
        return {name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master")}


def columns(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's columns: name, type, default, position in the primary key, and NOT NULL
    (for columns outside the primary key: SQLite lets a TEXT key hold NULL unless told)."""
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = "
                                           "'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: [(c[1], c[2], c[4], c[5], bool(c[3]) if not c[5] else None)
                    for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as db:
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in metadata.tables if t not in LATER_TABLES}


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A project whose store holds the pre-migration database (and not the version files)."""
    root = tmp_path / "project"
    add_catalog(root)
    (root / "store").mkdir()
    shutil.copy(LEGACY, root / "store" / "hub.sqlite")
    return root


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_new_database_gets_the_whole_schema(backend: str, tmp_path: Path,
                                              request: pytest.FixtureRequest) -> None:
    db = (Database.for_store(tmp_path) if backend == "sqlite"
          else Database(request.getfixturevalue("postgres").database()))
    assert migrate.current(db) is None
    assert migrate.upgrade(db) == (None, migrate.head())
    assert migrate.current(db) == migrate.head()
    assert differences(db) == []
    assert migrate.upgrade(db) == (migrate.head(), migrate.head())  # nothing left to do


def test_a_store_made_before_migrations_is_stamped_not_recreated(legacy: Path) -> None:
    path = legacy / "store" / "hub.sqlite"
    before, data, columns_before = objects(path), rows(path), columns(path)
    assert "alembic_version" not in before
    store = Store(legacy / "store")
    after = objects(path)
    assert {n: after[n] for n in before if n not in LATER_COLUMNS and not fts5(n)} == {
        n: sql for n, sql in before.items() if n not in LATER_COLUMNS and not fts5(n)}
    assert not any(fts5(n) for n in after)  # the FTS5 index: replaced by catalog_words
    later = {*LATER_TABLES, *(index for made in LATER_TABLES.values() for index in made)}
    assert set(after) - set(before) == {
        "alembic_version", "sqlite_autoindex_alembic_version_1", *later}
    assert at_baseline(columns(path)) == {**{t: c for t, c in columns_before.items()
                                             if not fts5(t)}, "alembic_version": [
        ("version_num", "VARCHAR(32)", None, 1, None)]}  # users: columns added, not rebuilt
    assert {t: [r[:len(r) - len(LATER_COLUMNS.get(t, ()))] for r in found]
            for t, found in rows(path).items()} == data
    assert migrate.current(store.db) == migrate.head()
    assert differences(store.db) == []
    assert store.current("gemeinden").version == 2
    assert [v.version for v in store.versions("gemeinden")] == [2, 1]
    catalog, vocab, _ = open_catalog(load_settings(legacy, legacy / "store"))
    assert {"gemeinden", "pflege"} <= set(catalog.search(Query(q=""), ANONYMOUS).names)
    user = Accounts(catalog.store, vocab).authenticate(LEGACY_TOKEN)
    assert user is not None and (user.name, user.role) == ("m.schulze", "admin")


def test_the_baseline_is_the_schema_the_hub_had(legacy: Path, tmp_path: Path) -> None:
    Store(tmp_path / "fresh")
    fresh = at_baseline(columns(tmp_path / "fresh" / "hub.sqlite"))
    assert fresh.pop("alembic_version")
    assert fresh == {t: c for t, c in columns(legacy / "store" / "hub.sqlite").items()
                     if not fts5(t)}


def test_an_older_store_gets_the_columns_and_tables_it_lacks(legacy: Path) -> None:
    """As hubs before migrations did on open: columns added, tables made, nothing lost."""
    path = legacy / "store" / "hub.sqlite"
    with sqlite3.connect(path) as db:
        for table, column in (("datasets", "attribution"), ("versions", "broken"),
                              ("catalog_records", "revision"), ("catalog_records", "state")):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        for table in ("tokens", "users", "catalog_loads", "harvest_sources"):
            db.execute(f"DROP TABLE {table}")
    store = Store(legacy / "store")
    assert differences(store.db) == []
    assert store.dataset("gemeinden").attribution == ""
    assert store.current("pflege").broken is None
    catalog, _, _ = open_catalog(load_settings(legacy, legacy / "store"))
    assert catalog.get("pflege", ANONYMOUS).revision == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_replicas_starting_together_migrate_once(backend: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("postgres").database())
    results: list[Any] = []
    start = threading.Barrier(6)

    def replica() -> None:
        db = Database(url)
        start.wait()
        try:
            results.append(migrate.upgrade(db)[1])
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [migrate.head()] * 6
    db = Database(url)
    with db.connection() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [
            (migrate.head(),)]
    assert differences(db) == []


def test_bad_database_urls_are_refused_with_the_reason(tmp_path: Path) -> None:
    for url, reason in (("mysql://u@h/db", "runs on SQLite"), ("sqlite://", "name the SQLite"),
                        ("postgresql+asyncpg://u@h/db", "psycopg 3"),
                        ("not a url", "expected sqlite")):
        with pytest.raises(StoreError, match=reason):
            Database(url)
    db = Database("postgresql://hub:secret@db.example/hub")
    assert str(db) == "postgresql+psycopg://hub:***@db.example/hub"


def test_hub_database_url_chooses_postgresql_and_defaults_to_the_stores_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    assert load_settings(tmp_path).database().path == tmp_path / "store" / "hub.sqlite"
    for url in ("postgresql://hub:secret@db.example/hub",
                "postgresql+psycopg://hub:secret@db.example/hub"):
        monkeypatch.setenv("HUB_DATABASE_URL", url)
        assert str(load_settings(tmp_path).database()) == (
            "postgresql+psycopg://hub:***@db.example/hub")
    for url in ("mysql://hub@db.example/hub", "/srv/hub.sqlite"):
        monkeypatch.setenv("HUB_DATABASE_URL", url)
        with pytest.raises(PipelineError, match="HUB_DATABASE_URL: expected postgresql://"):
            load_settings(tmp_path)


def test_the_db_commands_show_and_migrate(legacy: Path, postgres: Any) -> None:
    def hub(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["db", *args], env={"COLUMNS": "400"})
        return result.exit_code, " ".join(result.output.split())

    store = str(legacy / "store")
    head = migrate.head()
    assert hub("current", "--store", store) == (
        0, f"{store}/hub.sqlite: not migrated; the newest revision is {head}: run `hub db "
        "upgrade`")
    assert hub("upgrade", "--store", store) == (
        0, f"{store}/hub.sqlite: migrated from an empty or pre-migration database to "
        f"revision {head}")
    assert hub("current", "--store", store) == (0, f"{store}/hub.sqlite: revision {head} "
                                                "(the newest)")
    url = postgres.database()
    code, text = hub("upgrade", "--url", url)
    assert code == 0 and text.endswith(f"to revision {head}")
    assert hub("current", "--url", url)[1].endswith(f"revision {head} (the newest)")
    code, text = hub("current", "--store", str(legacy / "nowhere"))
    assert code == 1 and "there is no database at" in text
    code, text = hub("current", "--url", postgres.url("missing"))
    assert code == 1 and 'database "missing" does not exist' in text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_mark_changes_at_once_after_a_commit_of_this_process(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path / 'hub.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("postgres").database())
    reader, writer = Database(url), Database(url)  # as the server's store and catalog
    with writer.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x integer)")
    before = reader.mark()
    assert reader.mark() == before  # nothing committed: the same mark
    with writer.write() as conn:  # a transaction
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    seen = reader.mark()
    assert seen != before
    with writer.connection() as conn:  # one statement in autocommit mode
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    assert reader.mark() != seen
    with reader.reading() as (conn, mark):
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
    assert reader.mark() == mark


def test_on_postgresql_the_mark_is_asked_at_most_every_poll_interval(
        postgres: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another replica's commit (a connection of its own) is seen once the last answer is
    MARK_POLL_S old, or at once with `fresh`; until then the mark costs no round-trip."""
    from hub.db import database

    url = postgres.database()
    db = Database(url)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x integer)")
    monkeypatch.setattr(database, "MARK_POLL_S", 3600.0)
    held = db.mark()
    with postgres.connect(db.url.database) as other:
        other.execute("INSERT INTO t VALUES (1)")
        assert db.mark() == held  # not asked again
        fresh = db.mark(fresh=True)
        assert fresh != held and db.mark() == fresh
        monkeypatch.setattr(database, "MARK_POLL_S", 0.0)  # asked every time
        other.execute("INSERT INTO t VALUES (2)")
        assert db.mark() != fresh


def test_a_database_let_go_closes_its_postgresql_connections(postgres: Any) -> None:
    """A `Database` no longer referenced gives its connections back: nothing global (the
    polled mark's statement listener) may keep it alive — the suite's server has 200 slots."""
    import gc

    url = postgres.database()
    name = url.rsplit("/", 1)[1]

    def connections() -> int:
        with postgres.connect() as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                (name,)).fetchone()[0]

    for _ in range(30):
        db = Database(url)
        db.mark()
        with db.reading():
            pass
        del db
    gc.collect()
    assert connections() <= 2
