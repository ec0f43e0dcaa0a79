"""Declarative pipelines: one YAML file per dataset says where data comes from and how to read it.

See the README ("Pipeline format") for a complete example. Loading checks every key, so a typo
in a pipeline is reported with its file and key instead of being silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hub.errors import PipelineError
from hub.schema import TableSchema, load_schema

if TYPE_CHECKING:
    from hub.store.versions import Store

POLICIES = ("reject", "quarantine")
ACCESS_LEVELS = ("public", "internal", "restricted")
FREQUENCIES = (  # EU publications office frequency vocabulary (lower-case names)
    "continuous", "hourly", "daily", "weekly", "biweekly", "monthly", "bimonthly",
    "quarterly", "biannual", "annual", "biennial", "triennial", "irregular", "never", "unknown",
)
OUTSIDE_EXTENT = ("error", "skip", "keep")
SOURCE_KINDS = ("path", "url", "wfs", "oapif", "ckan", "sql")
FORMATS = ("csv", "xlsx", "geojson", "shapefile", "gpkg", "geoparquet", "gtfs", "flatgeobuf")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")

SOURCE_KEYS = {*SOURCE_KINDS, "format", "options", "mapping", "constants", "casts", "geometry",
               "crs", "filter", "name", "outside_extent"}
GUARD_KEYS = ("max_quarantined_share", "max_outside_share", "max_shrink_share")
PIPELINE_KEYS = {"dataset", "title", "description", "organization", "access", "update_frequency",
                 "schema", "on_error", "outside_extent", "source", "sources", "retention",
                 "attribution", "aggregate", "public_derivatives", *GUARD_KEYS}
SQL_KEYS = {"sql", "name", "mapping", "constants", "casts", "filter", "outside_extent"}
REMOTE_KEYS = {  # keys of a remote source's mapping: required first, then optional
    "wfs": (("url", "typename"), ("page_size", "output_format", "srs_name", "sort_by")),
    "oapif": (("url", "collection"), ("page_size",)),
    "ckan": (("url", "resource_id"), ()),
}


@dataclass(frozen=True)
class Source:
    """One input of a pipeline: where it is, how to read it, how its columns map to the schema."""

    kind: str  # path | url | wfs | oapif | ckan | sql
    location: Any  # path/glob string, URL string, query (sql), or a dict for wfs/oapif/ckan
    format: str | None = None  # None: decided from the file name or content
    options: dict[str, Any] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)  # schema field <- source column
    constants: dict[str, Any] = field(default_factory=dict)  # schema field <- fixed value
    casts: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-field parse options
    geometry: dict[str, str] = field(default_factory=dict)  # {lon, lat} | {wkt} | {} = native
    crs: str | None = None
    filter: dict[str, list[Any]] = field(default_factory=dict)  # source column -> kept values
    name: str = ""
    outside_extent: str | None = None  # overrides the pipeline's setting for this source
    key_columns: tuple[str, ...] = ()  # source columns of the schema's key (stable paging order)
    inputs: tuple[str, ...] = ()  # sql: the datasets the query reads

    def describe(self) -> str:
        return self.name or (self.location if isinstance(self.location, str)
                             else json.dumps(self.location, sort_keys=True))


@dataclass(frozen=True)
class Pipeline:
    """A dataset's ingest definition, as loaded from `pipelines/<dataset>.yaml`."""

    path: Path
    dataset: str
    title: str
    organization: str
    schema: TableSchema
    sources: tuple[Source, ...]
    access: str = "internal"
    update_frequency: str = "irregular"
    on_error: str = "reject"
    outside_extent: str = "error"
    description: str = ""
    retention: int | None = None
    attribution: str = ""  # source credits that must be shown with the data (licence terms)
    guard: dict[str, float] = field(default_factory=dict)  # max_*_share keys given in the file
    digest: str = ""  # hash of the pipeline and its schema: a change makes a new version
    aggregate: str | None = None  # "public": a public derived dataset of non-public inputs
    public_derivatives: tuple[str, ...] = ()  # derived datasets that may be public aggregates
    inputs: tuple[str, ...] = ()  # datasets its `sql:` sources read (hub.ingest.derived)

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_pipeline(path: Path, schemas_dir: Path | None = None) -> Pipeline:
    """Load and check one pipeline file; every error names the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"pipeline file not found: {path}") from None
    except UnicodeDecodeError:
        raise PipelineError(f"{path}: pipeline files must be UTF-8") from None
    return parse_pipeline(text, path, schemas_dir)


def parse_pipeline(text: str, path: Path, schemas_dir: Path | None = None) -> Pipeline:
    """Check a pipeline's YAML text as if it were the file `path` (relative source paths and
    schema paths are taken from its folder); every error names `path` and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: YAML syntax error: {exc}") from None
    if not isinstance(raw, dict):
        raise PipelineError(f"{path}: a pipeline must be a YAML mapping")

    def fail(key: str, message: str) -> PipelineError:
        return PipelineError(f"{path}: {key}: {message}")

    if unknown := set(raw) - PIPELINE_KEYS:
        raise fail(", ".join(sorted(unknown)), f"unknown key(s); allowed: {sorted(PIPELINE_KEYS)}")
    dataset = raw.get("dataset") or path.stem
    if not isinstance(dataset, str) or not SLUG.match(dataset):
        raise fail("dataset", f"{dataset!r} must be a slug (lower-case letters, digits, - and _)")
    for key, allowed in (("access", ACCESS_LEVELS), ("update_frequency", FREQUENCIES),
                         ("on_error", POLICIES), ("outside_extent", OUTSIDE_EXTENT)):
        if key in raw and raw[key] not in allowed:
            raise fail(key, f"{raw[key]!r} is not one of {', '.join(allowed)}")
    for key in ("title", "organization", "schema"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise fail(key, "is required (a non-empty string)")
    retention = raw.get("retention")
    if retention is not None and (not isinstance(retention, int) or retention < 1):
        raise fail("retention", "must be a whole number of versions to keep (at least 1)")
    guard = {key: raw[key] for key in GUARD_KEYS if key in raw}
    for key, share in guard.items():
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise fail(key, f"{share!r} must be a share between 0 and 1 (e.g. 0.25 for 25 %)")

    schema_path = _resolve_schema(raw["schema"], path, schemas_dir)
    schema = load_schema(schema_path)
    if "source" in raw and "sources" in raw:
        raise fail("sources", "give either 'source' or 'sources', not both")
    specs = raw.get("sources", [raw["source"]] if "source" in raw else None)
    if not isinstance(specs, list) or not specs:
        raise fail("sources", "at least one source is required")
    sources = tuple(_parse_source(s, i, fail, schema) for i, s in enumerate(specs, 1))
    if "outside_extent" in raw and schema.geometry is None:
        raise fail("outside_extent", f"schema {schema.name!r} has no geometry field, so there "
                   "is no location to check against the district; remove the key")

    inputs = tuple(sorted({t for src in sources if src.kind == "sql" for t in src.inputs}))
    if dataset in inputs:
        raise fail("sources", f"the query reads {dataset!r}, the dataset it makes")
    aggregate = raw.get("aggregate")
    if aggregate is not None and (aggregate != "public" or raw.get("access") != "public"
                                  or not inputs):
        raise fail("aggregate", f"{aggregate!r}: the only value is public, for a derived "
                   "dataset (a sql: source) whose access is public")
    derivatives = raw.get("public_derivatives", [])
    if not isinstance(derivatives, list) or not all(
            isinstance(d, str) and SLUG.match(d) for d in derivatives):
        raise fail("public_derivatives", "must be a list of dataset names (the derived "
                   "datasets that may publish aggregates of this one)")

    digest = hashlib.sha256(
        json.dumps([raw, schema.as_dict()], sort_keys=True, default=str).encode()
    ).hexdigest()
    return Pipeline(
        path=path, dataset=dataset, title=raw["title"].strip(),
        organization=raw["organization"].strip(), schema=schema, sources=sources,
        access=raw.get("access", "internal"),
        update_frequency=raw.get("update_frequency", "irregular"),
        on_error=raw.get("on_error", "reject"),
        outside_extent=raw.get("outside_extent", "error"),
        description=str(raw.get("description", "")).strip(),
        retention=retention, attribution=str(raw.get("attribution", "")).strip(),
        guard={k: float(v) for k, v in guard.items()}, digest=digest,
        aggregate=aggregate, public_derivatives=tuple(derivatives), inputs=inputs,
    )


def _resolve_schema(ref: str, pipeline_path: Path, schemas_dir: Path | None) -> Path:
    """`schema: care_locations` looks in schemas/; a path is taken relative to the pipeline."""
    if "/" in ref or ref.endswith((".json", ".yaml", ".yml")):
        return (pipeline_path.parent / ref).resolve()
    base = schemas_dir or pipeline_path.parent.parent / "schemas"
    for ext in (".json", ".yaml", ".yml"):
        if (candidate := base / f"{ref}{ext}").exists():
            return candidate
    raise PipelineError(f"{pipeline_path}: schema: no schema named {ref!r} in {base}")


def _parse_source(spec: Any, index: int, fail: Any, schema: TableSchema) -> Source:
    key = f"sources[{index}]"
    if not isinstance(spec, dict):
        raise fail(key, "must be a mapping")
    if unknown := set(spec) - SOURCE_KEYS:
        raise fail(key, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(SOURCE_KEYS)}")
    kinds = [k for k in SOURCE_KINDS if k in spec]
    if len(kinds) != 1:
        raise fail(key, f"name exactly one of {', '.join(SOURCE_KINDS)}")
    kind = kinds[0]
    location = spec[kind]
    inputs: tuple[str, ...] = ()
    if kind == "sql":
        if unknown := set(spec) - SQL_KEYS:
            raise fail(key, f"unknown key(s) {sorted(unknown)} for a sql: source; allowed: "
                       f"{sorted(SQL_KEYS)} (its geometry is the query's column named as the "
                       "schema's geometry field)")
        if not isinstance(location, str) or not location.strip():
            raise fail(f"{key}.sql", "must be a query (a string)")
        from hub.ingest.derived import tables_of

        try:
            inputs = tables_of(location)
        except ValueError as exc:
            raise fail(f"{key}.sql", str(exc)) from None
        if not inputs:
            raise fail(f"{key}.sql", "the query reads no dataset (name datasets as tables)")
    if kind in ("path", "url") and not isinstance(location, str):
        raise fail(f"{key}.{kind}", "must be a string")
    if kind == "url" and not str(location).startswith(("http://", "https://")):
        raise fail(f"{key}.url", "must start with http:// or https://")
    if kind in REMOTE_KEYS:
        needed, optional = REMOTE_KEYS[kind]
        if not isinstance(location, dict) or any(not location.get(n) for n in needed):
            raise fail(f"{key}.{kind}", f"needs {' and '.join(needed)}")
        if unknown := set(location) - {*needed, *optional}:
            raise fail(f"{key}.{kind}", f"unknown key(s) {sorted(unknown)}; allowed: "
                       f"{', '.join([*needed, *optional])}")
        page_size = location.get("page_size", 1)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise fail(f"{key}.{kind}.page_size", "must be a whole number of features (>= 1)")
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        raise fail(f"{key}.options", "must be a mapping of reader options")
    if options.get("swapped_axes", "error") not in ("error", "fix"):
        raise fail(f"{key}.options.swapped_axes", "must be error or fix")
    fmt = "geoparquet" if kind == "sql" else spec.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise fail(f"{key}.format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    mapping = spec.get("mapping") or {}
    constants = spec.get("constants") or {}
    casts = spec.get("casts") or {}
    field_names = {f.name for f in schema.columns}
    gfield = schema.geometry
    for part, names in (("mapping", mapping), ("constants", constants), ("casts", casts)):
        if not isinstance(names, dict):
            raise fail(f"{key}.{part}", "must be a mapping of schema field names")
        if gfield is not None and gfield.name in names:
            raise fail(f"{key}.{part}", f"{gfield.name!r} is the geometry field of schema "
                       f"{schema.name!r}; give its source columns with `geometry:` "
                       "({lon, lat} or {wkt}) and its CRS with `crs:`")
        if unknown := set(names) - field_names:
            raise fail(f"{key}.{part}", f"{sorted(unknown)} not in schema {schema.name!r} "
                       f"(its fields: {', '.join(sorted(field_names))})")
    if bad := [f for f, c in mapping.items() if not isinstance(c, str) or not c.strip()]:
        raise fail(f"{key}.mapping", f"{sorted(bad)}: give the source column's name")
    if both := set(mapping) & set(constants):
        raise fail(f"{key}.constants", f"{sorted(both)} also mapped to a source column in "
                   "`mapping:`; give each field either a column or a constant")
    for name, parse in casts.items():
        try:
            schema.field(name).with_options(parse or {})
        except PipelineError as exc:
            raise fail(f"{key}.casts", str(exc)) from None
    geometry = spec.get("geometry") or {}
    if geometry and (not isinstance(geometry, dict)
                     or set(geometry) not in ({"lon", "lat"}, {"wkt"})
                     or not all(isinstance(c, str) and c for c in geometry.values())):
        raise fail(f"{key}.geometry", "use {lon: COLUMN, lat: COLUMN} or {wkt: COLUMN}")
    if gfield is None:  # nothing in the schema would receive these: refuse, never drop them
        ignored = [k for k in ("geometry", "crs", "outside_extent") if spec.get(k) is not None]
        ignored += ["options.swapped_axes"] if "swapped_axes" in options else []
        if ignored:
            raise fail(f"{key} ({_label(spec, kind)})",
                       f"{', '.join(ignored)} given, but schema {schema.name!r} has no geometry "
                       "field, so the locations would be dropped; add a field of type geojson "
                       "to the schema or remove the key(s)")
    outside = spec.get("outside_extent")
    if outside is not None and outside not in OUTSIDE_EXTENT:
        raise fail(f"{key}.outside_extent",
                   f"{outside!r} is not one of {', '.join(OUTSIDE_EXTENT)}")
    flt = spec.get("filter") or {}
    if not isinstance(flt, dict):
        raise fail(f"{key}.filter", "must map source columns to kept value(s)")
    return Source(
        kind=kind, location=location, format=fmt, options=dict(options),
        mapping={str(k): str(v) for k, v in mapping.items()}, constants=dict(constants),
        casts={k: dict(v or {}) for k, v in casts.items()}, geometry=dict(geometry),
        crs=str(spec["crs"]) if spec.get("crs") is not None else None,
        filter={str(k): v if isinstance(v, list) else [v] for k, v in flt.items()},
        name=str(spec.get("name", "")), outside_extent=outside,
        key_columns=tuple(str(mapping.get(f, f)) for f in _key_fields(schema)),
        inputs=inputs,
    )


def _label(spec: dict[str, Any], kind: str) -> str:
    """How an error names a source: its `name:`, else its location."""
    if spec.get("name"):
        return str(spec["name"])
    location = spec[kind]
    return location if isinstance(location, str) else json.dumps(location, sort_keys=True)


def _key_fields(schema: TableSchema) -> tuple[str, ...]:
    """The schema's primary key, else its first required unique field, else nothing."""
    if schema.primary_key:
        return schema.primary_key
    return next(((f.name,) for f in schema.columns
                 if f.constraints.get("unique") and f.constraints.get("required")), ())


def discover(pipelines_dir: Path, schemas_dir: Path | None = None,
             store: Store | None = None) -> list[Pipeline]:
    """All pipelines in a folder — and, given the `store`, the definitions saved in the
    workspace (`hub.ingest.definitions`) and the public aggregates admins allowed
    (`hub.ingest.allowances`) — each after the datasets it derives from, otherwise
    sorted by dataset name (see `hub.ingest.derived.in_order`: inputs, cycles and access are
    checked). A dataset with a file in the folder is defined by that file: a saved definition
    under the same name is not used (the workspace refuses to save one)."""
    from hub.ingest.derived import in_order

    paths = sorted(Path(pipelines_dir).glob("*.y*ml"))
    found = [load_pipeline(p, schemas_dir) for p in paths]
    if store is None:
        return in_order(found)
    from hub.ingest import allowances
    from hub.ingest.definitions import Definitions

    named = {p.dataset for p in found}
    found += [p for p in Definitions(store, pipelines_dir, schemas_dir).pipelines()
              if p.dataset not in named]
    return in_order(found, allowances.allowed(store.db))
