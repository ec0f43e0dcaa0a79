"""The `hub` command: ingest, inspect and serve the district's data.

The commands import what they work with (pyarrow, the store, the catalog, the server) when
they run, so `hub --help` and shell completion start in a fraction of a second.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, err, escape, fail, new_table, settings_for
from hub.errors import HubError, PipelineError

if TYPE_CHECKING:
    import socket

    from hub.config import Settings
    from hub.ingest.pipeline import Pipeline
    from hub.ingest.run import RunReport
    from hub.web.server import Limits

app = typer.Typer(help="District data hub: ingest, version, catalogue and serve open data.",
                  no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None)  # plain help: rich's Markdown (pygments) costs ~0.1 s
def _pipelines(settings: Settings, names: list[str]) -> list[Pipeline]:
    from hub.ingest.pipeline import load_pipeline

    if not names:
        fail("name pipelines (files or dataset names) or use --all")
    out = []
    for name in names:
        path = Path(name)
        if not path.suffix:
            from hub.ingest.definitions import pipeline_of
            from hub.store.versions import Store

            out.append(pipeline_of(settings, Store(settings.store, settings.database()), name))
            continue
        out.append(load_pipeline(path, settings.schemas_dir))
    return out


@app.command("ingest")
def ingest_cmd(
    pipelines: Annotated[list[str] | None, typer.Argument(
        help="Pipeline files or dataset names (pipelines/<name>.yaml)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every pipeline in pipelines/")] = False,
    force: Annotated[bool, typer.Option(
        help="Make a new version even if nothing changed, and even if the run lost more rows "
             "than the guard allows (max_*_share)")] = False,
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """Run pipelines: read, validate, reproject and commit each as a new version."""
    from hub.cli.progress import Bars, progress
    from hub.ingest import batch
    from hub.store.versions import Store

    settings = settings_for(root, store)
    try:
        runs = (batch.everything(settings) if all_
                else batch.around(settings, _pipelines(settings, pipelines or [])))
    except HubError as exc:
        fail(str(exc))
    if not runs.runs:
        fail(f"no pipelines in {settings.pipelines_dir}")
    for warning in runs.warnings:
        err.print(f"[yellow]Warning:[/] {escape(warning)}", highlight=False)
    with progress() as bars:
        reports = batch.run(runs, Store(settings.store, settings.database()), settings,
                            force=force, progress=lambda: Bars(bars))
    _summary(reports)
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


def _summary(reports: list[RunReport]) -> None:
    table = new_table(title="Ingest summary", title_justify="left")
    for col in ("dataset", "status", "read", "valid", "quarant.", "skipped", "repaired",
                "reproj.", "version", "s"):
        table.add_column(col, justify="left" if col in ("dataset", "status") else "right",
                         no_wrap=True)
    colours = {"committed": "green", "unchanged": "cyan", "failed": "red", "valid": "green",
               "invalid": "yellow"}
    for r in reports:
        table.add_row(r.dataset, f"[{colours.get(r.status, 'white')}]{r.status}[/]",
                      f"{r.rows_read:,}", f"{r.rows_valid:,}", f"{r.rows_quarantined:,}",
                      f"{r.rows_outside + r.rows_filtered:,}", f"{r.repaired:,}",
                      f"{r.reprojected:,}", "" if r.version is None else f"v{r.version}",
                      f"{r.duration:.2f}")
    console.print(table)
    for r in reports:
        for note in r.notes:
            console.print(f"[dim]{r.dataset}: {escape(note)}[/]", highlight=False)
        if r.error:
            err.print(f"[bold red]{r.dataset} failed:[/] {escape(r.error)}", highlight=False)
        elif r.violations:
            err.print(f"[yellow]{r.dataset}: {r.violation_count:,} violation(s)[/]")
            for v in r.violations[:10]:
                err.print(f"  {v}", highlight=False, markup=False)
            if r.violation_count > 10:
                err.print(f"  … {r.violation_count - 10:,} more (see `hub quarantine "
                          f"{r.dataset}`)", highlight=False)


@app.command()
def validate(
    file: Annotated[Path | None, typer.Argument(
        help="The file to check (with --pipeline: instead of the pipeline's source)")] = None,
    pipeline: Annotated[str | None, typer.Option(
        help="Pipeline file or dataset name: check exactly as `hub ingest` would (reader "
             "options, mapping, casts, filter, geometry, CRS, extent)")] = None,
    schema: Annotated[str | None, typer.Option(
        help="Schema name (schemas/<name>.json) or path, without a pipeline")] = None,
    format: Annotated[str | None, typer.Option(help="Input format if not clear from the name")]
    = None,
    crs: Annotated[str | None, typer.Option(help="Source CRS, e.g. EPSG:25833")] = None,
    lon: Annotated[str | None, typer.Option(help="Column with x / longitude")] = None,
    lat: Annotated[str | None, typer.Option(help="Column with y / latitude")] = None,
    wkt: Annotated[str | None, typer.Option(help="Column with WKT geometry")] = None,
    root: RootOpt = None,
) -> None:
    """Dry run: check a file against a pipeline or a schema, list every violation; writes
    nothing."""
    settings = settings_for(root, None)
    if (pipeline is None) == (schema is None):
        fail("give --pipeline (a pipeline file or dataset name) or --schema")
    if pipeline is not None:
        if any((format, crs, lon, lat, wkt)):
            fail("with --pipeline, the pipeline sets format, CRS and geometry; drop "
                 "--format/--crs/--lon/--lat/--wkt")
        try:
            [chosen] = _pipelines(settings, [pipeline])
            report = _validate(settings, _with_file(chosen, file) if file else chosen)
        except HubError as exc:
            fail(str(exc))
    else:
        if file is None:
            fail("name the FILE to check against --schema")
        report = _validate_with_schema(settings, file, str(schema), format, crs, lon, lat, wkt)
    report.dataset = file.name if file else report.dataset
    _summary([report])
    if report.status != "valid":
        raise typer.Exit(1)


def _validate(settings: Settings, pipeline: Pipeline) -> RunReport:
    from hub.cli.progress import Bars, progress
    from hub.ingest.run import validate_file

    with progress() as bars:
        return validate_file(pipeline, settings, Bars(bars))


def _with_file(pipeline: Pipeline, file: Path) -> Pipeline:
    """The pipeline reading `file` with its one source's settings."""
    if len(pipeline.sources) != 1:
        raise PipelineError(f"{pipeline.path}: the pipeline has {len(pipeline.sources)} sources; "
                            "validate them all by leaving out FILE")
    source = replace(pipeline.sources[0], kind="path", location=str(file.resolve()))
    return replace(pipeline, sources=(source,))


