"""A mapping chosen in the workspace, written as a pipeline definition in the YAML of
`pipelines/` (and read back from one, to change it): the dataset's catalog record gives title,
organisation, access and update frequency; the mapping gives the schema, the source (the
uploaded files, or a URL, WFS or OGC API endpoint), the columns and the locations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from hub.catalog.model import Record
from hub.errors import HubError
from hub.ingest.pipeline import FREQUENCIES, POLICIES, Pipeline
from hub.intake.files import Kept
from hub.problem_codes import failing

REMOTE_KINDS = ("url", "wfs", "oapif")
GEOMETRY_KINDS = ("lonlat", "wkt", "native", "none")


class MappingError(HubError):
    """A mapping form that cannot become a pipeline (the field is named)."""

    http_status = 400

    def __init__(self, field_name: str, message: str, code: str, **params: Any):
        self.field = field_name
        super().__init__(f"{field_name}: {message}")
        failing(self, code, **params)  # for the workspace, which says it in its languages


@dataclass
class Remote:
    """A remote source: a file at a URL, a WFS feature type, an OGC API collection."""

    kind: str  # url | wfs | oapif
    url: str
    layer: str = ""  # typename (wfs) or collection (oapif)
    format: str = ""  # of a url: csv, xlsx, geojson, … ('' = from the name)

    def spec(self) -> dict[str, Any]:
        if self.kind == "wfs":
            return {"wfs": {"url": self.url, "typename": self.layer}}
        if self.kind == "oapif":
            return {"oapif": {"url": self.url, "collection": self.layer}}
        return {"url": self.url, **({"format": self.format} if self.format else {})}


@dataclass
class Mapping:
    schema: str
    columns: dict[str, str]  # schema field -> source column
    geometry: str = "none"  # lonlat | wkt | native | none
    lon: str = ""
    lat: str = ""
    wkt: str = ""
    crs: str = ""
    on_error: str = "quarantine"
    options: dict[str, Any] = field(default_factory=dict)


def from_form(fields: dict[str, str], schema_fields: list[str]) -> Mapping:
    """The mapping of the page's form: `schema`, `map.<field>`, `geometry`, `lon`, `lat`,
    `wkt`, `crs`, `on_error` and `blatt` (a workbook's sheet: the source's option `sheet`)."""
    mapping = Mapping(
        schema=fields.get("schema", "").strip(),
        columns={name: fields[f"map.{name}"] for name in schema_fields
                 if fields.get(f"map.{name}", "").strip()},
        geometry=fields.get("geometry", "none"), lon=fields.get("lon", "").strip(),
        lat=fields.get("lat", "").strip(), wkt=fields.get("wkt", "").strip(),
        crs=fields.get("crs", "").strip(), on_error=fields.get("on_error", "quarantine"))
    if sheet := fields.get("blatt", "").strip():
        mapping.options["sheet"] = sheet
    if not mapping.schema:
        raise MappingError("schema", "choose the table schema of the dataset",
                           "mapping.schema")
    if mapping.geometry not in GEOMETRY_KINDS:
        raise MappingError("geometry", f"{mapping.geometry!r} is not one of "
                           f"{', '.join(GEOMETRY_KINDS)}", "mapping.choice", field="geometry",
                           value=mapping.geometry, allowed=list(GEOMETRY_KINDS))
    if mapping.on_error not in POLICIES:
        raise MappingError("on_error", f"{mapping.on_error!r} is not one of "
                           f"{', '.join(POLICIES)}", "mapping.choice", field="on_error",
                           value=mapping.on_error, allowed=list(POLICIES))
    if mapping.geometry == "lonlat" and not (mapping.lon and mapping.lat):
        raise MappingError("lon", "choose the columns of both coordinates",
                           "mapping.coordinates")
    if mapping.geometry == "wkt" and not mapping.wkt:
        raise MappingError("wkt", "choose the column with the WKT geometry", "mapping.wkt")
    if mapping.geometry in ("lonlat", "wkt") and not mapping.crs:
        raise MappingError("crs", "give the coordinate reference system, e.g. EPSG:25833",
                           "mapping.crs")
    return mapping


def definition(dataset: str, record: Record, mapping: Mapping, files: list[Kept],
               remote: Remote | None) -> str:
    """The pipeline YAML (checked afterwards by the ingest's loader when it is saved)."""
    frequency = record.frequency.lower()
    doc: dict[str, Any] = {
        "dataset": dataset, "title": record.title,
        **({"description": record.description} if record.description else {}),
        **({"attribution": record.attribution} if record.attribution else {}),
        "organization": record.publisher, "access": record.access,
        "update_frequency": frequency if frequency in FREQUENCIES else "irregular",
        "schema": mapping.schema, "on_error": mapping.on_error,
    }
    if remote is not None:
        sources = [{"name": remote.layer or dataset, **remote.spec()}]
    elif files:
        sources = [{"name": f.path.stem, "path": f.name, "format": f.format} for f in files]
    else:
        raise MappingError("source", "upload a file or give a URL, WFS or OGC API endpoint "
                           "first", "mapping.source")
    for source in sources:
        if mapping.options:
            source["options"] = dict(mapping.options)
        if mapping.geometry == "lonlat":
            source["geometry"] = {"lon": mapping.lon, "lat": mapping.lat}
        elif mapping.geometry == "wkt":
            source["geometry"] = {"wkt": mapping.wkt}
        if mapping.geometry != "none" and mapping.crs:
            source["crs"] = mapping.crs
        source["mapping"] = dict(mapping.columns)
    doc["sources"] = sources
    return ("# Saved in the workspace (Arbeitsbereich) of the data hub.\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))


def of_pipeline(pipeline: Pipeline) -> tuple[Mapping, Remote | None]:
    """The mapping and remote source of a saved pipeline (its first source), to change them."""
    source = pipeline.sources[0]
    geometry = ("lonlat" if "lon" in source.geometry else "wkt" if "wkt" in source.geometry
                else "native" if pipeline.schema.geometry is not None else "none")
    mapping = Mapping(pipeline.schema.name, dict(source.mapping), geometry,
                      source.geometry.get("lon", ""), source.geometry.get("lat", ""),
                      source.geometry.get("wkt", ""), source.crs or "", pipeline.on_error,
                      dict(source.options))
    remote = None
    if source.kind in REMOTE_KINDS:
        location = source.location
        if source.kind == "url":
            remote = Remote("url", location, format=source.format or "")
        else:
            remote = Remote(source.kind, location["url"],
                            location.get("typename") or location.get("collection", ""))
    return mapping, remote
