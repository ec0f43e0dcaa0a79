"""`hub catalog`: register, inspect, import, export and assess catalog records."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, escape, fail, new_table, settings_for
from hub.errors import HubError

if TYPE_CHECKING:  # the catalog's modules are imported by the commands that use them
    from hub.catalog.load import Outcome

app = typer.Typer(help="The metadata catalog (DCAT-AP.de): every dataset of the district.",
                  no_args_is_help=True)


def _open(root: Path | None, store: Path | None):
    from hub.catalog import open_catalog

    try:
        return open_catalog(settings_for(root, store))
    except HubError as exc:
        fail(str(exc))


ForceOpt = Annotated[bool, typer.Option(
    "--force", help="In a conflict (a field changed both in the file and elsewhere since the "
                    "last load), let the file win instead of keeping the catalog's value")]


def _report(outcome: Outcome) -> None:
    """Print what a load did: each record it made public that fails the publication
    checklist (a warning: the files are the operator's decision), and conflicts, which make
    the command fail (exit code 1) after the rest was written, so an edit made elsewhere is
    never overwritten silently."""
    console.print(outcome.summary())
    for unready in outcome.unready:
        console.print(escape(str(unready)), style="yellow", highlight=False)
    if outcome.conflicts:
        for conflict in outcome.conflicts:
            console.print(escape(str(conflict)), style="red", highlight=False)
        fail(f"{len(outcome.conflicts)} conflict(s): the catalog's values were kept. Change "
             "the file to agree, or run again with --force to let the file win "
             "(`hub catalog export` writes the catalog's records as YAML)")


@app.command()
def load(force: ForceOpt = False, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Load catalog/datasets/*.yaml (and a minimal record for each pipeline without one).

    Only what changed in a file since it was last loaded is applied; edits made elsewhere
    (CKAN API, `hub catalog edit`) are kept, and a field changed on both sides is reported
    as a conflict (exit code 1). Loading the same files again changes nothing. Each public
    record that fails the publication checklist is named (a warning)."""
    from hub.catalog.load import load_yaml_records, records_from_pipelines, sync
    from hub.ingest.pipeline import discover

    settings = settings_for(root, store)
    catalog, vocab, district = _open(root, store)
    try:
        records = load_yaml_records(settings.root / "catalog" / "datasets", vocab)
        records += records_from_pipelines(discover(settings.pipelines_dir, settings.schemas_dir),
                                          vocab, district.default_license,
                                          {r.record.name for r in records})
        outcome = sync(catalog, records, vocab, force)
    except HubError as exc:
        fail(str(exc))
    _report(outcome)


@app.command("list")
def list_(q: Annotated[str, typer.Option(help="Search words")] = "",
          access: Annotated[str | None, typer.Option(help="public, internal or restricted")]
          = None,
          limit: Annotated[int, typer.Option(help="Rows to show")] = 50,
          root: RootOpt = None, store: StoreOpt = None) -> None:
    """List (or search) records."""
    from hub.access import ADMIN
    from hub.catalog.index import Query

    catalog, _, _ = _open(root, store)
    result = catalog.search(Query(q=q, filters={"access": [access]} if access else {},
                                  rows=limit, sort="relevance" if q else "title"), ADMIN)
    table = new_table(title=f"{result.count} records", title_justify="left")
    for col in ("name", "title", "publisher", "access", "frequency", "data"):
        table.add_column(col)
    for r in result.records:
        data = f"v{r.version} ({r.rows:,} rows)" if r.version else (
            "held" if r.data_held else "metadata only")
        table.add_row(r.name, escape(r.title), r.publisher, r.access, r.frequency, data)
    console.print(table)


@app.command()
def show(name: str, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Show one record as YAML, with the facts of its data's current version."""
    import yaml

    from hub.access import ADMIN
    from hub.catalog.model import ALL_STATES

    catalog, _, _ = _open(root, store)
    record = catalog.get(name, ADMIN, ALL_STATES)
    if record is None:
        fail(f"no record named {name!r}")
    console.print(yaml.safe_dump(record.as_dict(), allow_unicode=True, sort_keys=False),
                  markup=False, highlight=False)


@app.command()
def add(file: Annotated[Path, typer.Argument(help="A record as YAML (see catalog/datasets/)")],
        root: RootOpt = None, store: StoreOpt = None) -> None:
    """Register one record from a YAML file (fails if the name is taken: use edit)."""
    import yaml

    from hub.access import ADMIN, OPERATOR
    from hub.catalog.editing import Editing

    catalog, vocab, _ = _open(root, store)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            fail(f"{file}: a record must be a YAML mapping")
        data.setdefault("name", file.stem)
        data.setdefault("origin", "cli")
        if catalog.get(str(data["name"]), ADMIN) is not None:
            fail(f"{file}: name: {data['name']!r} is already registered "
                 "(use `hub catalog edit`)")
        record = Editing(catalog, vocab, OPERATOR).create(data, str(file))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"{file}: {exc}")
    except HubError as exc:
        fail(str(exc))
    console.print(f"registered {record.name} ({record.id})")


@app.command()
def edit(name: str,
         set_: Annotated[list[str], typer.Option("--set", help="FIELD=VALUE (lists: a,b,c)")],
         root: RootOpt = None, store: StoreOpt = None) -> None:
    """Change fields of a record; the whole record is validated again."""
    from hub.access import ADMIN, OPERATOR
    from hub.catalog.editing import Editing

    catalog, vocab, _ = _open(root, store)
    record = catalog.get(name, ADMIN)
    if record is None:
        fail(f"no record named {name!r}")
    changes = {}
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--set {item!r}: write FIELD=VALUE")
        changes[key.strip()] = value
    try:
        updated = Editing(catalog, vocab, OPERATOR).patch(record, changes, record.revision,
                                                          f"record {name}")
    except HubError as exc:
        fail(str(exc))
    console.print(f"{name}: {'unchanged' if updated.revision == record.revision else 'updated'}")


@app.command()
def export(out: Annotated[Path, typer.Option(help="Folder for one YAML file per record")],
           root: RootOpt = None, store: StoreOpt = None) -> None:
    """Write every record as YAML (the same format `load` and `add` read)."""
    import yaml

    from hub.access import ADMIN
    from hub.catalog.editing import editable

    catalog, _, _ = _open(root, store)
    out.mkdir(parents=True, exist_ok=True)
    names = catalog.names()
    for name in names:
        record = catalog.get(name, ADMIN)
        assert record is not None
        (out / f"{name}.yaml").write_text(
            yaml.safe_dump(editable(record), allow_unicode=True, sort_keys=False),
            encoding="utf-8")
    console.print(f"{len(names)} records written to {out}")


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="Inventory spreadsheet (XLSX or CSV)")],
            sheet: Annotated[str | None, typer.Option(help="Sheet name (XLSX)")] = None,
            apply: Annotated[bool, typer.Option(help="Write the valid rows (default: preview "
                                                "only)")] = False,
            force: ForceOpt = False, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Import a whole inventory ("Dateninventur"): preview every row, then --apply.
    Like `load`, a re-import keeps edits made elsewhere and reports conflicts."""
    from hub.catalog.load import read_inventory, sync

    catalog, vocab, district = _open(root, store)
    try:
        inventory = read_inventory(file, vocab, sheet, district.default_license,
                                   catalog.origins())
    except HubError as exc:
        fail(str(exc))
    table = new_table(title=f"{file.name}: {len(inventory.valid)} valid, "
                        f"{len(inventory.invalid)} with errors", title_justify="left")
    for col in ("row", "name", "title / errors"):
        table.add_column(col)
    for row in inventory.rows:
        if row.record is not None:
            table.add_row(str(row.row), row.record.name, escape(row.record.title))
        else:
            problems = "; ".join(f"{k}: {v}" for k, v in row.errors.items())
            table.add_row(str(row.row), "[red]error[/]", escape(problems))
    console.print(table)
    if inventory.ignored_columns:
        console.print(f"ignored columns: {', '.join(inventory.ignored_columns)}")
    if not apply:
        console.print("preview only: nothing was written (use --apply)")
        return
    if inventory.invalid:
        fail(f"{len(inventory.invalid)} row(s) have errors; nothing was written")
    try:
        outcome = sync(catalog, inventory.incoming, vocab, force)
    except HubError as exc:
        fail(str(exc))
    _report(outcome)


@app.command()
def report(limit: Annotated[int, typer.Option(help="Rows to show")] = 30,
           root: RootOpt = None, store: StoreOpt = None) -> None:
    """Metadata quality and staleness of every record, worst first."""
    from hub.access import ADMIN
    from hub.catalog.quality import report as quality_report

    catalog, vocab, _ = _open(root, store)
    records = [r for n in catalog.names() if (r := catalog.get(n, ADMIN)) is not None]
    table = new_table(title="Quality and freshness (worst first)", title_justify="left")
    for col in ("name", "score", "stale", "age / allowed (days)", "owner", "missing"):
        table.add_column(col)
    for a in quality_report(records, vocab)[:limit]:
        table.add_row(a.name, f"{a.score}", "[red]stale[/]" if a.stale else "ok",
                      f"{a.age_days if a.age_days is not None else '–'} / "
                      f"{a.allowed_days or '–'}", escape(a.owner),
                      escape("; ".join(a.missing[:4]) + (" …" if len(a.missing) > 4 else "")))
    console.print(table)


def _publication(root: Path | None, store: Path | None, name: str):
    from hub.access import ADMIN, OPERATOR
    from hub.catalog.editing import Editing
    from hub.catalog.model import ALL_STATES
    from hub.catalog.publication import Publication, editors_publish

    catalog, vocab, district = _open(root, store)
    record = catalog.get(name, ADMIN, ALL_STATES)
    if record is None:
        fail(f"no record named {name!r}")
    return Publication(Editing(catalog, vocab, OPERATOR), editors_publish(district.raw)), record


@app.command()
def publish(name: str,
            to: Annotated[str, typer.Option("--to", help="internal or public")],
            root: RootOpt = None, store: StoreOpt = None) -> None:
    """Publish a record (draft → internal → public); `public` needs its checklist to pass
    (licence, contact, update frequency, owner, a preview whose version passed validation,
    or for metadata only the access note)."""
    from hub.catalog.publication import stage

    publication, record = _publication(root, store, name)
    try:
        saved = publication.publish(record, to, record.revision)
    except HubError as exc:
        fail(str(exc))
    console.print(f"{name}: {stage(saved)}")


@app.command()
def withdraw(name: str, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Withdraw a record: out of every list and feed; it and its data's versions are kept
    (admins still see them)."""
    publication, record = _publication(root, store, name)
    try:
        publication.withdraw(record, record.revision)
    except HubError as exc:
        fail(str(exc))
    console.print(f"{name}: withdrawn")
