"""Derived datasets: a pipeline source that is a DuckDB query over the store's current versions.

    sources:
      - sql: |
          SELECT g.ags, count(*) AS zellen, any_value(g.geometry) AS geometry
          FROM gemeinden g JOIN breitband b USING (ags) GROUP BY g.ags

Tables are datasets, by name; DuckDB's spatial functions are loaded. The query runs on a
connection that sees exactly the views of its inputs and nothing else: no files, no
extensions, no settings (`enable_external_access` off, configuration locked), so it can read
only what the access rule (`hub.access.check_derivation`) allowed. Its result is written as a
GeoParquet file and goes through the same mapping, validation, guard and commit as any other
source. The source's state is its lineage — the query and every input's version and checksum
— so an unchanged query over unchanged inputs makes no new version, and `hub history` and
the catalog (`prov:wasDerivedFrom`) can show where a version came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from hub.access import DataAccess, DerivedInput, access_in_force, check_derivation
from hub.errors import HubError, PipelineError, SourceError, Unavailable
from hub.ingest import allowances
from hub.ingest.allowances import for_input
from hub.ingest.sources import Fetched
from hub.store.geoparquet import geo_metadata

if TYPE_CHECKING:
    import duckdb

    from hub.config import Settings
    from hub.ingest.pipeline import Pipeline, Source
    from hub.store.versions import Store, Version

_LOCKED = {"enable_external_access": False, "autoinstall_known_extensions": False,
           "autoload_known_extensions": False}


# -- reading a query ---------------------------------------------------------------------------

def tables_of(query: str) -> tuple[str, ...]:
    """The datasets a query reads (its table names, without its own CTEs), sorted; raises
    `ValueError` for anything but one SELECT statement or a table of another schema."""
    import duckdb

    con = duckdb.connect(config=dict(_LOCKED))
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    finally:
        con.close()
    if tree.get("error"):
        message = tree.get("error_message", "cannot be read")
        if "Only SELECT" in message:
            message = "only a SELECT query can derive a dataset"
        raise ValueError(message)
    if len(tree["statements"]) != 1:
        raise ValueError(f"one SELECT query, not {len(tree['statements'])} statements")
    tables: set[str] = set()
    ctes: set[str] = set()
    _walk(tree["statements"], tables, ctes)
    return tuple(sorted(tables - ctes))


def _walk(node: Any, tables: set[str], ctes: set[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE":
            if node.get("catalog_name") or node.get("schema_name") not in ("", "main"):
                raise ValueError(f"table {node.get('schema_name')}.{node.get('table_name')}: "
                                 "name datasets without a schema")
            tables.add(node["table_name"])
        for entry in (node.get("cte_map") or {}).get("map", []):
            ctes.add(entry["key"])
        for value in node.values():
            _walk(value, tables, ctes)
    elif isinstance(node, list):
        for value in node:
            _walk(value, tables, ctes)


# -- the pipelines as a graph ------------------------------------------------------------------

def in_order(pipelines: Iterable[Pipeline],
             allowed: frozenset[tuple[str, str]] = frozenset()) -> list[Pipeline]:
    """Pipelines with every input before the pipelines that read it (otherwise by name), after
    checking what can be checked without the store's data: one pipeline per dataset, every
    input is made by a pipeline, there is no cycle, and the access rule holds for the
    pipelines' own levels (`check_static`; `allowed`: the public aggregates admins allowed,
    `hub.ingest.allowances`)."""
    by_name: dict[str, Pipeline] = {}
    for p in pipelines:
        if (other := by_name.setdefault(p.dataset, p)) is not p:
            raise PipelineError(f"{p.path}: dataset: {p.dataset!r} is made by {other.path} "
                                "too; give each pipeline a dataset of its own")
    for p in by_name.values():
        for name in p.inputs:
            if name not in by_name:
                raise PipelineError(f"{p.path}: sources: the query reads {name!r}, but no "
                                    f"pipeline makes a dataset of that name (known: "
                                    f"{', '.join(sorted(by_name))})")
    done: list[Pipeline] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(p: Pipeline, path: list[str]) -> None:
        if state.get(p.dataset) == "done":
            return
        if state.get(p.dataset) == "visiting":
            cycle = [*path[path.index(p.dataset):], p.dataset]
            raise PipelineError(f"{p.path}: derived datasets read each other in a cycle: "
                                f"{' → '.join(cycle)}")
        state[p.dataset] = "visiting"
        for name in p.inputs:
            visit(by_name[name], [*path, p.dataset])
        state[p.dataset] = "done"
        done.append(p)

    for p in sorted(by_name.values(), key=lambda p: p.dataset):
        visit(p, [])
    for p in done:
        check_static(p, by_name, allowed)
    return done


def dependents(names: Iterable[str], pipelines: Iterable[Pipeline]) -> list[Pipeline]:
    """The derived pipelines that read any of `names`, directly or through others, in the order
    they must run (`pipelines` in dependency order, as `in_order` gives them)."""
    changed = set(names)
    out = []
    for p in pipelines:
        if p.dataset not in changed and changed & set(p.inputs):
            out.append(p)
            changed.add(p.dataset)
    return out


def check_static(pipeline: Pipeline, by_name: dict[str, Pipeline],
                 allowed: frozenset[tuple[str, str]] = frozenset()) -> None:
    """The access rule by the pipelines' own levels (at load; the run checks again with the
    levels in force, which the catalog may make stricter)."""
    if not pipeline.inputs:
        return
    inputs = [DerivedInput(name, p.organization,
                           access_in_force(p.access, None, p.organization),
                           p.public_derivatives, for_input(allowed, name))
              for name in pipeline.inputs if (p := by_name[name])]
    level = access_in_force(pipeline.access, None, pipeline.organization)
    try:
        check_derivation(pipeline.dataset, pipeline.organization, level, pipeline.aggregate,
                         inputs)
    except HubError as exc:
        raise PipelineError(f"{pipeline.path}: {exc}") from None


def access_for(settings: Settings) -> DataAccess:
    """The access in force as the server applies it (catalog opened on first use)."""
    if not settings.catalog:
        return DataAccess(None)
    opened: list[Any] = []

    def catalog() -> Any:
        if not opened:
            from hub.catalog import open_catalog

            catalog, vocab, _ = open_catalog(settings)
            opened.append((catalog, vocab))
        return opened[0]

    return DataAccess(catalog)


@dataclass
class Derivation:
    """What a derived run needs besides its pipeline: the other pipelines (whose owners may
    allow public aggregates) and the access in force."""

    pipelines: dict[str, Pipeline]
    access: DataAccess

    @classmethod
    def of(cls, settings: Settings, pipeline: Pipeline, store: Store | None = None
           ) -> Derivation:
        """The pipelines of the derived pipeline's folder (with `store`: and those saved in
        the workspace, and the public aggregates admins allowed) and the settings' access."""
        from hub.ingest.pipeline import discover

        return cls({p.dataset: p for p in discover(pipeline.base_dir, settings.schemas_dir,
                                                   store)},
                   access_for(settings))


