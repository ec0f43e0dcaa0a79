"""What every `hub` command shares: consoles, the --root/--store options, errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from hub.errors import HubError

if TYPE_CHECKING:
    from hub.config import Settings

# Piped output (CI logs, grep) is not squeezed into 80 columns; messages never wrap.
console = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=True)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160, soft_wrap=True)

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


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)