def _validate_with_schema(settings: Settings, file: Path, schema: str, format: str | None,
                          crs: str | None, lon: str | None, lat: str | None,
                          wkt: str | None) -> RunReport:
    """A one-source pipeline made from the command line's options."""
    import tempfile

    from hub.ingest.pipeline import load_pipeline

    spec: dict[str, object] = {"path": str(file.resolve())}
    if format:
        spec["format"] = format
    if crs:
        spec["crs"] = crs
    if lon or lat:
        spec["geometry"] = {"lon": lon, "lat": lat}
    elif wkt:
        spec["geometry"] = {"wkt": wkt}
    schema_ref = schema if "/" not in schema else str(Path(schema).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "validate.yaml"
        path.write_text(json.dumps({"dataset": "validate", "title": file.name,
                                    "organization": "-", "schema": schema_ref,
                                    "on_error": "quarantine", "sources": [spec]}))
        try:
            pipeline = load_pipeline(path, settings.schemas_dir)
        except HubError as exc:
            fail(str(exc))
        return _validate(settings, pipeline)


@app.command()
def datasets(root: RootOpt = None, store: StoreOpt = None) -> None:
    """List the datasets in the store with their current version."""
    from hub.store.versions import Store

    settings = settings_for(root, store)
    target = Store(settings.store, settings.database())
    table = new_table(title="Datasets", title_justify="left")
    for col in ("dataset", "title", "organization", "access", "version", "rows", "updated"):
        table.add_column(col)
    for d in target.datasets():
        current = target.current(d.name)
        table.add_row(d.name, d.title, d.organization, d.access,
                      f"v{d.current_version}" if d.current_version else "-",
                      f"{current.rows:,}" if current else "-", d.updated)
    console.print(table)


@app.command()
def history(dataset: str, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Show every version of a dataset and the runs that made none."""
    from hub.store.versions import Store

    settings = settings_for(root, store)
    target = Store(settings.store, settings.database())
    events = target.events(dataset)
    try:
        current = target.dataset(dataset).current_version
        versions = target.versions(dataset)
    except HubError as exc:
        if not events:  # a dataset whose runs all failed has events but no versions
            fail(str(exc))
        current, versions = None, []
    table = new_table(title=f"History of {dataset}", title_justify="left")
    for col in ("version", "", "finished", "rows", "quarantined", "source CRS", "checksum",
                "by", "state"):
        table.add_column(col)
    for v in versions:
        table.add_row(f"v{v.version}", "●" if v.version == current else "", v.finished,
                      f"{v.rows:,}", f"{v.quarantined:,}", ", ".join(v.source_crs),
                      v.checksum[:12], v.run_by,
                      "purged" if v.purged else "broken" if v.broken else "kept")
    console.print(table)
    if not versions:
        console.print(f"{dataset} has no version yet.")
    from hub.ingest.derived import lineage

    derived = [(v, inputs) for v in versions if (inputs := lineage(v))]
    if derived:
        console.print("Derived from (dataset, version, checksum):")
        for v, inputs in derived:
            console.print(f"  v{v.version}: " + ", ".join(
                f"{i['dataset']} v{i['version']} ({i['checksum'][:12]})" for i in inputs),
                highlight=False, markup=False)
    events = [e for e in events if e["kind"] != "commit"][:10]
    if events:
        console.print("Other events (newest first):")
        for e in events:
            version = f" v{e['version']}" if e["version"] else ""
            console.print(f"  {e['at']}  {e['kind']}{version}  {e['who']}  "
                          f"{e['detail'].splitlines()[0] if e['detail'] else ''}",
                          highlight=False, markup=False)


@app.command()
def rollback(dataset: str, version: int, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Serve an earlier version of a dataset again, then derive again the datasets derived
    from it (as after a new version)."""
    from hub.cli.progress import Bars, progress
    from hub.ingest import batch
    from hub.ingest.run import current_user
    from hub.store.versions import Store

    settings = settings_for(root, store)
    target = Store(settings.store, settings.database())
    try:
        v = target.rollback(dataset, version, who=current_user())
    except HubError as exc:
        fail(str(exc))
    console.print(f"{dataset}: now serving v{v.version} ({v.rows:,} rows, from {v.finished})")
    try:
        derived = batch.derived_from(settings, target, dataset)
    except HubError as exc:
        err.print(f"[yellow]Warning:[/] the datasets derived from {escape(dataset)} were not "
                  f"derived again: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    for warning in derived.warnings:
        err.print(f"[yellow]Warning:[/] {escape(warning)}", highlight=False)
    if not derived.runs:
        return
    with progress() as bars:
        reports = batch.run(derived, target, settings, progress=lambda: Bars(bars))
    _summary(reports)
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


@app.command()
def quarantine(
    dataset: str,
    version: Annotated[int | None, typer.Option(help="Version (default: current)")] = None,
    export: Annotated[Path | None, typer.Option(help="Write all quarantined rows to a CSV "
                                                "file")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show")] = 20,
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """List (or export) the rows a run set aside, with their errors."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from hub.problem_codes import CODES_COLUMN
    from hub.store.versions import QUARANTINE, Store

    settings = settings_for(root, store)
    target = Store(settings.store, settings.database())
    try:
        v = target.version(dataset, version) if version else target.current(dataset)
    except HubError as exc:
        fail(str(exc))
    if v is None:
        fail(f"dataset {dataset!r} has no version yet")
    if not v.exists(QUARANTINE):
        console.print(f"{dataset} v{v.version}: no quarantined rows")
        return
    rows = pq.read_table(v.source(QUARANTINE))
    if CODES_COLUMN in rows.column_names:  # the problems as data, for the workspace
        rows = rows.drop_columns([CODES_COLUMN])
    if export:
        pacsv.write_csv(rows, export)
        console.print(f"{rows.num_rows:,} quarantined rows written to {export}")
        return
    table = new_table(title=f"Quarantine of {dataset} v{v.version}: {rows.num_rows:,} rows",
                      title_justify="left")
    for col in ("file", "row", "errors"):
        table.add_column(col)
    for r in rows.slice(0, limit).to_pylist():
        table.add_row(escape(r["_file"]), str(r["_row"]), escape(r["_errors"]))
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, envvar="HUB_WORKERS",
        help="Processes serving the one port (e.g. one per core)")] = 1,
    root: RootOpt = None, store: StoreOpt = None,
) -> None:
    """Run the web server on the current store (limits and access log: see README)."""
    from hub.web import server

    try:  # the server's settings and the port first: a wrong one is refused at once, before
        sock, limits = server.prepare(host, port)  # the project is read and the app built
    except HubError as exc:
        fail(str(exc))
    settings = settings_for(root, store)
    stop = "the server does not start without its catalog; HUB_CATALOG=none serves the " \
        "store by the pipelines' access alone"
    files = f" (files in {settings.storage_url})" if settings.storage_url else ""
    if workers > 1:
        _serve_workers(settings, sock, limits, workers, f"Serving {settings.store}{files} on "
                       f"http://{host}:{port} with {workers} workers", stop)
        return
    from hub.web.app import create_app

    try:  # a catalog that cannot be opened stops the server (access fails closed)
        app = create_app(settings)
    except HubError as exc:
        fail(f"{exc} ({stop})")
    console.print(f"Serving {settings.store}{files} on http://{host}:{port}")
    server.run(app, sock, limits)


def _serve_workers(settings: Settings, sock: socket.socket, limits: Limits, workers: int,
                   serving: str, stop: str) -> None:
    """`hub serve --workers N`: each worker builds its own app after the fork (a database
    connection or thread is never shared), so a broken catalog shows in the workers."""
    from hub.web import server
    from hub.web.app import create_app, preload

    if server.run_workers(lambda: create_app(settings), sock, limits, workers,
                          started=lambda: console.print(serving), preload=preload):
        fail(f"a worker could not start ({stop})")


from hub.cli import accounts as _accounts  # noqa: E402 - the sub-commands register on import
from hub.cli import audit as _audit  # noqa: E402
from hub.cli import backup as _backup  # noqa: E402
from hub.cli import catalog as _catalog  # noqa: E402
from hub.cli import check as _check  # noqa: E402
from hub.cli import db as _db  # noqa: E402
from hub.cli import derived as _derived  # noqa: E402
from hub.cli import exchange as _exchange  # noqa: E402
from hub.cli import jobs as _jobs  # noqa: E402

app.add_typer(_catalog.app, name="catalog")
app.command()(_exchange.publish)
app.command()(_exchange.harvest)
app.command()(_check.check)
app.command("backup")(_backup.backup_cmd)
app.command("restore")(_backup.restore_cmd)
app.add_typer(_accounts.users, name="user")
app.add_typer(_accounts.tokens, name="token")
app.add_typer(_db.app, name="db")
app.command()(_jobs.worker)
app.add_typer(_audit.app, name="audit")
app.add_typer(_derived.app, name="derived")
