"""Registering records in bulk: YAML files in `catalog/datasets/`, and a whole "Dateninventur"
spreadsheet (XLSX or CSV, one row per dataset) with a row-by-row preview before any write."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from hub.access import ADMIN
from hub.catalog.checklist import Item, missing
from hub.catalog.editing import audited
from hub.catalog.index import Catalog
from hub.catalog.model import ALL_STATES, Record, RecordInvalid, validate
from hub.catalog.vocab import Vocabularies
from hub.db.schema import catalog_loads, catalog_records
from hub.errors import HubError, PipelineError
from hub.ingest.readers import open_source
from hub.store.versions import now
from hub.text import fold, slug

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


def load_yaml_records(folder: Path, vocab: Vocabularies) -> list[Incoming]:
    """All records in a folder; fails naming the file (and field) of the first bad one."""
    records: list[Incoming] = []
    seen: dict[str, str] = {}
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
        records.append(Incoming(record, str(path)))
    return records


@dataclass(frozen=True)
class Incoming:
    """A record as a load brings it, and the file (and row) it comes from."""

    record: Record
    source: str
    only_new: bool = False  # a fallback (a pipeline's minimal record): never changes a record


@dataclass(frozen=True)
class Conflict:
    """A field changed both in its file and elsewhere (API, CLI) since it was last loaded."""

    source: str
    name: str
    field: str
    incoming: Any  # the file's value
    current: Any  # the catalog's value, which is kept

    def __str__(self) -> str:
        return (f"{self.source}: {self.name}: {self.field}: the file says "
                f"{_shown(self.incoming)}, the catalog has {_shown(self.current)} "
                "(changed elsewhere since the last load; kept)")


@dataclass(frozen=True)
class Unready:
    """A record a load made public that fails the publication checklist
    (`hub.catalog.checklist`): named, so the operator completes it or makes it internal."""

    source: str
    name: str
    missing: list[Item]

    def __str__(self) -> str:
        return (f"{self.source}: {self.name}: public although the publication checklist "
                f"misses {', '.join(item.label for item in self.missing)}")


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    unready: list[Unready] = field(default_factory=list)

    def summary(self) -> str:
        counts = f"{len(self.created)} created, {len(self.updated)} updated, " \
                 f"{len(self.unchanged)} unchanged"
        if self.unready:
            counts += f", {len(self.unready)} public without passing the checklist"
        return counts + (f", {len(self.conflicts)} conflict(s)" if self.conflicts else "")


# What loading last wrote into each record (by record id), field by field, in the table
# `catalog_loads` (hub.db.schema): the common base of a three-way merge between the file and
# the catalog. A field in conflict is left out until the conflict is resolved, so it is
# reported on every load until then.
_KEPT = ("id", "origin")  # a record keeps its id and how it was first registered


def merge(incoming: Record, current: dict[str, Any], base: dict[str, Any] | None, source: str,
          force: bool = False) -> tuple[dict[str, Any], dict[str, Any], list[Conflict]]:
    """Three-way merge of a loaded record into the catalog's (`current`, as stored): per
    field, a file change is applied where the catalog still holds what was last loaded, an
    edit made elsewhere is kept where the file did not change, and a field changed on both
    sides differently is a conflict (the catalog's value stays, unless `force`). Without a
    `base` (never loaded here) every difference is a conflict. Returns the merged data (to
    validate), the new base and the conflicts."""
    mine, base = incoming.curated(), base or {}
    merged, new_base, conflicts = dict(current), {}, []
    for key in mine:
        if key in _KEPT:
            continue
        theirs = current.get(key)
        if _same(mine[key], theirs) or (key in base and _same(mine[key], base[key])):
            new_base[key] = mine[key]  # nothing to apply: the same, or unchanged in the file
        elif (key in base and _same(theirs, base[key])) or force:
            merged[key], new_base[key] = mine[key], mine[key]
        else:
            conflicts.append(Conflict(source, current["name"], key, mine[key], theirs))
            if key in base:
                new_base[key] = base[key]
    return merged, new_base, conflicts


def sync(catalog: Catalog, incoming: list[Incoming], vocab: Vocabularies,
         force: bool = False, actor: str = "cli") -> Outcome:
    """Load records into the catalog without losing edits made elsewhere (see `merge`): new
    records are created, the others merged; everything is validated before one write, so a
    merge that breaks a rule changes nothing. Loading the same files twice changes nothing.
    A load is the operator's reviewed decision and writes what the files say; a record it
    makes (or keeps) public although the publication checklist's rule
    (`hub.catalog.checklist.missing`) would refuse it from any other face is named in the
    outcome (`unready`). `actor`: who loads (for the audit trail)."""
    outcome, records, loads, based_on = Outcome(), [], [], {}
    stored = select(catalog_records.c.record, catalog_records.c.revision)
    with catalog.db.connection() as db:
        bases = {key: json.loads(fields) for key, fields in db.execute(
            select(catalog_loads.c.id, catalog_loads.c.fields))}
        for item in incoming:
            record = item.record
            # the record as stored: facts of the store's data (its extent) are not its own
            row = (db.execute(stored.where(catalog_records.c.id == record.id)).first()
                   or db.execute(stored.where(catalog_records.c.name == record.name)).first())
            if row is None:
                based_on[record.id] = 0  # still none when written, or the load is refused
                records.append(_checked(catalog, None, record, item.source, outcome))
                loads.append((item.source, record.curated()))
                continue
            if item.only_new:
                continue
            current = json.loads(row[0])
            merged, base, conflicts = merge(record, current, bases.get(current["id"]),
                                            item.source, force)
            outcome.conflicts += conflicts
            old = catalog.get(current["id"], ADMIN, ALL_STATES)
            records.append(_checked(catalog, old, validate(merged, vocab, item.source),
                                    item.source, outcome))
            based_on[records[-1].id] = row[1]  # an edit meanwhile refuses the whole load
            loads.append((item.source, base))
    results = catalog.upsert_many(records, expected=based_on,
                                  then=audited(catalog, actor, records))
    stamp = now()
    rows = [{"id": record.id, "source": source, "loaded": stamp,
             "fields": json.dumps(base, ensure_ascii=False)}
            for record, (source, base) in zip(records, loads, strict=True)]
    if rows:
        insert = catalog.db.insert(catalog_loads)
        with catalog.db.write() as db:
            db.execute(insert.on_conflict_do_update(index_elements=["id"], set_={
                "source": insert.excluded.source, "fields": insert.excluded.fields,
                "loaded": insert.excluded.loaded}), rows)
    for record, result in zip(records, results, strict=True):
        getattr(outcome, result).append(record.name)
    return outcome


def _checked(catalog: Catalog, old: Record | None, record: Record, source: str,
             outcome: Outcome) -> Record:
    """`record`, noted in `outcome` if writing it in place of `old` breaks the publication
    checklist's rule."""
    if found := missing(catalog.store, old, record):
        outcome.unready.append(Unready(source, record.name, found))
    return record


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"


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
    def incoming(self) -> list[Incoming]:
        """The valid records, for `sync`."""
        return [Incoming(r.record, f"{self.file}, row {r.row}") for r in self.rows
                if r.record is not None]

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
    base = slug(title) or "datensatz"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def records_from_pipelines(pipelines: list[Any], vocab: Vocabularies, default_license: str,
                           have: set[str]) -> list[Incoming]:
    """A minimal record for every pipeline dataset not in `have` (the YAML files' names), so
    ingested data is never missing from the catalog (curate it later in catalog/datasets/).
    They only create: `sync` leaves a record that exists (by name or id) as it is."""
    records = []
    for p in pipelines:
        if p.dataset in have:
            continue
        records.append(Incoming(validate({
            "name": p.dataset, "title": p.title, "description": p.description or p.title,
            "publisher": p.organization, "license": default_license, "access": p.access,
            # restricted data without a curated record: seen by its owner alone
            "restricted_to": [p.organization] if p.access == "restricted" else [],
            "frequency": p.update_frequency, "attribution": p.attribution,
            "conforms_to": p.schema.name, "origin": "pipeline"}, vocab, str(p.path)),
            str(p.path), only_new=True))
    return records
