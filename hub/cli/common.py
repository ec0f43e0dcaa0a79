"""What every `hub` command shares: consoles, tables, the --root/--store options, errors.

rich (about 0.1 s to import) is loaded when a command first prints, not for `hub --help`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from hub.errors import HubError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from hub.config import Settings
    from hub.db import Database


class LazyConsole:
    """A rich Console made on first use; every attribute is the Console's."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        if self._console is None:
            from rich.console import Console

            stream = sys.stderr if self._stderr else sys.stdout
            # Piped output (CI logs, grep) is not squeezed into 80 columns; messages never wrap.
            self._console = Console(stderr=self._stderr, soft_wrap=True,
                                    width=None if stream.isatty() else 160)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)


console = LazyConsole()
err = LazyConsole(stderr=True)


def escape(text: str) -> str:
    """rich's markup escape (`[` in data is not a style)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def new_table(*columns: str, **options: Any) -> Table:
    """A rich Table (the arguments are rich's)."""
    from rich.table import Table

    return Table(*columns, **options)


RootOpt = Annotated[Path | None, typer.Option("--root", help="Project folder (pipelines/, "
                                              "schemas/, catalog/); default: HUB_ROOT or .")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="Store folder; default: "
                                               "HUB_STORE or <root>/store")]


def settings_for(root: Path | None, store: Path | None) -> Settings:
    from hub.config import load_settings  # imported when a command runs: `hub --help` stays fast

    try:
        return load_settings(root, store)
    except HubError as exc:
        fail(str(exc))


def database_for(root: Path | None, store: Path | None) -> Database:
    """The hub's database (SQLite beside the store, or `HUB_DATABASE_URL`), opened for a
    command; a clear error if it cannot be."""
    from hub.store.versions import Store

    try:
        settings = settings_for(root, store)
        return Store(settings.store, settings.database()).db
    except HubError as exc:
        fail(str(exc))


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)
