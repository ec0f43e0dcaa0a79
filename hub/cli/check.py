"""`hub check`: verify every stored version and cached export, isolate what is damaged."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, err, escape, fail, new_table, settings_for
from hub.errors import HubError, StoreError


def check(
    datasets: Annotated[list[str] | None, typer.Argument(
        help="Datasets to check (default: all)")] = None,
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """Verify each version's file (checksum, Parquet footer) and each cached export.

    A damaged version is marked broken and no longer served (its URLs answer 503); a damaged
    export is deleted and built again on next use; files left by killed export builders, and
    version files in the storage that no version refers to (a run killed before its commit),
    are removed. Exit code 1 when anything was found damaged.
    """
    from hub.api.downloads.exports import check_folder  # the server's modules, only here
    from hub.ingest.run import current_user
    from hub.store.versions import Store

    settings = settings_for(root, store)
    target = Store(settings.store, settings.database())
    who = current_user()
    names = datasets or [d.name for d in target.datasets()]
    table = new_table(title="Store check", title_justify="left")
    for col in ("dataset", "version", "", "file", "exports", "problem"):
        table.add_column(col, no_wrap=col != "problem")
    damaged, advice, cleaned = 0, [], []
    for name in names:
        try:
            current = target.dataset(name).current_version
            versions = target.versions(name)
        except HubError as exc:
            fail(str(exc))
        try:
            cleaned += target.clean_now(name)
        except StoreError as exc:  # a run is writing it: it cleans up itself
            err.print(f"{escape(str(exc))}: its leftovers were not looked for")
        for v in versions:
            mark = "●" if v.version == current else ""
            if v.purged:
                table.add_row(name, f"v{v.version}", mark, "[dim]purged[/]", "", "")
                continue
            reason = target.check(v, who)
            exports = check_folder(v)
            state = ("[red]broken[/]" if reason else
                     "[green]repaired[/]" if v.broken else "[green]ok[/]")
            parts = [f"{len(exports.sound)} ok"]
            if exports.removed:
                parts.append(f"[red]{len(exports.removed)} damaged, deleted[/]")
            if exports.leftovers:
                parts.append(f"{len(exports.leftovers)} leftovers removed")
            problems = ([reason] if reason else []) + [
                f"{file}: {why}" for file, why in exports.removed.items()]
            damaged += bool(reason) + len(exports.removed)
            table.add_row(name, f"v{v.version}", mark, state, ", ".join(parts),
                          escape("; ".join(problems)))
            if reason and v.version == current:
                good = [f"v{o.version}" for o in versions
                        if not o.purged and not o.broken and o.version != v.version]
                advice.append(f"{name}: the current version v{v.version} is broken and answers "
                              f"503; roll back with `hub rollback {name} <version>` (candidates: "
                              f"{', '.join(good) or 'none'}), restore the file from a backup "
                              "and run `hub check` again, or ingest again")
    console.print(table)
    for key in cleaned:
        console.print(f"removed {escape(key)} in {escape(target.files.url)}: files of a run "
                      "that died before its commit (no version refers to them)")
    for line in advice:
        err.print(f"[bold red]{escape(line)}[/]", highlight=False)
    if damaged:
        err.print(f"[red]{damaged} damaged file(s) found[/]")
        raise typer.Exit(1)
