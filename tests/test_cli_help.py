"""`hub ... --help` prints the stored help pages (hub/cli/help.json) without typer: they are
exactly what typer prints, for every command and group, and anything else goes to typer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.__main__ import PAGES, stored_help
from hub.cli.help_pages import render

HUB = Path(sys.executable).with_name("hub")  # the console script `make install` made


def run(argv: list[str], columns: str | None = "80",
        code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = columns
    command = [sys.executable, "-c", code] if code else [str(HUB), *argv]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def typer_prints(argv: list[str], columns: str | None = "80") -> subprocess.CompletedProcess[str]:
    """What the typer app itself prints for `hub <argv>` (not the stored page)."""
    return run(argv, columns, code="import sys\nfrom hub.cli import app\n"
               f"sys.argv = ['hub', *{argv!r}]\napp()")


def test_the_stored_pages_are_the_ones_typer_renders() -> None:
    stored = json.loads(PAGES.read_text(encoding="utf-8"))
    rendered = render()
    assert stored == rendered, ("hub/cli/help.json is out of date: run "
                                "`.venv/bin/python -m hub.cli.help_pages`")
    assert {"", "catalog", "catalog list", "db upgrade", "user add", "ingest"} <= set(stored)


@pytest.mark.parametrize("argv", [["--help"], ["catalog", "--help"], ["ingest", "--help"]])
def test_the_command_prints_what_typer_prints(argv: list[str]) -> None:
    for columns in ("80", "200", None):  # a wide terminal, and a pipe
        fast, slow = run(argv, columns), typer_prints(argv, columns)
        assert fast.returncode == slow.returncode == 0
        assert fast.stdout == slow.stdout == stored_help(["hub", *argv])


def test_a_help_page_imports_neither_typer_nor_the_commands() -> None:
    probe = ("import sys\nsys.argv = ['hub', 'catalog', 'list', '--help']\n"
             "from hub.__main__ import main\ntry:\n    main()\nexcept SystemExit as exc:\n"
             "    assert exc.code == 0\n"
             "print([m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click') "
             "or m.startswith('hub.cli')])")
    done = run([], code=probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("[]\n") and done.stdout.startswith("Usage: hub catalog list")


def test_a_narrow_terminal_gets_typer_s_page() -> None:
    narrow = run(["catalog", "--help"], columns="60")
    assert narrow.returncode == 0
    assert narrow.stdout == typer_prints(["catalog", "--help"], columns="60").stdout
    assert narrow.stdout != stored_help(["hub", "catalog", "--help"])  # wrapped to 58


@pytest.mark.parametrize("argv", [
    ["hub"],                                  # no arguments: typer's help and exit code
    ["hub", "ingest", "--all", "--help"],     # options before --help
    ["hub", "nonsense", "--help"],            # an unknown command: typer's error
    ["hub", "--help", "catalog"],
    ["python -m hub", "--help"],              # another program name in the usage line
])
def test_other_command_lines_go_to_typer(argv: list[str]) -> None:
    assert stored_help(argv) is None


def test_unknown_command_keeps_typer_s_error() -> None:
    done = run(["nonsense", "--help"])
    assert done.returncode == 2 and "No such command 'nonsense'" in done.stderr