# -- running a query ---------------------------------------------------------------------------

def fetch(source: Source, pipeline: Pipeline, store: Store, staging: Path,
          derivation: Derivation, previous: dict[str, Any] | None = None) -> Fetched:
    """Check the inputs, run the query over their current versions and stage the result as
    GeoParquet; an unchanged query over unchanged inputs answers `not_modified` unrun."""
    try:
        inputs = _inputs(source, pipeline, store, derivation)
    except Unavailable:
        raise SourceError(f"{_label(source)}: the catalog cannot be opened, so the access in "
                          "force of the inputs cannot be checked (a derived dataset is never "
                          "made by the pipelines' access alone; `hub catalog list` names the "
                          "problem; HUB_CATALOG=none serves and derives without a catalog)"
                          ) from None
    query_hash = hashlib.sha256(source.location.encode()).hexdigest()
    state = {"query": query_hash,
             "inputs": [{"dataset": v.dataset, "version": v.version, "checksum": v.checksum}
                        for v in inputs]}
    fingerprint = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
    if previous is not None and previous == state:
        return Fetched([], fingerprint, state, not_modified=True)
    folder = staging / "sources" / f"sql-{query_hash[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "result.parquet"
    _run(source, pipeline, inputs, target)
    return Fetched([(target, _label(source))], fingerprint, state)


def _label(source: Source) -> str:
    return source.name or "sql"


