"""The `hub` command (also `python -m hub`).

A help page (`hub --help`, `hub catalog --help`, `hub catalog list --help`, …) is printed from
the pages stored in hub/cli/help.json (see hub/cli/help_pages.py), without importing typer
and the command modules: that keeps `hub --help` within the 0.2 s of bench/startup.py.
Everything else, and a help page on a terminal narrower than 80 columns (click wraps to it),
goes to the typer app in hub.cli.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

PAGES = Path(__file__).parent / "cli" / "help.json"


def stored_help(argv: list[str]) -> str | None:
    """The stored page for the command line `argv` (with the program's name), if it asks for
    exactly one help page and that page would look the same from typer."""
    if (len(argv) < 2 or argv[-1] != "--help" or Path(argv[0]).name != "hub"
            or any(word.startswith("-") for word in argv[1:-1])
            or shutil.get_terminal_size().columns < 80):
        return None
    pages: dict[str, str] = json.loads(PAGES.read_text(encoding="utf-8"))
    return pages.get(" ".join(argv[1:-1]))


def main() -> None:
    page = stored_help(sys.argv)
    if page is not None:
        sys.stdout.write(page)
        sys.exit(0)
    from hub.cli import app

    app()


if __name__ == "__main__":
    main()
