"""The catalog in the store's database: records, facets and a German full-text index.

Facts about the data (last version, rows, bbox, schema) are not copied into records: queries
join the store's `datasets` and `versions` tables, so a committed version updates the catalog
by itself. Access levels are applied inside every query, so counts and facets never reveal a
record the viewer may not see.

Everything goes through the database seam (hub.db, SQLAlchemy Core), so the catalog answers
alike on SQLite and PostgreSQL: the full-text index is a plain table of folded words and their
positions (`catalog_words`) that both query with the same SQL, and ranking is computed here,
not by either database.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Select, and_, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from hub.access import Viewer, access_in_force
from hub.catalog.expr import (
    TEXT_FIELDS,
    TIME_FIELDS,
    All,
    And,
    Exists,
    Expr,
    Match,
    Not,
    Or,
    Range,
    Text,
)
from hub.catalog.model import HUB_DOWNLOADS, Distribution, Record, hub_download_id
from hub.catalog.vocab import Organization
from hub.db.schema import (
    DERIVED_TABLES,  # noqa: F401 - backups leave them out
    catalog_facets,
    catalog_meta,
    catalog_organizations,
    catalog_records,
    catalog_words,
    datasets,
    versions,
)
from hub.errors import Conflict, HubError
from hub.store.versions import Store, now
from hub.text import fold

INDEX_VERSION = "6"  # of the derived tables (facets, text); a change rebuilds them from records
FACETS = ("organization", "theme", "license", "format", "access", "frequency", "municipality")
_r, _d, _v = catalog_records.alias("r"), datasets.alias("d"), versions.alias("v")
_STORE_JOIN = _r.outerjoin(_d, _d.c.name == _r.c.name).outerjoin(
    _v, and_(_v.c.dataset == _d.c.name, _v.c.version == _d.c.current_version))
_STORE_COLUMNS = (_v.c.version.label("store_version"), _v.c.rows.label("store_rows"),
                  _v.c.schema.label("store_schema"), _v.c.bbox.label("store_bbox"),
                  _v.c.finished.label("store_modified"), _d.c.access.label("data_access"),
                  _d.c.organization.label("data_owner"))
_RECORDS = select(_r, *_STORE_COLUMNS).select_from(_STORE_JOIN)
_SNAPSHOT = select(
    _r.c.rid, _r.c.access, _r.c.title_sort, _r.c.name, _r.c.modified, _v.c.finished,
    _r.c.minx, _r.c.miny, _r.c.maxx, _r.c.maxy, _v.c.bbox, _r.c.id, _r.c.state, _r.c.created,
    _r.c.updated, _v.c.version, _d.c.access, _d.c.organization,
).select_from(_STORE_JOIN).order_by(_r.c.rid)
_WORD_END = "~"  # sorts after every character of a folded word ([0-9a-z]): a prefix's range
ACCESS_CODES = {"public": 0, "internal": 1, "restricted": 2}
_SUFFIXES = ("ungen", "ung", "innen", "erin", "en", "er", "es", "em", "e", "n", "s")
_SORT_KEYS = ("relevance", "title", "name", "id", "modified", "changed", "created")


def words(text: str, umlauts: str = "ae") -> list[str]:
    """Folded words (`hub.text.fold`): lower case, umlauts written out (ä→ae, ß→ss), other
    marks dropped (Lower Sorbian ó ś ł … → o s l)."""
    return re.findall(r"[0-9a-z]+", fold(text, umlauts))


def indexed_words(text: str) -> str:
    """The words of a text as the full-text index keeps them: folded, and where the text has
    umlauts once more with plain vowels (ä→a), so "Mühlberg", "Muehlberg" and "Muhlberg" all
    find it (also as a phrase)."""
    written, plain = words(text), words(text, umlauts="a")
    return " ".join(written + (plain if plain != written else []))


def stem(word: str) -> str:
    """A light German stemmer: strips common endings, keeping at least four letters."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def moment(value: str) -> np.datetime64:
    """An ISO date or timestamp (UTC, `Z` allowed) as numpy microseconds."""
    return np.datetime64(value.rstrip("Z").replace(" ", "T")[:26], "us")


