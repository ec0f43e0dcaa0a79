"""The versioned store: immutable (Geo)Parquet versions and a log of them in the database.

Layout under the store root::

    hub.sqlite                      datasets, versions, events (the default database: hub.db)
    data/<dataset>/v<N>/            one immutable version: data.parquet [+ quarantine.parquet]
                                    (in the store's storage: this folder, or S3, see hub.storage)
    staging/<dataset>.<run>/        a run in progress (never read by anyone else)
    locks/<dataset>.lock            one writer per dataset on SQLite (see below)

A run writes into staging, publishes the folder as its version's files (fsync and rename into
`data/` on local storage, one PUT per file on S3) and then, in one database transaction,
records the version and moves the dataset's `current` pointer. Readers
look up the pointer and read files that never change, so they see the old or the new version,
never a mix.
A run killed at any point leaves at most a staging folder or unrecorded version files; the
next writer of that dataset removes both before it starts (`hub check` too).

One writer per dataset, on every machine that shares the store's database: a run holds the
dataset's lock (hub.db.locks) from before it cleans up until after its commit. On PostgreSQL
that is a session-level advisory lock on a connection of the run's own, so CLI runs, the
server and the job workers of every replica exclude each other whatever folders they have,
and a killed holder's lock is gone with its session. On SQLite (one machine) it is `flock` on
`locks/<dataset>.lock` beside the database file, released by the kernel when the holder dies.
The job queue keeps one running job per dataset as well; the lock is what also holds off a
`hub ingest` on the command line or a run of another hub process. Before the commit a run
checks that its lock is still held (a PostgreSQL session that broke took its lock with it), so
a run that lost its lock never commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from hub import audit
from hub.db import Database, locks
from hub.db.schema import datasets, events, versions
from hub.errors import StoreError
from hub.storage import Storage, for_store
from hub.storage.local import fsync as fsync  # hub.backup and the exports use it from here
from hub.store import faults, integrity
from hub.store.integrity import CorruptVersion

DATA = "data.parquet"
QUARANTINE = "quarantine.parquet"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Version:
    """One committed, immutable version of a dataset."""

    dataset: str
    version: int
    rows: int
    quarantined: int
    checksum: str
    schema: dict[str, Any]
    bbox: list[float] | None
    geometry_types: list[str]
    source_crs: list[str]
    source_fingerprint: str
    source_state: dict[str, Any]
    pipeline_hash: str
    started: str
    finished: str
    run_by: str
    report: dict[str, Any]
    purged: bool
    path: Path  # the version's folder in the store folder: its files on local storage, the
    # local copies of its exports on any storage
    broken: str | None = None  # why `hub check` or the server found the file damaged
    files: Storage | None = field(default=None, compare=False, repr=False)

    @property
    def data_file(self) -> Path:
        """The data file in the store folder (local storage only: readers use `source`)."""
        return self.path / DATA

    @property
    def quarantine_file(self) -> Path:
        return self.path / QUARANTINE

    @property
    def key(self) -> str:
        """The version's folder in its storage."""
        return f"data/{self.dataset}/v{self.version}"

    def _storage(self) -> Storage:
        if self.files is None:
            raise StoreError(f"version {self.version} of {self.dataset!r} has no storage")
        return self.files

    def source(self, name: str = DATA) -> str | pa.NativeFile:
        """One of the version's files for pyarrow (a path, or a file read by HTTP ranges)."""
        return self._storage().source(f"{self.key}/{name}")

    def location(self, name: str = DATA) -> str:
        """One of the version's files for DuckDB's read_parquet."""
        return self._storage().location(f"{self.key}/{name}")

    def exists(self, name: str = DATA) -> bool:
        return self._storage().exists(f"{self.key}/{name}")


@dataclass(frozen=True)
class Dataset:
    """A dataset the store knows, with its current version number."""

    name: str
    title: str
    organization: str
    access: str
    update_frequency: str
    pipeline: str
    attribution: str
    current_version: int | None
    created: str
    updated: str


@dataclass
class Draft:
    """What an ingest run hands to `Store.commit`: facts about the staged files."""

    rows: int
    quarantined: int
    schema: dict[str, Any]
    bbox: list[float] | None
    geometry_types: list[str]
    source_crs: list[str]
    source_fingerprint: str
    source_state: dict[str, Any]
    pipeline_hash: str
    started: str
    run_by: str
    report: dict[str, Any]


