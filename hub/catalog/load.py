"""Registering records in bulk: YAML files in `catalog/datasets/`, and a whole "Dateninventur"
spreadsheet (XLSX or CSV, one row per dataset) with a row-by-row preview before any write."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.catalog.index import Catalog
from hub.catalog.model import Record, RecordInvalid, validate
from hub.catalog.vocab import Vocabularies, fold
from hub.errors import HubError, PipelineError
from hub.ingest.readers import open_source

# Spreadsheet column (as data managers name it) -> record field
INVENTORY_COLUMNS = {
    "bezeichnung": "title", "titel": "title", "name": "title",
    "themenfeld": "themes", "thema": "themes", "kategorie": "themes",
    "abteilung": "publisher", "organisation": "publisher", "dienststelle": "publisher",
    "beschreibung": "description",
    "zugriff": "access", "zugang": "access",
    "aktualisierung": "frequency", "aktualisierungsintervall": "frequency",
    "ansprechpartner": "contact", "kontakt": "contact",
    "lizenz": "license",
    "schlagworte": "keywords", "stichworte": "keywords",
    "gemeinde": "municipality", "raumbezug": "municipality",
    "quellsystem": "source_system", "system": "source_system",
    "datenhaltung": "data_held", "daten im hub": "data_held",
}
REQUIRED_COLUMNS = ("title", "publisher", "description")
CLOSED_LICENSE = "other-closed"  # inventory rows without a licence that are not public


def load_yaml_records(folder: Path, vocab: Vocabularies) -> list[Record]:
    """All records in a folder; fails naming the file (and field) of the first bad one."""
    records, seen = [], {}
    for path in sorted(Path(folder).glob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise PipelineError(f"{path}: YAML syntax error: {exc}") from None
        if not isinstance(data, dict):
            raise PipelineError(f"{path}: a catalog record must be a YAML mapping")
        data.setdefault("name", path.stem)
        record = validate(data, vocab, str(path))
        if record.name in seen:
            raise RecordInvalid(str(path), {"name": f"{record.name!r} is also used by "
                                                    f"{seen[record.name]}"})
        seen[record.name] = path.name
        records.append(record)
    return records


def sync(catalog: Catalog, records: list[Record]) -> dict[str, list[str]]:
    """Upsert records; loading the same files twice changes nothing."""
    outcome: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    for record, result in zip(records, catalog.upsert_many(records), strict=True):
        outcome[result].append(record.name)
    return outcome


@dataclass
class InventoryRow:
    row: int  # the row number in the sheet or file
    record: Record | None
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Inventory:
    """What an import would do: valid records and the rows that cannot be taken."""

    file: str
    rows: list[InventoryRow]
    ignored_columns: list[str]

    @property
    def valid(self) -> list[Record]:
        return [r.record for r in self.rows if r.record is not None]

    @property
    def invalid(self) -> list[InventoryRow]:
        return [r for r in self.rows if r.record is None]


def read_inventory(path: Path, vocab: Vocabularies, sheet: str | int | None = None,
                   default_license: str = "", existing: dict[str, str] | None = None
                   ) -> Inventory:
    """Map an inventory spreadsheet to records without writing anything (the preview).

    `existing` maps the catalog's names to their origin: a row updates the record an earlier
    import made from the same title, but never takes the name of a record registered
    another way (it gets a suffix instead)."""
    name = path.name
    options: dict[str, Any] = {"sheet": sheet} if sheet is not None else {}
    opened = open_source(path, None, options, name, None)
    columns = {c: INVENTORY_COLUMNS.get(fold(c).strip()) for c in opened.columns}
    mapped = {field_ for field_ in columns.values() if field_}
    if missing := [c for c in REQUIRED_COLUMNS if c not in mapped]:
        wanted = {"title": "Bezeichnung", "publisher": "Abteilung", "description": "Beschreibung"}
        raise HubError(f"{name}: the header has no column {', '.join(wanted[m] for m in missing)}"
                       f"; it has: {', '.join(opened.columns)} (wrong sheet or header row?)")
    ignored = [c for c, f in columns.items() if f is None and not c.startswith("column_")]
    taken = {n for n, origin in (existing or {}).items() if origin != "inventory"}
    rows = []
    for batch in opened.stream([c for c, f in columns.items() if f], None, None):
        values = {c: batch.columns[c].to_pylist() for c, f in columns.items() if f}
        numbers = batch.rows(list(range(batch.length))).tolist()
        for i, row_no in enumerate(numbers):
            cells = {columns[c]: (v[i] or "").strip() for c, v in values.items()}
            if not any(cells.values()):
                continue
            data = _inventory_record(cells, vocab, default_license)
            data["name"] = _unique_slug(cells.get("title", ""), taken)
            try:
                record = validate(data, vocab, f"{name}, row {row_no}")
                taken.add(record.name)
                rows.append(InventoryRow(row_no, record))
            except RecordInvalid as exc:
                rows.append(InventoryRow(row_no, None, exc.errors))
    return Inventory(name, rows, ignored)


def _inventory_record(cells: dict[str, str], vocab: Vocabularies,
                      default_license: str) -> dict[str, Any]:
    data: dict[str, Any] = {k: v for k, v in cells.items() if k in (
        "title", "description", "publisher", "access", "frequency", "license", "keywords",
        "source_system") and v}
    data["origin"] = "inventory"
    if cells.get("themes"):
        data["themes"] = [t.strip() for t in re.split(r"[,;/]", cells["themes"]) if t.strip()]
    if not data.get("license"):
        public = (vocab.access.find(data.get("access", "public")) or
                  vocab.access.find("public"))
        data["license"] = default_license if public and public.code == "public" \
            else CLOSED_LICENSE
    if data.get("access") and (term := vocab.access.find(data["access"])) \
            and term.code == "restricted":
        data["restricted_to"] = [data.get("publisher", "")]  # the owner, until named otherwise
    if data.get("source_system", "").lower() in ("excel", "tabelle", "calc"):
        data["source_system"] = "Tabellenkalkulation"
    if cells.get("contact"):
        parts = [p.strip() for p in cells["contact"].split(",")]
        email = next((p for p in parts if "@" in p), "")
        data["contact"] = {"name": ", ".join(p for p in parts if p != email), "email": email}
    if cells.get("municipality"):
        org = vocab.organization(cells["municipality"]) or next(
            (o for o in vocab.organizations.values() if o.kind == "municipality"
             and fold(cells["municipality"]) in fold(o.name)), None)
        data["spatial_ags"] = [org.ags] if org and org.ags else ["?" + cells["municipality"]]
    if cells.get("data_held"):
        data["data_held"] = fold(cells["data_held"]) in ("ja", "yes", "true", "1", "x")
        if not data["data_held"]:
            who = cells.get("publisher", "die zuständige Stelle")
            contact = cells.get("contact", "")
            data["access_note"] = (f"Die Daten liegen bei {who} und werden nicht im Datenhub "
                                   f"gehalten. Anfragen bitte an {contact or who}.")
    return data


def _unique_slug(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", fold(title)).strip("-")[:80] or "datensatz"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def records_from_pipelines(pipelines: list[Any], vocab: Vocabularies, default_license: str,
                           have: set[str]) -> list[Record]:
    """A minimal record for every pipeline dataset the catalog does not describe yet, so
    ingested data is never missing from the catalog (curate it later in catalog/datasets/)."""
    records = []
    for p in pipelines:
        if p.dataset in have:
            continue
        records.append(validate({
            "name": p.dataset, "title": p.title, "description": p.description or p.title,
            "publisher": p.organization, "license": default_license, "access": p.access,
            "frequency": p.update_frequency, "attribution": p.attribution,
            "conforms_to": p.schema.name, "origin": "pipeline"}, vocab, str(p.path)))
    return records