@dataclass
class Query:
    q: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)  # facet -> accepted values
    bbox: tuple[float, float, float, float] | None = None
    # "relevance", "title", "name", "modified" or (key, descending) pairs of _SORT_KEYS
    sort: str | tuple[tuple[str, bool], ...] = "relevance"
    start: int = 0
    rows: int = 20
    facets: tuple[str, ...] = FACETS
    facet_limit: int = 50
    modified_since: str | None = None  # ISO date or timestamp: records changed since then
    where: Expr | None = None  # a search expression (see hub.catalog.expr), AND-ed
    states: tuple[str, ...] = ("active",)  # drafts and deleted ones: for their editors only
    load: bool = True  # False: only the row ids of the page (see Catalog.records)

    def order(self) -> tuple[tuple[str, bool], ...]:
        if not isinstance(self.sort, str):
            return self.sort
        return {"title": (("title", False),), "name": (("name", False),),
                "modified": (("modified", True), ("title", False))}.get(
                    self.sort, (("relevance", False), ("title", False)))


@dataclass
class Result:
    count: int
    records: list[Record]
    facets: dict[str, list[tuple[str, int]]]
    rids: list[int] = field(default_factory=list)  # the page's records' row ids
    names: list[str] = field(default_factory=list)  # and their names
    state: int = 0  # which state of the catalog answered (changes with every write)


class _Facet:
    """One keyword field as sparse (record position, value number) pairs."""

    def __init__(self, pairs: list[tuple[int, str]]):
        self.names = sorted({v for _, v in pairs})
        number = {v: i for i, v in enumerate(self.names)}
        self.pos = np.array([p for p, _ in pairs], dtype=np.int64)
        self.val = np.array([number[v] for _, v in pairs], dtype=np.int64)
        self.folded: dict[str, list[int]] = {}
        for i, v in enumerate(self.names):
            self.folded.setdefault(v.casefold(), []).append(i)

    def members(self, values: list[str], n: int, prefix: bool = False) -> np.ndarray:
        wanted = [i for v in values for i in self.folded.get(v.casefold(), [])]
        if prefix:
            starts = tuple(v.casefold() for v in values)
            wanted = [i for k, ids in self.folded.items() if k.startswith(starts) for i in ids]
        mask = np.zeros(n, dtype=bool)
        if wanted:
            mask[self.pos[np.isin(self.val, wanted)]] = True
        return mask

    def counts(self, mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.val[mask[self.pos]], minlength=len(self.names))


