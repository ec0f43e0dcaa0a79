"""The catalog in the store's SQLite database: records, facets and a German full-text index.

Facts about the data (last version, rows, bbox, schema) are not copied into records: queries
join the store's `datasets` and `versions` tables, so a committed version updates the catalog
by itself. Access levels are applied inside every query, so counts and facets never reveal a
record the viewer may not see.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.catalog.model import Distribution, Record, Viewer
from hub.catalog.vocab import fold
from hub.store.versions import Store, now

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS catalog_records (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    title_sort TEXT NOT NULL,
    access TEXT NOT NULL,
    publisher TEXT NOT NULL,
    license TEXT NOT NULL,
    frequency TEXT NOT NULL,
    modified TEXT,
    minx REAL, miny REAL, maxx REAL, maxy REAL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS catalog_facets (
    id TEXT NOT NULL REFERENCES catalog_records(id) ON DELETE CASCADE,
    facet TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_facets_id ON catalog_facets(id);
CREATE INDEX IF NOT EXISTS catalog_facets_value ON catalog_facets(facet, value);
CREATE VIRTUAL TABLE IF NOT EXISTS catalog_text USING fts5(
    id UNINDEXED, words, tokenize = 'unicode61 remove_diacritics 0', prefix = '3 5');
"""
FACETS = ("organization", "theme", "license", "format", "access", "frequency", "municipality")
SORTS = {"relevance": "rank, title_sort", "title": "title_sort", "modified": "last_modified DESC",
         "name": "name"}
_STORE_JOIN = """
    LEFT JOIN datasets d ON d.name = r.name
    LEFT JOIN versions v ON v.dataset = d.name AND v.version = d.current_version"""
_SUFFIXES = ("ungen", "ung", "innen", "erin", "en", "er", "es", "em", "e", "n", "s")


def words(text: str) -> list[str]:
    """Folded words: lower case, umlauts written out (ä→ae, ß→ss), so either spelling matches."""
    return re.findall(r"[0-9a-z]+", fold(text))


def stem(word: str) -> str:
    """A light German stemmer: strips common endings, keeping at least four letters."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


@dataclass
class Query:
    q: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)  # facet -> accepted values
    bbox: tuple[float, float, float, float] | None = None
    sort: str = "relevance"
    start: int = 0
    rows: int = 20
    facets: tuple[str, ...] = FACETS
    facet_limit: int = 50
    modified_since: str | None = None  # ISO date or timestamp: records changed since then


@dataclass
class Result:
    count: int
    records: list[Record]
    facets: dict[str, list[tuple[str, int]]]


class Catalog:
    """Records of one store; every write validates first (see `hub.catalog.model.validate`)."""

    def __init__(self, store: Store):
        self.store = store
        with self._db() as db:
            db.executescript(SCHEMA_SQL)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self.store._db() as db:
            db.execute("PRAGMA foreign_keys=ON")
            yield db

    # -- writing ---------------------------------------------------------------------------

    def upsert(self, record: Record) -> str:
        """Insert or replace a record by name; returns created | updated | unchanged."""
        body = json.dumps(record.curated(), sort_keys=True, ensure_ascii=False)
        stamp = now()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                old = db.execute("SELECT id, record FROM catalog_records WHERE name = ?",
                                 (record.name,)).fetchone()
                if old is not None and old["record"] == body:
                    db.execute("ROLLBACK")
                    return "unchanged"
                if old is not None:
                    record.id = old["id"]  # a name keeps its id
                    body = json.dumps(record.curated(), sort_keys=True, ensure_ascii=False)
                    db.execute("DELETE FROM catalog_facets WHERE id = ?", (record.id,))
                    db.execute("DELETE FROM catalog_text WHERE id = ?", (record.id,))
                bbox = record.bbox or [None] * 4
                db.execute(
                    "INSERT INTO catalog_records (id, name, record, title_sort, access, publisher,"
                    " license, frequency, modified, minx, miny, maxx, maxy, created, updated) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                    "name=excluded.name, record=excluded.record, title_sort=excluded.title_sort,"
                    " access=excluded.access, publisher=excluded.publisher,"
                    " license=excluded.license, frequency=excluded.frequency,"
                    " modified=excluded.modified, minx=excluded.minx, miny=excluded.miny,"
                    " maxx=excluded.maxx, maxy=excluded.maxy, updated=excluded.updated",
                    (record.id, record.name, body, fold(record.title), record.access,
                     record.publisher, record.license, record.frequency, record.modified,
                     *bbox, stamp, stamp))
                db.executemany("INSERT INTO catalog_facets (id, facet, value) VALUES (?,?,?)",
                               [(record.id, f, v) for f, v in _facet_values(record)])
                db.execute("INSERT INTO catalog_text (id, words) VALUES (?, ?)",
                           (record.id, " ".join(_index_words(record))))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return "updated" if old is not None else "created"

    def delete(self, name: str) -> bool:
        with self._db() as db:
            row = db.execute("SELECT id FROM catalog_records WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM catalog_text WHERE id = ?", (row["id"],))
            db.execute("DELETE FROM catalog_records WHERE id = ?", (row["id"],))
        return True

    # -- reading ---------------------------------------------------------------------------

    def get(self, name_or_id: str, viewer: Viewer) -> Record | None:
        """A record the viewer may see (None for unknown and for hidden alike)."""
        with self._db() as db:
            row = db.execute(f"SELECT r.*, {_STORE_COLUMNS} FROM catalog_records r {_STORE_JOIN}"
                             " WHERE r.name = ? OR r.id = ?", (name_or_id, name_or_id)).fetchone()
        record = _record(row) if row else None
        return record if record is not None and record.visible_to(viewer) else None

    def names(self) -> list[str]:
        return list(self.origins())

    def origins(self) -> dict[str, str]:
        """Every record's name and how it was registered (yaml, inventory, pipeline, …)."""
        with self._db() as db:
            return {r[0]: r[1] for r in db.execute(
                "SELECT name, json_extract(record, '$.origin') FROM catalog_records "
                "ORDER BY name")}

    def search(self, query: Query, viewer: Viewer) -> Result:
        where, params = _access_clause(viewer)
        joins = ""
        tokens = words(query.q)
        if tokens:
            match = " AND ".join(f'"{stem(t)}"*' for t in tokens)
            joins = "JOIN catalog_text t ON t.id = r.id AND catalog_text MATCH ?"
            params = [match, *params]
        for facet, values in query.filters.items():
            if not values:
                continue
            marks = ",".join("?" * len(values))
            where += (f" AND r.id IN (SELECT id FROM catalog_facets WHERE facet = ? "
                      f"AND value IN ({marks}))")
            params += [facet, *values]
        if query.bbox:
            minx, miny, maxx, maxy = query.bbox
            where += (" AND coalesce(r.maxx, json_extract(v.bbox, '$[2]')) >= ? "
                      "AND coalesce(r.minx, json_extract(v.bbox, '$[0]')) <= ? "
                      "AND coalesce(r.maxy, json_extract(v.bbox, '$[3]')) >= ? "
                      "AND coalesce(r.miny, json_extract(v.bbox, '$[1]')) <= ?")
            params += [minx, maxx, miny, maxy]
        if query.modified_since:
            where += " AND max(coalesce(r.modified, ''), coalesce(v.finished, '')) >= ?"
            params.append(query.modified_since)
        rank = "t.rank" if tokens else "0"
        base = (f"SELECT r.id, {rank} AS rank, r.title_sort, r.name, "
                "max(coalesce(r.modified, ''), coalesce(v.finished, '')) AS last_modified "
                f"FROM catalog_records r {joins} {_STORE_JOIN} WHERE {where}")
        order = SORTS.get(query.sort, SORTS["relevance"])
        with self._db() as db:
            db.execute(f"CREATE TEMP TABLE hits AS {base}", params)
            try:
                count = db.execute("SELECT count(*) FROM hits").fetchone()[0]
                rows = db.execute(
                    f"SELECT r.*, {_STORE_COLUMNS} FROM hits h JOIN catalog_records r "
                    f"ON r.id = h.id {_STORE_JOIN} ORDER BY {_qualified(order)} LIMIT ? OFFSET ?",
                    (query.rows, query.start)).fetchall()
                facets: dict[str, list[tuple[str, int]]] = {}
                for facet in query.facets:
                    facets[facet] = [(r[0], r[1]) for r in db.execute(
                        "SELECT f.value, count(*) AS n FROM catalog_facets f JOIN hits h "
                        "ON h.id = f.id WHERE f.facet = ? GROUP BY f.value "
                        "ORDER BY n DESC, f.value LIMIT ?", (facet, query.facet_limit))]
            finally:
                db.execute("DROP TABLE hits")
        return Result(count, [_record(r) for r in rows], facets)