# The reads (run through Database.rows): the current version of a dataset is the lookup of
# every data request that is not cached.
_DATASETS = select(datasets).order_by(datasets.c.name)
_DATASET = select(datasets).where(datasets.c.name == bindparam("name"))
_CURRENT = select(versions).join(datasets, (datasets.c.name == versions.c.dataset)
                                 & (datasets.c.current_version == versions.c.version)
                                 ).where(datasets.c.name == bindparam("name"))
_VERSIONS = select(versions).where(versions.c.dataset == bindparam("name")).order_by(
    versions.c.version.desc())
_VERSION = select(versions).where(versions.c.dataset == bindparam("name"),
                                  versions.c.version == bindparam("number"))


class Store:
    """Versioned datasets on disk; safe for one writer per dataset and any number of readers."""

    def __init__(self, root: Path | str, database: Database | None = None,
                 files: Storage | None = None):
        """The store in the folder `root`; its log in `database` (default: the SQLite file
        `root/hub.sqlite`), brought to the newest schema first (see hub.db.migrate); its
        versions' files in `files` (default: HUB_STORAGE_URL, else the folder `root`)."""
        self.root = Path(root)
        self.files = files or for_store(self.root)
        self._sound: set[tuple[str, int, str]] = set()  # versions verified by this process
        self._verifying = threading.Lock()
        self._held: dict[str, locks.Lock] = {}  # the writer locks of this store's runs
        for sub in ("data", "staging"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        from hub.db import migrate  # Alembic: imported when a store is opened, not before

        self.db = database or Database.for_store(self.root)
        migrate.upgrade(self.db)

    # -- reading ---------------------------------------------------------------------------

    def datasets(self) -> list[Dataset]:
        return [Dataset(**r) for r in self.db.rows(_DATASETS)]

    def dataset(self, name: str) -> Dataset:
        found = self.db.rows(_DATASET, {"name": name})
        if not found:
            raise StoreError(f"unknown dataset {name!r}")
        return Dataset(**found[0])

    def current(self, name: str) -> Version | None:
        """The version readers are served now (None before the first commit)."""
        found = self.db.rows(_CURRENT, {"name": name})
        return self._version(found[0]) if found else None

    def versions(self, name: str) -> list[Version]:
        self.dataset(name)
        return [self._version(r) for r in self.db.rows(_VERSIONS, {"name": name})]

    def version(self, name: str, number: int) -> Version:
        found = self.db.rows(_VERSION, {"name": name, "number": number})
        if not found:
            raise StoreError(f"dataset {name!r} has no version {number}")
        return self._version(found[0])

    def events(self, name: str) -> list[dict[str, Any]]:
        with self.db.connection() as db:
            rows = db.execute(select(events).where(events.c.dataset == name)
                              .order_by(events.c.id.desc())).all()
        return [r._asdict() for r in rows]

    def _version(self, row: dict[str, Any]) -> Version:
        d = dict(row)
        for key in ("schema", "bbox", "geometry_types", "source_crs", "source_state", "report"):
            d[key] = json.loads(d[key]) if d[key] is not None else None
        d["geometry_types"] = d["geometry_types"] or []
        d["source_crs"] = d["source_crs"] or []
        d["purged"] = bool(d["purged"])
        d["path"] = self.version_dir(d["dataset"], d["version"])
        return Version(**d, files=self.files)

    def version_dir(self, name: str, number: int) -> Path:
        return self.root / "data" / name / f"v{number}"

    # -- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[Path]:
        """Hold the dataset's writer lock and a fresh staging folder for one run.

        Leftovers of runs that died (staging folders, unrecorded version folders) are removed
        first; the staging folder is removed on exit unless `commit` moved it into place.
        """
        with self._writer_lock(name):
            self.clean(name)
            staging = self.root / "staging" / f"{name}.{uuid.uuid4().hex[:12]}"
            try:
                staging.mkdir()
                yield staging
            except (OSError, sqlite3.OperationalError, OperationalError) as exc:
                if not _disk_full(exc):
                    raise
                written = _size(staging)
                shutil.rmtree(staging, ignore_errors=True)  # give the space back first
                raise DiskFull(self._full_message(name, exc, written)) from exc
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def _full_message(self, name: str, exc: BaseException, written: int) -> str:
        try:
            current = self.dataset(name).current_version
        except StoreError:
            current = None
        kept = (f"version {current} stays current and intact" if current
                else "the dataset has no version yet")
        free = shutil.disk_usage(self.root).free
        return (f"dataset {name!r}: the file system of the store ({self.root}) is full "
                f"({exc}). The run had written {_mb(written)} when space ran out, so it needs "
                f"more than that (free now: {_mb(free)}). Nothing was committed: {kept}. "
                "Free some space (or move the store to a bigger disk) and run it again.")

    @contextlib.contextmanager
    def _writer_lock(self, name: str) -> Iterator[None]:
        try:
            with locks.hold(self.db, name) as lock:
                self._held[name] = lock
                try:
                    yield
                finally:
                    self._held.pop(name, None)
        except locks.Taken:
            raise StoreError(f"another run is writing dataset {name!r} right now; "
                             "try again when it has finished") from None

    def clean(self, name: str) -> list[str]:
        """Remove what runs of the dataset that died left behind: staging folders and version
        files in the storage that no row of the version log refers to (a run killed between
        publishing its files and its commit). Returns the removed version folders' keys.
        Call while holding the writer lock (`writing` does; see `clean_now`)."""
        for stale in (self.root / "staging").glob(f"{name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
        folder = f"data/{name}"
        found = self.files.children(folder)
        if not found:
            return []
        with self.db.connection() as db:
            known = {f"v{n}" for n in db.scalars(select(versions.c.version)
                                                 .where(versions.c.dataset == name))}
        removed = []
        for child in found:
            if child not in known:
                self.files.delete(f"{folder}/{child}")
                removed.append(f"{folder}/{child}")
        return removed

    def clean_now(self, name: str) -> list[str]:
        """`clean` under the dataset's writer lock (`hub check`); a StoreError while a run
        is writing the dataset."""
        with self._writer_lock(name):
            return self.clean(name)

    def commit(self, staging: Path, name: str, meta: dict[str, str], draft: Draft) -> Version:
        """Make the staged files the dataset's next version, atomically.

        `meta` holds the dataset's descriptive fields (title, organization, access,
        update_frequency, pipeline, attribution). Call only inside `writing(name)`.
        """
        lock = self._held.get(name)
        if lock is None:
            raise StoreError(f"dataset {name!r}: a commit outside `writing` (no writer lock)")
        with self.db.connection() as db:
            last = db.scalar(select(func.max(versions.c.version))
                             .where(versions.c.dataset == name))
        number = (last or 0) + 1
        key = f"data/{name}/v{number}"
        checksum = integrity.sha256(staging / DATA)
        self.files.publish(staging, key)
        faults.point("version-renamed")
        staging.mkdir()  # `writing` removes its staging folder on exit
        stamp = now()
        try:
            lock.check()  # a run whose lock went with its database session must not commit
            described = {"title": meta["title"], "organization": meta["organization"],
                         "access": meta["access"], "update_frequency": meta["update_frequency"],
                         "pipeline": meta["pipeline"],
                         "attribution": meta.get("attribution", ""),
                         "current_version": number, "updated": stamp}
            upsert = self.db.insert(datasets).values(name=name, created=stamp, **described)
            with self.db.write() as db:  # one transaction: pointer, version and event
                db.execute(upsert.on_conflict_do_update(index_elements=[datasets.c.name],
                                                        set_=described))
                db.execute(versions.insert().values(
                    dataset=name, version=number, rows=draft.rows,
                    quarantined=draft.quarantined, checksum=checksum,
                    schema=json.dumps(draft.schema), bbox=json.dumps(draft.bbox),
                    geometry_types=json.dumps(draft.geometry_types),
                    source_crs=json.dumps(draft.source_crs),
                    source_fingerprint=draft.source_fingerprint,
                    source_state=json.dumps(draft.source_state),
                    pipeline_hash=draft.pipeline_hash, started=draft.started, finished=stamp,
                    run_by=draft.run_by, report=json.dumps(draft.report, default=str)))
                db.execute(events.insert().values(dataset=name, at=stamp, kind="commit",
                                                  version=number, who=draft.run_by))
                audit.record(self.db, actor=draft.run_by, action="version.commit",
                             subject=name, before={"version": last},
                             after={"version": number, "rows": draft.rows,
                                    "quarantined": draft.quarantined,
                                    "pipeline": meta["pipeline"], "checksum": checksum},
                             connection=db)
        except BaseException:
            self.files.delete(key)
            raise
        faults.point("committed")
        return self.version(name, number)

    def log(self, name: str, kind: str, who: str, detail: str = "",
            version: int | None = None) -> None:
        """Record a run that made no version (failed, unchanged) in the dataset's history."""
        with self.db.connection() as db:
            db.execute(events.insert().values(dataset=name, at=now(), kind=kind,
                                              version=version, who=who, detail=detail[:4000]))

    def rollback(self, name: str, number: int, who: str) -> Version:
        """Serve an earlier version again (the versions after it are kept). Under the
        dataset's writer lock: refused while a run writes it (its retention could purge the
        version being made current)."""
        with self._writer_lock(name):
            return self._rollback(name, number, who)

    def _rollback(self, name: str, number: int, who: str) -> Version:
        target = self.version(name, number)
        if target.purged:
            raise StoreError(f"version {number} of {name!r} was removed by the retention "
                             "policy and cannot be restored")
        if target.broken:
            raise StoreError(f"version {number} of {name!r} is broken ({target.broken}); "
                             "roll back to another version, or restore the file and run "
                             f"`hub check {name}`")
        with self.db.write() as db:
            before = db.scalar(select(datasets.c.current_version)
                               .where(datasets.c.name == name))
            db.execute(update(datasets).where(datasets.c.name == name)
                       .values(current_version=number, updated=now()))
            db.execute(events.insert().values(dataset=name, at=now(), kind="rollback",
                                              version=number, who=who))
            audit.record(self.db, actor=who, action="version.rollback", subject=name,
                         before={"version": before}, after={"version": number},
                         connection=db)
        return target

    def apply_retention(self, name: str, keep: int, who: str = "retention") -> list[int]:
        """Delete the files of all but the newest `keep` versions (never the current one).
        Call while holding the writer lock (the ingest does, after its commit)."""
        if keep < 1:
            raise StoreError("retention must keep at least one version")
        current = self.dataset(name).current_version
        purged = []
        for v in self.versions(name)[keep:]:
            if v.purged or v.version == current:
                continue
            with self.db.connection() as db:
                db.execute(update(versions).where(versions.c.dataset == name,
                                                  versions.c.version == v.version)
                           .values(purged=1))
            self.files.delete(v.key)
            shutil.rmtree(v.path, ignore_errors=True)  # local copies of its exports
            self.log(name, "purge", who, version=v.version)
            purged.append(v.version)
        return purged

    # -- integrity ---------------------------------------------------------------------------

    def ensure_sound(self, version: Version) -> None:
        """Raise CorruptVersion unless the version's file is the one committed.

        The file is hashed once per process and version (see hub.store.integrity); a damaged
        one is marked broken in the version log, so every process stops serving it."""
        if version.broken:
            raise CorruptVersion(version.dataset, version.version, version.broken)
        key = (version.dataset, version.version, version.checksum)
        if key in self._sound:
            return
        with self._verifying:
            if key in self._sound:
                return
            reason = integrity.problem(version, version.checksum)
            if reason is None:
                self._sound.add(key)
                return
        with contextlib.suppress(SQLAlchemyError):  # the 503 matters more than the record
            self.mark_broken(version.dataset, version.version, reason, who="server")
        raise CorruptVersion(version.dataset, version.version, reason)

    @contextlib.contextmanager
    def reading(self, version: Version) -> Iterator[None]:
        """A read of the version's file: when it fails, the file is checked again, so a
        damaged file raises CorruptVersion (and is marked) and other errors pass unchanged."""
        try:
            yield
        except (OSError, pa.ArrowException):
            self._sound.discard((version.dataset, version.version, version.checksum))
            self.ensure_sound(version)
            raise

    def check(self, version: Version, who: str) -> str | None:
        """Verify a version's file now (`hub check`): mark it broken, or clear the mark of
        a file that is sound again; return what is wrong with it (None when nothing is)."""
        reason = integrity.problem(version, version.checksum)
        if reason is not None:
            self.mark_broken(version.dataset, version.version, reason, who)
        elif version.broken:
            self.mark_sound(version.dataset, version.version, who)
        return reason

    def mark_broken(self, name: str, number: int, reason: str, who: str) -> None:
        """Record that a version's file is damaged: it is not served until repaired."""
        with self.db.write() as db:
            changed = db.execute(update(versions).where(
                versions.c.dataset == name, versions.c.version == number,
                versions.c.broken.is_distinct_from(reason)).values(broken=reason)).rowcount
            if changed:
                db.execute(events.insert().values(dataset=name, at=now(), kind="broken",
                                                  version=number, who=who, detail=reason))

    def mark_sound(self, name: str, number: int, who: str) -> None:
        """Clear a broken mark after the file was found sound again (restored from backup)."""
        with self.db.write() as db:
            changed = db.execute(update(versions).where(
                versions.c.dataset == name, versions.c.version == number,
                versions.c.broken.is_not(None)).values(broken=None)).rowcount
            if changed:
                db.execute(events.insert().values(dataset=name, at=now(), kind="repaired",
                                                  version=number, who=who))


class DiskFull(StoreError):
    """The store's file system ran out of space during a run; nothing was committed."""


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    cause = getattr(exc, "orig", exc)  # SQLAlchemy wraps the driver's error
    return getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