class _Snapshot:
    """What search needs, as numpy arrays: access, keyword fields, extents, sort orders.

    Built from the database in one consistent read and kept until the database changes
    (`Database.mark`); text matching asks the word index (`catalog_words`).
    """

    def __init__(self, db: Connection, state: int = 0, owner_of: Callable[[str], str] = str):
        self.state = state
        rows = [_snapshot_row(*row) for row in db.execute(_SNAPSHOT)]
        n = self.n = len(rows)
        self.rid = np.array([r[0] for r in rows], dtype=np.int64)
        self.position = {int(rid): i for i, rid in enumerate(self.rid)}
        self.access = np.array([ACCESS_CODES.get(r[1], 2) for r in rows], dtype=np.int8)
        self.time = {"modified": _times([r[4] for r in rows]),
                     "created": _times([r[11] for r in rows]),
                     "changed": _times([r[12] for r in rows])}
        self.text = {"title": np.array([r[2] for r in rows] or [""])[:n],
                     "name": np.array([r[3] for r in rows] or [""])[:n]}
        self.bbox = np.array([[np.nan if v is None else v for v in r[5:9]] for r in rows],
                             dtype=np.float64).reshape(n, 4)
        self.rank = {"title": _ranks([(r[2], r[3]) for r in rows]),
                     "name": _ranks([r[3] for r in rows]), "id": _ranks([r[9] for r in rows])}
        pairs: dict[str, list[tuple[int, str]]] = {
            "id": [(i, r[9]) for i, r in enumerate(rows)],
            "name": [(i, r[3]) for i, r in enumerate(rows)],
            "state": [(i, r[10]) for i, r in enumerate(rows)]}
        self.publisher = np.full(n, "", dtype=object)
        for rid, facet, value in db.execute(select(catalog_facets.c.rid, catalog_facets.c.facet,
                                                   catalog_facets.c.value)):
            position = self.position[rid]
            pairs.setdefault(facet, []).append((position, value))
            if facet == "organization":
                self.publisher[position] = value
        self.facets = {facet: _Facet(p) for facet, p in pairs.items()}
        self.active = self.members("state", ["active"])
        self.text_matches: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # term -> where
        self.by_name = {r[3]: i for i, r in enumerate(rows)}
        self.restricted: dict[int, list[str]] = {}
        for position, org in pairs.get("restricted_to", []):
            self.restricted.setdefault(position, []).append(org)
        levels = list(ACCESS_CODES)
        for i, r in enumerate(rows):  # held data's facts only where its record may show them
            if r[13] and not _facts_shown(levels[self.access[i]], self.restricted.get(i, []),
                                          str(self.publisher[i]), r[17], owner_of(r[18])):
                if r[14]:
                    self.bbox[i] = np.nan
                self.time["modified"][i] = moment(r[15]) if r[15] else np.datetime64("NaT")
                self.time["changed"][i] = moment(r[16])

    def positions(self, rids: np.ndarray) -> np.ndarray:
        """Snapshot positions of record row ids (ids not in the snapshot are left out)."""
        if not len(self.rid):
            return np.zeros(0, dtype=np.int64)
        at = np.searchsorted(self.rid, rids)
        at = np.clip(at, 0, len(self.rid) - 1)
        return at[self.rid[at] == rids]

    def members(self, facet: str, values: list[str], prefix: bool = False) -> np.ndarray:
        found = self.facets.get(facet)
        return found.members(values, self.n, prefix) if found else np.zeros(self.n, bool)

    def visible(self, viewer: Viewer, states: tuple[str, ...] = ("active",)) -> np.ndarray:
        """The records `viewer.may_see` (the rule itself lives in the model), as a mask;
        drafts and deleted records only when asked for and only to those who may edit them."""
        allowed = np.array([viewer.may_see(level, []) for level in ACCESS_CODES], dtype=bool)
        mask = allowed[self.access]
        org = viewer.organization or ""
        if viewer.may_see("restricted", [org]):
            mask |= (self.access == ACCESS_CODES["restricted"]) & self.members(
                "restricted_to", [org])
        shown = self.active.copy()
        extra = [s for s in states if s != "active"]
        if extra:
            editable = np.array([viewer.may_edit(p) for p in self.publisher], dtype=bool) \
                if not viewer.admin else np.ones(self.n, dtype=bool)
            shown |= self.members("state", extra) & editable
        return mask & shown


def _snapshot_row(rid: int, access: str, title_sort: str, name: str, modified: str | None,
                  finished: str | None, minx: float | None, miny: float | None,
                  maxx: float | None, maxy: float | None, data_bbox: str | None, id_: str,
                  state: str, created: str, updated: str, version: int | None,
                  data_access: str | None, data_owner: str | None) -> tuple:
    """A row of `_SNAPSHOT` in the order `_Snapshot` reads it (what both backends spell
    differently, JSON and the larger of two values, is computed here)."""
    bbox = (minx, miny, maxx, maxy)
    if minx is None and data_bbox:
        bbox = tuple(json.loads(data_bbox))
    return (rid, access, title_sort, name, max(modified or "", finished or ""), *bbox, id_,
            state, created, max(updated, finished or ""), version is not None, minx is None,
            modified, updated, data_access, data_owner)


def _times(values: list[str | None]) -> np.ndarray:
    return np.array([moment(v) if v else np.datetime64("NaT") for v in values],
                    dtype="datetime64[us]")


def _ranks(keys: list[Any]) -> np.ndarray:
    """Each position's place in the sorted order of `keys`."""
    ranks = np.empty(len(keys), dtype=np.int64)
    ranks[sorted(range(len(keys)), key=keys.__getitem__)] = np.arange(len(keys))
    return ranks


