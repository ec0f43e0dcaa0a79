"""`hub derived`: the public aggregates an admin allowed (hub.ingest.allowances) — the admin's
way, beside the input owner's `public_derivatives`, to let a derived dataset be public although
an input it reads is not."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from hub.cli.common import RootOpt, StoreOpt, console, database_for, fail, new_table
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.access import Viewer

app = typer.Typer(help="Public aggregates of non-public data that an admin allowed.",
                  no_args_is_help=True)


def _operator() -> Viewer:
    from hub.access import OPERATOR
    from hub.ingest.run import current_user

    return replace(OPERATOR, user=current_user())


@app.command("allow")
def allow(dataset: Annotated[str, typer.Argument(help="The non-public input dataset")],
          derived: Annotated[str, typer.Argument(help="The public derived dataset")],
          reason: Annotated[str, typer.Option(help="Why (kept in the audit trail)")] = "",
          root: RootOpt = None, store: StoreOpt = None) -> None:
    """Allow DERIVED to be a public aggregate of DATASET (as if DATASET's pipeline listed it
    in `public_derivatives`); it takes effect at DERIVED's next run."""
    from hub.ingest import allowances

    try:
        added = allowances.allow(database_for(root, store), _operator(), dataset, derived, reason)
    except HubError as exc:
        fail(str(exc))
    state = "is now allowed" if added else "was allowed already"
    console.print(f"{escape(derived)} {state} as a public aggregate of {escape(dataset)}; "
                  f"run `hub ingest {escape(derived)}` to derive it", highlight=False)


@app.command("revoke")
def revoke(dataset: Annotated[str, typer.Argument(help="The non-public input dataset")],
           derived: Annotated[str, typer.Argument(help="The public derived dataset")],
           root: RootOpt = None, store: StoreOpt = None) -> None:
    """Withdraw an allowance: DERIVED's next run is refused unless DATASET's owner allows it;
    its current version stays."""
    from hub.ingest import allowances

    try:
        allowances.revoke(database_for(root, store), _operator(), dataset, derived)
    except HubError as exc:
        fail(str(exc))
    console.print(f"{escape(derived)} is no longer allowed as a public aggregate of "
                  f"{escape(dataset)} by an admin", highlight=False)


@app.command("list")
def list_cmd(root: RootOpt = None, store: StoreOpt = None) -> None:
    """The public aggregates admins allowed (who, when, why)."""
    from hub.ingest import allowances

    found = allowances.listing(database_for(root, store))
    if not found:
        console.print("No admin allowed a public aggregate.")
        return
    table = new_table(title="Public aggregates allowed by an admin", title_justify="left")
    for col in ("input", "derived", "allowed by", "allowed", "reason"):
        table.add_column(col)
    for a in found:
        table.add_row(a.input, a.derived, a.allowed_by, a.allowed, a.reason)
    console.print(table)
