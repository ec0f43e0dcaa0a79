"""`hub audit`: check the audit trail's hash chain, export it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from hub.cli.common import RootOpt, StoreOpt, console, database_for, fail
from hub.errors import HubError

app = typer.Typer(help="The audit trail: who changed what, when (append-only, hash-chained).",
                  no_args_is_help=True)


@app.command("verify")
def verify(head: Annotated[str | None, typer.Option(
               "--head", help="A head hash noted earlier: fail if its entry is gone")] = None,
           root: RootOpt = None, store: StoreOpt = None) -> None:
    """Check every entry's hash and link; exit code 1 naming the first entry edited, deleted
    or inserted."""
    from hub import audit

    try:
        found = audit.verify(database_for(root, store), head)
    except audit.Tampered as exc:
        fail(str(exc))
    console.print(f"The audit trail is intact: {found.entries} entries; head {found.head}",
                  highlight=False)


@app.command("export")
def export(as_csv: Annotated[bool, typer.Option(
               "--csv", help="As CSV (the only format so far)")] = True,
           actor: Annotated[str, typer.Option(help="Only this actor")] = "",
           action: Annotated[str, typer.Option(
               help="Only this action (a trailing '.' for all of a kind: 'record.')")] = "",
           subject: Annotated[str, typer.Option(help="Subjects containing this")] = "",
           since: Annotated[str, typer.Option(help="From this day (YYYY-MM-DD)")] = "",
           until: Annotated[str, typer.Option(help="To this day (YYYY-MM-DD)")] = "",
           output: Annotated[Path | None, typer.Option(
               "--output", "-o", help="Write to this file (default: standard output)")] = None,
           root: RootOpt = None, store: StoreOpt = None) -> None:
    """Write the audit trail (oldest first, with the hashes) as CSV."""
    from hub import audit

    if not as_csv:
        fail("only --csv is supported")
    db = database_for(root, store)
    try:
        where = audit.Filter(actor, action, subject, since, until)
        if output is None:
            for chunk in audit.csv_lines(db, where):
                sys.stdout.write(chunk)
            return
        with output.open("w", encoding="utf-8", newline="") as out:
            for chunk in audit.csv_lines(db, where):
                out.write(chunk)
    except HubError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{output}: {exc.strerror}")
    console.print(f"Wrote the audit trail to {escape(str(output))}")