class Catalog:
    """Records of one store; every write validates first (see `hub.catalog.model.validate`)."""

    def __init__(self, store: Store):
        self.store = store
        # a pipeline's `organization` (id or name) as organisation id: set by `open_catalog`
        self.owner_of: Callable[[str], str] = str
        self.db = store.db  # the tables: hub.db.schema, made by the store's migrations
        # (mark of the data, snapshot, organisations, the state number they answer as)
        self._snapshot: tuple[Hashable, _Snapshot, dict[str, Organization]] | None = None
        self._states = 0
        self._lock = threading.Lock()
        with self.db.connection() as db:
            stored = db.execute(select(catalog_meta.c.value).where(
                catalog_meta.c.key == "index")).scalar()
        if stored != INDEX_VERSION:
            self.rebuild_index()

    def rebuild_index(self) -> None:
        """Rebuild the derived tables (facets, words) from the records (after a restore, or
        when their layout changed)."""
        with self.db.write(exclusive=_WRITING) as db:
            db.execute(delete(catalog_facets))
            db.execute(delete(catalog_words))
            for rid, body in db.execute(select(catalog_records.c.rid, catalog_records.c.record)
                                        ).all():
                self._index(db, rid, _stored(body))
            db.execute(self.db.insert(catalog_meta).values(key="index", value=INDEX_VERSION)
                       .on_conflict_do_update(index_elements=["key"],
                                              set_={"value": INDEX_VERSION}))

    # -- writing ---------------------------------------------------------------------------

    def upsert(self, record: Record, create: bool = False, expected: int | None = None,
               then: Callable[[list[str]], None] | None = None) -> str:
        """Insert or replace a record by id or name; returns created | updated | unchanged.
        With `create`, a record whose id or name exists raises `NameTaken` instead. With
        `expected`, the record replaced must still be at that revision, else `Conflict`."""
        return self.upsert_many([record], create, expected=None if expected is None
                                else {record.id: expected}, then=then)[0]

    def upsert_many(self, records: list[Record], create: bool = False,
                    delete: list[str] | tuple[str, ...] = (),
                    expected: dict[str, int] | None = None,
                    then: Callable[[list[str]], None] | None = None) -> list[str]:
        """Insert or replace records, and remove those named in `delete`, in one transaction
        (all or nothing).

        A record replaces the one with its id (which may rename it) or else the one with its
        name (whose id it keeps). A name held by another record raises `NameTaken`. Every
        change raises the record's revision by one; `expected` maps record ids to the revision
        each change was based on (0: there was no such record): another one raises `Conflict`
        and nothing is written. `then` is called with the outcomes inside the transaction,
        before it commits (the audit trail's entries: `hub.catalog.editing.audited`).
        """
        expected = expected or {}
        stamp = now()
        outcomes = []
        with self.db.write(exclusive=_WRITING) as db:
            for name in delete:
                self._delete(db, name)
            for record in records:
                outcomes.append(self._upsert(db, record, stamp, create,
                                             expected.get(record.id)))
            if then is not None:
                then(outcomes)
        return outcomes

    def _upsert(self, db: Connection, record: Record, stamp: str,
                create: bool = False, expected: int | None = None) -> str:
        t = catalog_records.c
        columns = select(t.rid, t.id, t.name, t.record, t.revision)
        old = (db.execute(columns.where(t.id == record.id)).mappings().first()
               or db.execute(columns.where(t.name == record.name)).mappings().first())
        if old is not None and create:
            raise NameTaken(record.name if old["name"] == record.name else record.id,
                            "name" if old["name"] == record.name else "id")
        if expected is not None and (old["revision"] if old else 0) != expected:
            raise Conflict(f"the record {record.name!r} was registered meanwhile; read it and "
                           "repeat the change" if old is None else
                           f"the record {old['name']!r} was changed meanwhile: it is at "
                           f"revision {old['revision']}, the change was based on revision "
                           f"{expected}; read it again and repeat the change")
        if old is not None:
            record.id = old["id"]  # a name keeps its id
            if old["name"] != record.name and db.execute(
                    select(t.rid).where(t.name == record.name)).first():
                raise NameTaken(record.name)
        body = json.dumps(record.curated(), sort_keys=True, ensure_ascii=False)
        if old is not None and old["record"] == body:
            return "unchanged"
        minx, miny, maxx, maxy = record.bbox or [None] * 4
        values = {"id": record.id, "name": record.name, "record": body,
                  "title_sort": fold(record.title), "access": record.access,
                  "modified": record.modified, "minx": minx, "miny": miny, "maxx": maxx,
                  "maxy": maxy, "state": record.state, "updated": stamp}
        if old is None:
            rid = db.execute(catalog_records.insert().values(created=stamp, **values)
                             ).inserted_primary_key[0]
        else:
            rid = old["rid"]
            db.execute(update(catalog_records).where(t.rid == rid).values(
                revision=t.revision + 1, **values))
            self._unindex(db, rid)
        self._index(db, rid, record)
        return "updated" if old is not None else "created"

    @staticmethod
    def _index(db: Connection, rid: int, record: Record) -> None:
        db.execute(catalog_facets.insert(), [{"rid": rid, "facet": f, "value": v}
                                             for f, v in _facet_values(record)])
        words = [{"rid": rid, "field": field, "pos": pos, "word": word}
                 for field, text in zip(TEXT_FIELDS, _text_columns(record), strict=True)
                 for pos, word in enumerate(text.split())]
        if words:
            db.execute(catalog_words.insert(), words)

    @staticmethod
    def _unindex(db: Connection, rid: int) -> None:
        db.execute(delete(catalog_facets).where(catalog_facets.c.rid == rid))
        db.execute(delete(catalog_words).where(catalog_words.c.rid == rid))

    def delete(self, name: str) -> bool:
        """Remove a record for good (a CKAN `package_delete` only sets its state)."""
        with self.db.write(exclusive=_WRITING) as db:
            return self._delete(db, name)

    @classmethod
    def _delete(cls, db: Connection, name: str) -> bool:
        rid = db.execute(select(catalog_records.c.rid).where(
            catalog_records.c.name == name)).scalar()
        if rid is None:
            return False
        cls._unindex(db, rid)
        db.execute(delete(catalog_records).where(catalog_records.c.rid == rid))
        return True

    def add_organization(self, org: Organization,
                         then: Callable[[], None] | None = None) -> None:
        """Register an organisation beside those of `catalog/organizations.yaml` (`then`:
        as in `upsert_many`)."""
        try:
            with self.db.write(exclusive=_WRITING) as db:
                db.execute(catalog_organizations.insert().values(
                    id=org.id, organization=json.dumps(asdict(org), ensure_ascii=False),
                    created=now()))
                if then is not None:
                    then()
        except IntegrityError:
            raise NameTaken(org.id) from None

    # -- reading ---------------------------------------------------------------------------

    def get(self, name_or_id: str, viewer: Viewer,
            states: tuple[str, ...] = ("active",)) -> Record | None:
        """A record the viewer may see (None for unknown and for hidden alike); drafts and
        deleted ones only if `states` names them and the viewer may edit them."""
        with self.db.connection() as db:
            row = db.execute(_RECORDS.where((_r.c.name == name_or_id) | (_r.c.id == name_or_id))
                             ).mappings().first()
        record = _record(row, self.owner_of) if row else None
        if record is None or not record.visible_to(viewer):
            return None
        if record.state != "active" and not (record.state in states
                                             and viewer.may_edit(record.publisher)):
            return None
        return record

    def names(self) -> list[str]:
        return list(self.origins())

    def origins(self) -> dict[str, str]:
        """Every record's name and how it was registered (yaml, inventory, pipeline, …)."""
        f = catalog_facets.c
        with self.db.connection() as db:
            return dict(db.execute(
                select(catalog_records.c.name, f.value).select_from(catalog_records.outerjoin(
                    catalog_facets, (f.rid == catalog_records.c.rid) & (f.facet == "origin")))
                .order_by(catalog_records.c.name)).all())

    def access(self, name: str) -> tuple[str, list[str], str] | None:
        """A record's access level, the organisations it is restricted to and its publisher
        (None: no such record), from the snapshot: cheap enough for every request. The data of
        a draft or withdrawn (deleted) record is not published: restricted to its owner."""
        with self._lock:
            snap = self._current()[0]
        i = snap.by_name.get(name)
        if i is None:
            return None
        if not snap.active[i]:
            return "restricted", [], str(snap.publisher[i])
        level = next(k for k, v in ACCESS_CODES.items() if v == snap.access[i])
        return level, snap.restricted.get(i, []), str(snap.publisher[i])

    def state(self) -> int:
        """Changes with every committed write to the catalog's database (records,
        organisations): what is derived from the catalog may be kept while it holds. (A
        number of this process, counting the changes it noticed.)"""
        with self._lock:
            return self._current()[0].state

    def organizations(self) -> dict[str, Organization]:
        """Organisations registered through the catalog (not those of the YAML file)."""
        with self._lock:
            return self._current()[1]

    def search(self, query: Query, viewer: Viewer) -> Result:
        """Records the viewer may see that match, one page of them, and facet counts."""
        with self._lock:
            snap, _ = self._current()
            mask = snap.visible(viewer, query.states)
            score = np.zeros(snap.n)
            terms = words(query.q)
            where = [Text(None, tuple(terms))] if terms else []
            where += [query.where] if query.where is not None else []
            if where:
                with self.db.connection() as db:
                    for expr in where:
                        mask &= _Evaluator(snap, db, score).mask(expr)
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
            mask &= snap.time["modified"] >= moment(query.modified_since)
        selected = np.flatnonzero(mask)
        keys = []  # np.lexsort: last key is the primary one
        for key, descending in reversed(query.order()):
            if key == "relevance":
                values = score[selected]
            elif key in snap.rank:
                values = snap.rank[key][selected]
            else:  # times: missing ones last
                values = snap.time[key][selected].astype(np.int64).astype(np.float64)
                values[np.isnat(snap.time[key][selected])] = -np.inf if descending else np.inf
            keys.append(-values if descending else values)
        if keys:
            selected = selected[np.lexsort(keys)]
        chosen = selected[query.start:query.start + query.rows]
        page = snap.rid[chosen].tolist()
        facets: dict[str, list[tuple[str, int]]] = {}
        for facet in query.facets:
            found = snap.facets.get(facet)
            if found is None:
                facets[facet] = []
                continue
            counts = found.counts(mask)
            nonzero = np.flatnonzero(counts)
            items = sorted(((found.names[i], int(counts[i])) for i in nonzero),
                           key=lambda item: (-item[1], item[0]))
            facets[facet] = items if query.facet_limit < 0 else items[:query.facet_limit]
        return Result(int(mask.sum()), self._records(page) if query.load else [], facets,
                      page, snap.text["name"][chosen].tolist(), snap.state)

    def _current(self) -> tuple[_Snapshot, dict[str, Organization]]:
        """The snapshot for the database as it is now (rebuilt after any committed change)."""
        if self._snapshot is None or self._snapshot[0] != self.db.mark():
            with self.db.reading() as (db, mark):  # one consistent read of records and facets
                orgs = {o.id: o for o in (
                    Organization(**json.loads(body)) for body in db.execute(
                        select(catalog_organizations.c.organization)
                        .order_by(catalog_organizations.c.id)).scalars())}
                self._states += 1
                self._snapshot = (mark, _Snapshot(db, self._states, self.owner_of), orgs)
        return self._snapshot[1], self._snapshot[2]

    def records(self, rids: list[int]) -> dict[int, Record]:
        """Records by row id (from `Result.rids`); ids gone meanwhile are left out."""
        if not rids:
            return {}
        with self.db.connection() as db:
            rows = db.execute(_RECORDS.where(_r.c.rid.in_(rids))).mappings().all()
        return {row["rid"]: _record(row, self.owner_of) for row in rows}

    def _records(self, rids: list[int]) -> list[Record]:
        found = self.records(rids)
        return [found[rid] for rid in rids if rid in found]


