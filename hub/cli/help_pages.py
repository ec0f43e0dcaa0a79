"""The stored help pages of the `hub` command, which `hub ... --help` prints without typer.

Typer builds every command's parameters from its signature before it prints any help (about
0.1 s for 37 commands, plus typer and the command modules themselves), so the pages are
rendered once from the typer app and kept in `help.json` beside this module; hub/__main__.py
prints them. After changing a command, its options or their help, write them again with

    .venv/bin/python -m hub.cli.help_pages

(tests/test_cli_help.py fails while a stored page differs from what typer prints.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer.main
from typer.core import TyperGroup

from hub.cli import app

if TYPE_CHECKING:
    from typer._click import Command, Context  # typer's own click, what get_command returns

PAGES = Path(__file__).with_name("help.json")
WIDTH = 78  # what click formats to on a terminal of 80 columns or more, and in a pipe


def render() -> dict[str, str]:
    """Every command's and group's help page as `hub <path> --help` prints it, by path."""
    root = typer.main.get_command(app)
    return {" ".join(path): ctx.get_help() + "\n" for path, ctx in _contexts(root, None, [])}


def _contexts(command: Command, parent: Context | None,
              path: list[str]) -> Iterator[tuple[list[str], Context]]:
    ctx = command.context_class(command, info_name=path[-1] if path else "hub", parent=parent,
                                terminal_width=WIDTH)
    yield path, ctx
    if isinstance(command, TyperGroup):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _contexts(sub, ctx, [*path, name])


def write() -> None:
    PAGES.write_text(json.dumps(render(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write()
    print(f"wrote {PAGES}")
