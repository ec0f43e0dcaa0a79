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
from typing import Any

from hub.catalog.model import Distribution, Record, Viewer
from hub.catalog.vocab import fold
from hub.store.versions import Store, now

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS catalog_records (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    title_sort TEXT NOT NULL,
    access TEXT NOT NULL,
    modified TEXT,
    minx REAL, miny REAL, maxx REAL, maxy REAL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS catalog_facets (
    rid INTEGER NOT NULL,
    facet TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_facets_rid ON catalog_facets(rid, facet);
CREATE INDEX IF NOT EXISTS catalog_facets_value ON catalog_facets(facet, value, rid);
CREATE VIRTUAL TABLE IF NOT EXISTS catalog_text USING fts5(
    words, tokenize = 'unicode61 remove_diacritics 0', prefix = '3 5');
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
            columns = {r[1] for r in db.execute("PRAGMA table_info(catalog_records)")}
            if columns and "rid" not in columns:  # a store from before integer row keys
                db.executescript("DROP TABLE catalog_records; DROP TABLE catalog_facets; "
                                 "DROP TABLE catalog_text;")
            db.executescript(SCHEMA_SQL)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self.store._db() as db:
            db.execute("PRAGMA foreign_keys=ON")
            yield db

    # -- writing ---------------------------------------------------------------------------

    def upsert(self, record: Record) -> str:
        """Insert or replace a record by name; returns created | updated | unchanged."""
        return self.upsert_many([record])[0]

    def upsert_many(self, records: list[Record]) -> list[str]:
        """Insert or replace records by name in one transaction (all or nothing)."""
        stamp = now()
        outcomes = []
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for record in records:
                    outcomes.append(self._upsert(db, record, stamp))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return outcomes

    @staticmethod
    def _upsert(db: sqlite3.Connection, record: Record, stamp: str) -> str:
        old = db.execute("SELECT rid, id, record FROM catalog_records WHERE name = ?",
                         (record.name,)).fetchone()
        if old is not None:
            record.id = old["id"]  # a name keeps its id
        body = json.dumps(record.curated(), sort_keys=True, ensure_ascii=False)
        if old is not None and old["record"] == body:
            return "unchanged"
        bbox = record.bbox or [None] * 4
        values = (record.id, record.name, body, fold(record.title), record.access,
                  record.modified, *bbox, stamp)
        if old is None:
            rid = db.execute(
                "INSERT INTO catalog_records (id, name, record, title_sort, access, modified,"
                " minx, miny, maxx, maxy, updated, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (*values, stamp)).lastrowid
        else:
            rid = old["rid"]
            db.execute("UPDATE catalog_records SET id=?, name=?, record=?, title_sort=?,"
                       " access=?, modified=?, minx=?, miny=?, maxx=?, maxy=?, updated=?"
                       " WHERE rid = ?", (*values, rid))
            db.execute("DELETE FROM catalog_facets WHERE rid = ?", (rid,))
            db.execute("DELETE FROM catalog_text WHERE rowid = ?", (rid,))
        db.executemany("INSERT INTO catalog_facets (rid, facet, value) VALUES (?,?,?)",
                       [(rid, f, v) for f, v in _facet_values(record)])
        db.execute("INSERT INTO catalog_text (rowid, words) VALUES (?, ?)",
                   (rid, " ".join(_index_words(record))))
        return "updated" if old is not None else "created"

    def delete(self, name: str) -> bool:
        with self._db() as db:
            row = db.execute("SELECT rid FROM catalog_records WHERE name = ?",
                             (name,)).fetchone()
            if row is None:
                return False
            for table, key in (("catalog_text", "rowid"), ("catalog_facets", "rid"),
                               ("catalog_records", "rid")):
                db.execute(f"DELETE FROM {table} WHERE {key} = ?", (row["rid"],))
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
            joins = ("JOIN (SELECT rowid AS rid, rank FROM catalog_text "
                     "WHERE catalog_text MATCH ?) t ON t.rid = r.rid")
            params = [match, *params]
        for facet, values in query.filters.items():
            if not values:
                continue
            marks = ",".join("?" * len(values))
            where += (f" AND r.rid IN (SELECT rid FROM catalog_facets WHERE facet = ? "
                      f"AND value IN ({marks}))")
            params += [facet, *values]
        last_modified = "max(coalesce(r.modified, ''), coalesce(v.finished, ''))"
        if query.bbox:
            minx, miny, maxx, maxy = query.bbox
            where += (" AND coalesce(r.maxx, json_extract(v.bbox, '$[2]')) >= ? "
                      "AND coalesce(r.minx, json_extract(v.bbox, '$[0]')) <= ? "
                      "AND coalesce(r.maxy, json_extract(v.bbox, '$[3]')) >= ? "
                      "AND coalesce(r.miny, json_extract(v.bbox, '$[1]')) <= ?")
            params += [minx, maxx, miny, maxy]
        if query.modified_since:
            where += f" AND {last_modified} >= ?"
            params.append(query.modified_since)
        rank = "t.rank" if tokens else "0"
        base = (f"SELECT r.rid AS rid, {rank} AS rank, r.title_sort, r.name, "
                f"{last_modified} AS last_modified "
                f"FROM catalog_records r {joins} {_STORE_JOIN} WHERE {where}")
        order = SORTS.get(query.sort, SORTS["relevance"])
        with self._db() as db:
            db.execute("CREATE TEMP TABLE hits (rid INTEGER PRIMARY KEY, rank REAL, "
                       "title_sort TEXT, name TEXT, last_modified TEXT)")
            try:
                db.execute(f"INSERT INTO hits {base}", params)
                count = db.execute("SELECT count(*) FROM hits").fetchone()[0]
                rows = db.execute(
                    f"SELECT r.*, {_STORE_COLUMNS} FROM hits h JOIN catalog_records r "
                    f"ON r.rid = h.rid {_STORE_JOIN} ORDER BY {_qualified(order)} "
                    "LIMIT ? OFFSET ?", (query.rows, query.start)).fetchall()
                facets: dict[str, list[tuple[str, int]]] = {}
                for facet in query.facets:
                    facets[facet] = [(r[0], r[1]) for r in db.execute(
                        "SELECT f.value, count(*) AS n FROM hits h JOIN catalog_facets f "
                        "ON f.rid = h.rid AND f.facet = ? GROUP BY f.value "
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
    return ("(r.access IN ('public', 'internal') OR (r.access = 'restricted' AND r.rid IN "
            "(SELECT rid FROM catalog_facets WHERE facet = 'restricted_to' AND value = ?)))",
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