_WRITING = "catalog"  # writers of the catalog take turns (hub.db.Database.write)


class NameTaken(HubError):
    """A record or organisation name (or id) that another one already has."""

    def __init__(self, name: str, key: str = "name"):
        self.name, self.key = name, key
        super().__init__(f"the {key} {name!r} is already in use")


class _Evaluator:
    """Turns a search expression into a mask over the snapshot; text goes to the word index,
    and the weights of text matched outside a NOT add up into `score` (lower is better)."""

    def __init__(self, snap: _Snapshot, db: Connection, score: np.ndarray):
        self.snap, self.db, self.score = snap, db, score
        self.cache = snap.text_matches

    def mask(self, expr: Expr, positive: bool = True) -> np.ndarray:
        snap = self.snap
        if isinstance(expr, All):
            return np.ones(snap.n, dtype=bool)
        if isinstance(expr, Match):
            return snap.members(expr.field, [expr.value], expr.prefix)
        if isinstance(expr, Exists):
            found = snap.facets.get(expr.field)
            mask = np.zeros(snap.n, dtype=bool)
            if found is not None:
                mask[found.pos] = True
            return mask
        if isinstance(expr, Range):
            return self._range(expr)
        if isinstance(expr, Text):
            return self._text(expr, positive)
        if isinstance(expr, Not):
            return ~self.mask(expr.item, not positive)
        masks = [self.mask(item, positive) for item in expr.items]
        if isinstance(expr, And):
            return np.logical_and.reduce(masks) if masks else np.ones(snap.n, bool)
        if isinstance(expr, Or):
            return np.logical_or.reduce(masks) if masks else np.zeros(snap.n, bool)
        raise TypeError(f"not a search expression: {expr!r}")

    def _range(self, expr: Range) -> np.ndarray:
        if expr.field in TIME_FIELDS:
            values = self.snap.time[expr.field]
            low = moment(expr.low) if expr.low else None
            high = moment(expr.high) if expr.high else None
            mask = ~np.isnat(values)
        else:
            values = self.snap.text[expr.field]
            low = fold(expr.low) if expr.low and expr.field == "title" else expr.low
            high = fold(expr.high) if expr.high and expr.field == "title" else expr.high
            mask = np.ones(self.snap.n, dtype=bool)
        if low is not None:
            mask &= values >= low if expr.include_low else values > low
        if high is not None:
            mask &= values <= high if expr.include_high else values < high
        return mask

    def _text(self, expr: Text, positive: bool) -> np.ndarray:
        folded = [w for word in expr.words for w in words(word)]
        mask = np.zeros(self.snap.n, dtype=bool)
        if not folded:
            return mask
        if expr.phrase:  # the words one after the other in one field, the last as typed
            terms: tuple[tuple[tuple[str, bool], ...], ...] = (
                tuple((w, expr.prefix and i == len(folded) - 1) for i, w in enumerate(folded)),)
        else:  # every word's stem somewhere, each as the start of a word
            terms = tuple(((stem(w), True),) for w in folded)
        fields = (expr.field,) if expr.field else TEXT_FIELDS
        found = self._matches(terms, fields)
        mask[found] = True
        if positive:  # relevance: a match in the title counts most, then in the keywords
            self.score[found] -= 1
            if expr.field is None:
                for name, weight in (("title", 4), ("keywords", 2)):
                    self.score[self._matches(terms, fields, name)] -= weight
        return mask

    def _matches(self, terms: tuple[tuple[tuple[str, bool], ...], ...],
                 fields: tuple[str, ...], within: str | None = None) -> np.ndarray:
        """Snapshot positions of the records that hold every term (a phrase: words at
        consecutive positions; (word, True): any word that starts so) in one of `fields`,
        or, with `within`, every term in that field."""
        mask = np.ones(self.snap.n, dtype=bool)
        for phrase in terms:
            positions, found_in = self._term(phrase, fields)
            if within is not None:
                positions = positions[found_in == within]
            held = np.zeros(self.snap.n, dtype=bool)
            held[positions] = True
            mask &= held
        return np.flatnonzero(mask)

    def _term(self, phrase: tuple[tuple[str, bool], ...], fields: tuple[str, ...]
              ) -> tuple[np.ndarray, np.ndarray]:
        """Where one term is: snapshot positions and the field of each (one query per term
        and snapshot, cached)."""
        key = (phrase, fields)
        cached = self.cache.get(key)
        if cached is None:
            rows = self.db.execute(_phrase_query(phrase, fields)).all()
            rids = np.array([row[0] for row in rows], dtype=np.int64)
            found_in = np.array([row[1] for row in rows] or [""], dtype=object)[:len(rows)]
            at = np.clip(np.searchsorted(self.snap.rid, rids), 0, max(self.snap.n - 1, 0))
            known = (self.snap.rid[at] == rids) if self.snap.n else np.zeros(0, dtype=bool)
            cached = (at[known], found_in[known])
            if len(self.cache) >= 512:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = cached
        return cached


