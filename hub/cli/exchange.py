"""`hub publish` and `hub harvest`: exchanging datasets with other CKAN portals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, escape, fail, new_table, settings_for
from hub.errors import HubError

Timeout = Annotated[float, typer.Option(help="Seconds to wait for each answer")]


def _site(root: Path | None, store: Path | None, base_url: str | None, needed: bool):
    from hub.api.ckan.packages import Site
    from hub.catalog import open_catalog

    settings = settings_for(root, store)
    url = (base_url or settings.base_url).rstrip("/")
    if needed and not url:
        fail("the hub's public address is needed so the target can link to its data: "
             "pass --base-url or set HUB_BASE_URL")
    try:
        catalog, vocab, district = open_catalog(settings)
    except HubError as exc:
        fail(str(exc))
    return catalog, Site(url, vocab, district)


def publish(
    target: Annotated[str, typer.Option(help="Base URL of the CKAN to publish to")],
    token: Annotated[str, typer.Option(help="API token on the target", envvar="HUB_PUBLISH_TOKEN")],
    org: Annotated[str | None, typer.Option(help="Organisation on the target that owns the "
                                            "datasets (default: one named like the publisher)")]
    = None,
    dry_run: Annotated[bool, typer.Option(help="Only report what would change")] = False,
    base_url: Annotated[str | None, typer.Option(help="This hub's public URL (default: "
                                                 "HUB_BASE_URL)")] = None,
    timeout: Timeout = 30,
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """Push the public, curated datasets to another CKAN: create or update by name."""
    from rich.progress import Progress

    from hub.api.ckan.client import Remote
    from hub.api.ckan.publish import publish as run_publish

    catalog, site = _site(root, store, base_url, needed=True)
    remote = Remote(target, token, timeout)
    with Progress(console=console.rich, transient=True) as bars:
        task = bars.add_task("publishing", total=None)
        try:
            outcomes = run_publish(catalog, site, remote, org, dry_run,
                                   lambda name: bars.advance(task))
        except HubError as exc:
            fail(str(exc))
    table = new_table("dataset", "result", "reason", title="Dry run: nothing was sent"
                      if dry_run else f"Published to {escape(remote.url)}")
    order = ("failed", "created", "updated", "unchanged")
    for o in sorted(outcomes, key=lambda o: (order.index(o.result), o.name)):
        table.add_row(escape(o.name), o.result, escape(o.reason))
    console.print(table)
    counts = {k: sum(o.result == k for o in outcomes)
              for k in ("created", "updated", "unchanged", "failed")}
    console.print(", ".join(f"{v} {k}" for k, v in counts.items()))
    if counts["failed"]:
        raise typer.Exit(1)


def harvest(
    url: Annotated[str, typer.Argument(help="Base URL of the CKAN to harvest")],
    org: Annotated[str | None, typer.Option(help="Local organisation for the harvested "
                                            "records (default: one named like the source's)")]
    = None,
    full: Annotated[bool, typer.Option(help="Read everything, not only what changed")] = False,
    timeout: Timeout = 30,
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """Read the public datasets of another CKAN into the catalog (only changes after the first
    run); records deleted at the source are removed."""
    from rich.progress import Progress

    from hub.api.ckan.client import Remote
    from hub.api.ckan.harvest import harvest as run_harvest

    catalog, site = _site(root, store, None, needed=False)
    with Progress(console=console.rich, transient=True) as bars:
        task = bars.add_task("harvesting", total=None)
        try:
            report = run_harvest(catalog, site, Remote(url, None, timeout), org, full,
                                 lambda done, total: bars.update(task, completed=done,
                                                                 total=total))
        except HubError as exc:
            fail(str(exc))
    console.print(f"Harvested {escape(report.source)} "
                  f"({'changes since ' + report.since if report.since else 'everything'}): "
                  + ", ".join(f"{len(v)} {k}" for k, v in report.outcomes.items())
                  + f", {len(report.failed)} failed", highlight=False)
    for name, reason in report.failed:
        console.print(f"  failed {escape(name)}: {escape(reason)}", highlight=False)
    if report.failed:
        raise typer.Exit(1)