_STORE_COLUMNS = ("v.version AS store_version, v.rows AS store_rows, v.schema AS store_schema, "
                  "v.bbox AS store_bbox, v.finished AS store_modified")


def _qualified(order: str) -> str:
    return ", ".join(f"h.{part.strip()}" for part in order.split(","))


def _access_clause(viewer: Viewer) -> tuple[str, list[Any]]:
    if viewer.admin:
        return "1=1", []
    if not viewer.staff:
        return "r.access = 'public'", []
    return ("(r.access IN ('public', 'internal') OR (r.access = 'restricted' AND r.id IN "
            "(SELECT id FROM catalog_facets WHERE facet = 'restricted_to' AND value = ?)))",
            [viewer.organization or ""])


def _record(row: sqlite3.Row) -> Record:
    data = json.loads(row["record"])
    data["distributions"] = [Distribution(**d) for d in data.get("distributions", [])]
    record = Record(**data)
    if row["store_version"] is not None:
        record.version = row["store_version"]
        record.rows = row["store_rows"]
        record.schema = json.loads(row["store_schema"])
        record.store_modified = row["store_modified"]
        if record.bbox is None and row["store_bbox"]:
            record.bbox = json.loads(row["store_bbox"])
    return record


def _facet_values(record: Record) -> list[tuple[str, str]]:
    values = [("organization", record.publisher), ("license", record.license),
              ("access", record.access), ("frequency", record.frequency)]
    values += [("theme", t) for t in record.themes]
    values += [("format", f) for f in sorted({d.format for d in record.distributions})]
    values += [("municipality", a) for a in record.spatial_ags if len(a) == 8]
    values += [("restricted_to", o) for o in record.restricted_to]
    return values


def _index_words(record: Record) -> list[str]:
    texts = [record.title, record.description, " ".join(record.keywords), record.name,
             *(t.get("title", "") + " " + t.get("description", "")
               for t in record.translations.values())]
    return words(" ".join(texts))


def catalog_for(store_root: Path) -> Catalog:
    return Catalog(Store(store_root))