def _phrase_query(phrase: Sequence[tuple[str, bool]], fields: Iterable[str]) -> Select:
    """The row ids of records with the words of `phrase` at consecutive positions of one of
    `fields`, with the field: the same SQL on both backends (text compares byte-wise on
    each)."""
    aliases = [catalog_words.alias(f"w{i}") for i in range(len(phrase))]
    first = aliases[0]
    conditions = [first.c.field.in_(list(fields))]
    for i, (w, (word, prefix)) in enumerate(zip(aliases, phrase, strict=True)):
        if prefix:
            conditions += [w.c.word >= bindparam(f"low{i}", word),
                           w.c.word < bindparam(f"high{i}", word + _WORD_END)]
        else:
            conditions.append(w.c.word == bindparam(f"word{i}", word))
        if i:
            conditions += [w.c.rid == first.c.rid, w.c.field == first.c.field,
                           w.c.pos == first.c.pos + i]
    return select(first.c.rid, first.c.field).distinct().select_from(*aliases).where(
        *conditions)


def _stored(body: str) -> Record:
    data = json.loads(body)
    data["distributions"] = [Distribution(**d) for d in data.get("distributions", [])]
    return Record(**data)


@functools.lru_cache(maxsize=2048)
def _parsed(body: str) -> Record:
    """A stored record's text parsed once (a page of search results parses the same texts
    again and again: the workspace's dashboard, usage and report pages read every record).
    Callers get a copy (`_record`): they set the row's fields and may rebind any field."""
    return _stored(body)


