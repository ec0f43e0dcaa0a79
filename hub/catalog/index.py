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
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

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
_STORE_JOIN = """
    LEFT JOIN datasets d ON d.name = r.name
    LEFT JOIN versions v ON v.dataset = d.name AND v.version = d.current_version"""
_LAST_MODIFIED = "max(coalesce(r.modified, ''), coalesce(v.finished, ''))"
ACCESS_CODES = {"public": 0, "internal": 1, "restricted": 2}
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


class _Snapshot:
    """What search needs, as numpy arrays: access, facet memberships, extents, sort orders.

    Built from the database in one pass and kept until the database changes (SQLite's
    `PRAGMA data_version` on a long-lived connection tells); text matching stays with FTS5.
    """

    def __init__(self, db: sqlite3.Connection):
        rows = db.execute(
            "SELECT r.rid, r.access, r.title_sort, r.name, "
            f"{_LAST_MODIFIED} AS last_modified, "
            "coalesce(r.minx, json_extract(v.bbox, '$[0]')), "
            "coalesce(r.miny, json_extract(v.bbox, '$[1]')), "
            "coalesce(r.maxx, json_extract(v.bbox, '$[2]')), "
            f"coalesce(r.maxy, json_extract(v.bbox, '$[3]')) FROM catalog_records r {_STORE_JOIN}"
            " ORDER BY r.rid").fetchall()
        n = len(rows)
        self.rid = np.array([r[0] for r in rows], dtype=np.int64)
        self.position = {int(rid): i for i, rid in enumerate(self.rid)}
        self.access = np.array([ACCESS_CODES.get(r[1], 2) for r in rows], dtype=np.int8)
        self.modified = np.array([r[4] for r in rows], dtype=str) if n else np.array([], str)
        self.bbox = np.array([[np.nan if v is None else v for v in r[5:9]] for r in rows],
                             dtype=np.float64).reshape(n, 4)
        titles = [(r[2], r[3]) for r in rows]
        self.by_title = np.array(sorted(range(n), key=lambda i: titles[i]), dtype=np.int64)
        self.by_name = np.array(sorted(range(n), key=lambda i: titles[i][1]), dtype=np.int64)
        newest = sorted(self.by_title.tolist(), key=lambda i: rows[i][4], reverse=True)
        self.by_modified = np.array(newest, dtype=np.int64)  # ties keep title order
        self.facets: dict[str, tuple[list[str], np.ndarray]] = {}
        members: dict[str, dict[str, list[int]]] = {}
        for rid, facet, value in db.execute("SELECT rid, facet, value FROM catalog_facets"):
            members.setdefault(facet, {}).setdefault(value, []).append(self.position[rid])
        for facet, values in members.items():
            names = sorted(values)
            matrix = np.zeros((len(names), n), dtype=bool)
            for row, value in enumerate(names):
                matrix[row, values[value]] = True
            self.facets[facet] = (names, matrix)

    def members(self, facet: str, values: list[str]) -> np.ndarray:
        names, matrix = self.facets.get(facet, ([], np.zeros((0, len(self.rid)), bool)))
        rows = [names.index(v) for v in values if v in names]
        return matrix[rows].any(axis=0) if rows else np.zeros(len(self.rid), dtype=bool)

    def visible(self, viewer: Viewer) -> np.ndarray:
        """The records `viewer.may_see`, as a mask (the rule itself lives in the model)."""
        allowed = np.array([viewer.may_see(level, []) for level in ACCESS_CODES], dtype=bool)
        mask = allowed[self.access]
        org = viewer.organization or ""
        if viewer.may_see("restricted", [org]):
            mask |= (self.access == ACCESS_CODES["restricted"]) & self.members(
                "restricted_to", [org])
        return mask


class Catalog:
    """Records of one store; every write validates first (see `hub.catalog.model.validate`)."""

    def __init__(self, store: Store):
        self.store = store
        self._reader: sqlite3.Connection | None = None  # long-lived, for data_version
        self._snapshot: tuple[int, _Snapshot] | None = None
        self._lock = threading.Lock()
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
        """Records the viewer may see that match, one page of them, and facet counts."""
        with self._lock:
            snap, reader = self._current()
            mask = snap.visible(viewer)
            rank = None
            tokens = words(query.q)
            if tokens:
                match = " AND ".join(f'"{stem(t)}"*' for t in tokens)
                found = reader.execute("SELECT rowid, rank FROM catalog_text "
                                       "WHERE catalog_text MATCH ?", (match,)).fetchall()
                rank = np.full(len(snap.rid), np.inf)
                for rid, score in found:
                    if (i := snap.position.get(rid)) is not None:
                        rank[i] = score
                mask &= np.isfinite(rank)
        for facet, values in query.filters.items():
            if values:
                mask &= snap.members(facet, values)
        if query.bbox:
            minx, miny, maxx, maxy = query.bbox
            box = snap.bbox
            with np.errstate(invalid="ignore"):
                mask &= ((box[:, 2] >= minx) & (box[:, 0] <= maxx) & (box[:, 3] >= miny)
                         & (box[:, 1] <= maxy))
        if query.modified_since:
            mask &= snap.modified >= query.modified_since
        order = {"title": snap.by_title, "name": snap.by_name,
                 "modified": snap.by_modified}.get(query.sort, snap.by_title)
        order = order[mask[order]]
        if query.sort == "relevance" and rank is not None:
            order = order[np.argsort(rank[order], kind="stable")]
        page = snap.rid[order[query.start:query.start + query.rows]].tolist()
        facets: dict[str, list[tuple[str, int]]] = {}
        for facet in query.facets:
            names, matrix = snap.facets.get(facet, ([], None))
            if matrix is None:
                facets[facet] = []
                continue
            counts = matrix[:, mask].sum(axis=1)
            found_values = sorted(((names[i], int(c)) for i, c in enumerate(counts) if c),
                                  key=lambda item: (-item[1], item[0]))
            facets[facet] = found_values[:query.facet_limit]
        return Result(int(mask.sum()), self._records(page), facets)

    def _current(self) -> tuple[_Snapshot, sqlite3.Connection]:
        """The snapshot for the database as it is now (rebuilt after any committed change)."""
        if self._reader is None:
            self._reader = sqlite3.connect(self.store.root / "hub.sqlite", timeout=30,
                                           check_same_thread=False)
        version = self._reader.execute("PRAGMA data_version").fetchone()[0]
        if self._snapshot is None or self._snapshot[0] != version:
            self._reader.execute("BEGIN")  # one consistent read of records and facets
            try:
                self._snapshot = (version, _Snapshot(self._reader))
            finally:
                self._reader.execute("COMMIT")
        return self._snapshot[1], self._reader

    def _records(self, rids: list[int]) -> list[Record]:
        if not rids:
            return []
        marks = ",".join("?" * len(rids))
        with self._db() as db:
            rows = db.execute(f"SELECT r.*, {_STORE_COLUMNS} FROM catalog_records r "
                              f"{_STORE_JOIN} WHERE r.rid IN ({marks})", rids).fetchall()
        by_rid = {row["rid"]: row for row in rows}
        return [_record(by_rid[rid]) for rid in rids if rid in by_rid]


_STORE_COLUMNS = ("v.version AS store_version, v.rows AS store_rows, v.schema AS store_schema, "
                  "v.bbox AS store_bbox, v.finished AS store_modified")



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
