"""`hub db`: which schema revision the database is at, and migrating it.

The hub migrates its store's database itself when it opens it; a deployment whose replicas
share one database runs `hub db upgrade` once before starting them (on PostgreSQL an advisory
lock keeps two upgrades from racing)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, escape, fail, settings_for
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.db import Database

app = typer.Typer(help="The database: its schema revision and migrations.",
                  no_args_is_help=True)

UrlOpt = Annotated[str | None, typer.Option(
    "--url", help="Another database than the store's: postgresql+psycopg://USER@HOST/NAME "
    "or sqlite:///PATH")]


def _database(root: Path | None, store: Path | None, url: str | None,
              create: bool) -> Database:
    from hub.db import Database  # SQLAlchemy takes 0.3 s to import: not for `hub --help`

    try:
        db = Database(url) if url else settings_for(root, store).database()
    except HubError as exc:
        fail(str(exc))
    if db.path is not None and not create and not db.path.is_file():
        fail(f"there is no database at {db.path}")
    return db


@app.command("current")
def current(root: RootOpt = None, store: StoreOpt = None, url: UrlOpt = None) -> None:
    """Show the database's schema revision and the newest this hub knows."""
    from sqlalchemy.exc import SQLAlchemyError

    from hub.db import migrate

    db = _database(root, store, url, create=False)
    try:
        found, newest = migrate.current(db), migrate.head()
    except SQLAlchemyError as exc:
        fail(f"the database {db} cannot be read: {getattr(exc, 'orig', exc)}")
    if found == newest:
        console.print(f"{escape(str(db))}: revision {found} (the newest)")
    elif found is None:
        console.print(f"{escape(str(db))}: not migrated; the newest revision is {newest}: "
                      "run `hub db upgrade`")
    else:
        console.print(f"{escape(str(db))}: revision {found}; the newest this hub knows is "
                      f"{newest}: run `hub db upgrade`")


@app.command("upgrade")
def upgrade(root: RootOpt = None, store: StoreOpt = None, url: UrlOpt = None) -> None:
    """Migrate the database to the newest schema revision (a store made before migrations
    is stamped, not recreated)."""
    from sqlalchemy.exc import SQLAlchemyError

    from hub.db import migrate

    db = _database(root, store, url, create=True)
    if db.path is not None:
        db.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        before, after = migrate.upgrade(db)
    except SQLAlchemyError as exc:
        fail(f"the database {db} cannot be migrated: {getattr(exc, 'orig', exc)}")
    if before == after:
        console.print(f"{escape(str(db))}: already at revision {after} (the newest)")
    else:
        console.print(f"{escape(str(db))}: migrated from "
                      f"{before or 'an empty or pre-migration database'} to revision {after}")