def _record(row: Any, owner_of: Callable[[str], str]) -> Record:
    record = copy.copy(_parsed(row["record"]))
    record.created = row["created"]
    record.revision = row["revision"]
    record.changed = row["updated"]
    if row["store_version"] is not None and _facts_shown(
            record.access, record.restricted_to, record.publisher, row["data_access"],
            owner_of(row["data_owner"])):
        record.changed = max(row["updated"], row["store_modified"] or "")
        record.version = row["store_version"]
        record.rows = row["store_rows"]
        record.schema = json.loads(row["store_schema"])
        record.store_modified = row["store_modified"]
        if record.bbox is None and row["store_bbox"]:
            record.bbox = json.loads(row["store_bbox"])
    return record


def _facts_shown(access: str, restricted_to: list[str], publisher: str, data_access: str,
                 owner: str) -> bool:
    """Facts of held data (version, rows, schema, extent, last change, downloads) go with its
    record only where everyone who may see the record may see the data
    (`hub.access.access_in_force`): not on a public record of internal data, nor on another
    organisation's record; in search (extent, dates) as in the records themselves."""
    level, orgs = access_in_force(data_access, (access, restricted_to), owner, publisher)
    if level != access:
        return False
    return level != "restricted" or set(restricted_to) <= set(orgs)


def _facet_values(record: Record) -> list[tuple[str, str]]:
    values = [("organization", record.publisher), ("license", record.license),
              ("access", record.access), ("frequency", record.frequency)]
    values += [("theme", t) for t in record.themes]
    values += [("format", f) for f in sorted({d.format for d in record.distributions} - {""})]
    values += [("resource", d.id) for d in record.distributions]
    values += [("resource", hub_download_id(record.id, kind)) for kind in HUB_DOWNLOADS]
    values += [("municipality", a) for a in record.spatial_ags if len(a) == 8]
    values += [("restricted_to", o) for o in record.restricted_to]
    values += [("keyword", k) for k in sorted(set(record.keywords))]
    values += [("origin", record.origin)]
    return values


def _text_columns(record: Record) -> tuple[str, ...]:
    """The folded words of each text column: title, description, keywords, resources, other."""
    other = [record.name, *(t.get("title", "") + " " + t.get("description", "")
                            for t in record.translations.values())]
    resources = [f"{d.title} {d.description} {d.url}" for d in record.distributions]
    return tuple(indexed_words(text) for text in (
        record.title, record.description, " ".join(record.keywords), " ".join(resources),
        " ".join(other)))
