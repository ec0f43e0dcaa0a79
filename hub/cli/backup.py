"""`hub backup PATH` and `hub restore PATH`: the whole state of a hub, consistent and
checksummed, taken while it serves and ingests (see hub.backup for the format)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, err, escape, fail, settings_for
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.backup import Summary


def backup_cmd(
    path: Annotated[Path, typer.Argument(help="New folder to write the backup to")],
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """Back up the store: every table (versions, catalog, accounts, …) from one consistent
    snapshot and the files it refers to (version data, quarantine, uploads; from the store
    folder or from S3), with SHA-256 checksums. Safe while the server serves and ingests run."""
    from hub.backup import backup
    from hub.cli.progress import Bars, progress
    from hub.storage import for_store

    settings = settings_for(root, store)
    try:
        with progress() as bars:
            summary = backup(settings.store, path, Bars(bars), settings.database(),
                             for_store(settings.store, settings.storage_url))
    except HubError as exc:
        fail(str(exc))
    _report("Backed up", summary)
    for note in summary.notes:
        err.print(f"[yellow]uploaded file backed up as found: {escape(note)} (its hash was "
                  "edited through the API, or the file was removed)[/]", highlight=False)
    if summary.attempts > 1:
        console.print(f"[dim]{summary.attempts} snapshots taken: writers moved files away "
                      "from the first ones[/]")


def restore_cmd(
    path: Annotated[Path, typer.Argument(help="Backup folder made by `hub backup`")],
    force: Annotated[bool, typer.Option(
        "--force", help="Replace a store that is not empty (stop its server first)")] = False,
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """Restore a backup into an empty store: every checksum is verified before anything is
    written, the store is built beside the target and moved into place only when complete."""
    from hub.backup import restore
    from hub.cli.progress import Bars, progress

    settings = settings_for(root, store)
    try:
        with progress() as bars:
            summary = restore(path, settings, force=force, progress=Bars(bars))
    except HubError as exc:
        fail(str(exc))
    _report("Restored", summary)
    for line in summary.broken:
        err.print(f"[yellow]restored as broken (as in the backup): {escape(line)}[/]",
                  highlight=False)


def _report(verb: str, summary: Summary) -> None:
    rows = sum(summary.tables.values())
    console.print(f"{verb} {len(summary.tables)} tables ({rows:,} rows) and {summary.files:,} "
                  f"files ({summary.bytes / 1e6:,.1f} MB): {escape(str(summary.path))}",
                  highlight=False)