def _inputs(source: Source, pipeline: Pipeline, store: Store,
            derivation: Derivation) -> list[Version]:
    """The current versions of the query's inputs, once the access rule allowed them all."""
    from hub.store.integrity import CorruptVersion

    versions, inputs = [], []
    allowed = allowances.allowed(store.db)
    for name in tables_of(source.location):
        held = next((d for d in store.datasets() if d.name == name), None)
        version = store.current(name) if held is not None else None
        if held is None or version is None:
            raise SourceError(f"{_label(source)}: input {name!r} has no current version "
                              f"(ingest it first); {pipeline.dataset!r} was not derived, its "
                              "current version (if any) stays")
        try:
            store.ensure_sound(version)
        except CorruptVersion as exc:
            raise SourceError(f"{_label(source)}: input {name!r}: {exc}; "
                              f"{pipeline.dataset!r} was not derived") from None
        owner = derivation.pipelines.get(name)
        inputs.append(DerivedInput(name, held.organization, derivation.access.of(held),
                                   owner.public_derivatives if owner is not None else (),
                                   for_input(allowed, name)))
        versions.append(version)
    access = derivation.access
    check_derivation(pipeline.dataset, access.organization_id(pipeline.organization),
                     access.of_pipeline(pipeline.dataset, pipeline.access,
                                        pipeline.organization),
                     pipeline.aggregate, inputs)
    return versions


def _run(source: Source, pipeline: Pipeline, inputs: list[Version], target: Path) -> None:
    """Run the query on a connection that sees only its inputs; write the result with the
    schema's geometry field as WKB (GeoParquet, CRS84 unless the query's type names another)."""
    import duckdb

    from hub.store.query import spatial_extension

    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    try:
        con.execute(f"INSTALL '{_quoted(str(spatial_extension()))}'")
        con.execute("LOAD spatial")
        for files in {id(v.files): v.files for v in inputs if v.files}.values():
            files.prepare(con)  # S3: httpfs and its secret, before external access is shut
        for v in inputs:
            con.execute(f'CREATE VIEW "{v.dataset}" AS SELECT * FROM '
                        f"read_parquet('{_quoted(v.location())}')")
        con.execute("SET allowed_paths = ?", [[v.location() for v in inputs]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            relation = con.sql(source.location)
            table = _as_table(con, relation, pipeline)
        except duckdb.Error as exc:
            raise SourceError(f"{_label(source)}: the query failed: "
                              f"{str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    pq.write_table(table, target, compression="zstd")


def _as_table(con: duckdb.DuckDBPyConnection, relation: duckdb.DuckDBPyRelation,
              pipeline: Pipeline) -> pa.Table:
    gfield = pipeline.schema.geometry
    columns, crs = [], None
    for name, kind in zip(relation.columns, relation.types, strict=True):
        text, ref = str(kind), f'"{name}"'
        if text.startswith("GEOMETRY"):
            if gfield is None or name != gfield.name:
                continue  # only the schema's geometry field is read as one
            crs = text[len("GEOMETRY('"):-2] if text.startswith("GEOMETRY('") else None
            columns.append(f"ST_AsWKB({ref}) AS {ref}")
        elif text == "HUGEINT":  # sum() of integers
            columns.append(f"CAST({ref} AS BIGINT) AS {ref}")
        else:
            columns.append(ref)
    if gfield is not None and crs is None and gfield.name not in relation.columns:
        raise SourceError(f"the query gives no column {gfield.name!r} with the geometry "
                          f"(schema {pipeline.schema.name!r}); name it as the schema does")
    table = relation.select(", ".join(columns)).to_arrow_table() if columns else pa.table({})
    if gfield is None or gfield.name not in table.column_names:
        return table
    meta = json.loads(geo_metadata([], None)["geo"])
    meta["primary_column"] = gfield.name
    column = meta["columns"].pop("geometry")
    column.pop("covering", None)
    if crs and crs != "OGC:CRS84":
        column["crs"] = _projjson(crs)
    meta["columns"] = {gfield.name: column}
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          b"geo": json.dumps(meta).encode()})


def _projjson(crs: str) -> dict[str, Any]:
    from pyproj import CRS

    return CRS.from_user_input(crs).to_json_dict()


def _quoted(text: str) -> str:
    return text.replace("'", "''")


# -- lineage -----------------------------------------------------------------------------------

def lineage(version: Version) -> list[dict[str, Any]]:
    """The inputs a version was derived from (dataset, version, checksum); [] for others."""
    out = []
    for state in (version.source_state or {}).values():
        if isinstance(state, dict) and "query" in state:
            out += [dict(i) for i in state.get("inputs", [])]
    return out
