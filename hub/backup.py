"""`hub backup` and `hub restore`: every piece of state, consistent and checksummed.

A backup is a folder in a logical format that does not depend on the database behind the store::

    manifest.json           format, hub version, time; every table (columns, row count,
                            SHA-256 and size of its file) and every file (SHA-256, size)
    tables/<table>.jsonl    one JSON array per row, in the manifest's column order
                            (a BLOB is {"base64": "..."})
    files/data/<dataset>/v<N>/...                  the files of each version the snapshot keeps
    files/uploads/<record>/<distribution>/<file>   files uploaded as distributions
    files/uploads/workspace/<dataset>/<file>       source files uploaded in the workspace

The files are read from the store's storage (hub.storage: the store folder, or the S3 bucket of
HUB_STORAGE_URL) and a restore puts them into the target's storage, so a backup moves between
any of the four combinations: SQLite or PostgreSQL, folder or S3 (a PostgreSQL + S3
deployment restores into a single-machine hub and the other way round).

Every table of the schema (hub.db.schema) that holds state is taken, and so is any other table
found in the database (one a newer hub added); the database is read through the seam
(hub.db), so a backup is taken alike from SQLite and PostgreSQL. Left out are the migration
tool's (a restore migrates the new store itself) and the derived ones (`DERIVED_TABLES`: the
catalog's facets and full-text index), which a restore rebuilds from the records. Export
caches are derived as well and left out.

Consistency: all tables are read inside one read transaction (`Database.reading`: in SQLite's
WAL mode, and in PostgreSQL's repeatable read, a snapshot that concurrent commits do not
change), and exactly the files that snapshot references are copied from the storage
afterwards. Version files never change once committed, so a copy whose SHA-256 equals the
version log's checksum is the committed file. Two writers can still move a file away from a
snapshot: retention deletes an old version's folder after marking it purged, and a CKAN upload
records its hash before its file is moved into place. A referenced file that is missing or
differs from its recorded checksum therefore makes the backup start again with a fresh snapshot
if anything was committed since the first one; if nothing was, a version file is damaged and
the backup stops and says so (`hub check` marks damaged versions broken; broken versions are
then backed up as they are), while an upload (whose recorded hash an editor may change through
the CKAN API) is backed up as found, with a note. The backup is written beside PATH and
renamed to PATH when complete, so an interrupted backup never looks like a finished one.

Restore verifies the whole backup (every checksum, size, row count, and each version file
against the version log) before it writes anything, builds the new store in a folder beside
the target (schema from this hub's code, rows inserted in one transaction, derived indexes
rebuilt, every version verified as `hub check` does) and only then moves it into place.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

import hub
from hub.catalog.uploads import Uploads
from hub.config import Settings
from hub.db import FILE, Database, DatabaseError
from hub.db.schema import DERIVED_TABLES, STATE_TABLES, metadata
from hub.errors import HubError, StoreError
from hub.ingest.definitions import WORKSPACE
from hub.ingest.run import Progress, _Silent
from hub.storage import Storage, for_store
from hub.storage.local import LocalStorage
from hub.store import integrity
from hub.store.versions import DATA, fsync

EXPORTS = "exports"  # a version's export caches (hub.api.downloads.exports): derived, left out
FORMAT = 1  # of the backup folder; a restore refuses a newer one
MANIFEST = "manifest.json"
DATABASE = FILE
ATTEMPTS = 5  # fresh snapshots tried while writers keep moving referenced files away
MIGRATIONS = "alembic_version"  # which migration the database is at (see hub.db.migrate)
BOOKKEEPING = {"catalog_meta"}  # rows every opened store has; they do not make it "in use"
CHUNK = 1 << 20


class BackupError(HubError):
    """A backup cannot be taken, or a backup is damaged, incomplete or not restorable."""


@dataclass
class _Table:
    columns: list[dict[str, Any]]  # name, type, primary_key (position in the key, 0: none)
    rows: int
    file: str
    sha256: str
    bytes: int


@dataclass
class Summary:
    """What a backup holds or a restore wrote."""

    path: Path
    tables: dict[str, int]  # table -> rows
    files: int
    bytes: int
    attempts: int = 1
    broken: list[str] = field(default_factory=list)  # versions restored with their broken mark
    notes: list[str] = field(default_factory=list)  # uploads missing or unlike their hash


# -- the database: which tables, how rows are written -------------------------------------------

def state_tables(db: Connection) -> list[str]:
    """Every table that holds state: those of the schema that the database has, and any
    other table in it but the database's own, the migration tool's and the derived ones."""
    found = set(sa.inspect(db).get_table_names())
    unknown = {name for name in found - set(STATE_TABLES) if not name.startswith("sqlite_")
               and name not in DERIVED_TABLES and name != MIGRATIONS}
    return sorted({name for name in STATE_TABLES if name in found} | unknown)


# The types a backup names (SQLite's affinities, which both backends understand)
_TYPES: dict[str, Any] = {"INTEGER": sa.Integer, "REAL": sa.Double, "BLOB": sa.LargeBinary,
                          "TEXT": sa.Text}


def _columns(db: Connection, table: str) -> list[dict[str, Any]]:
    """Each column's name, type (`_TYPES`) and position in the primary key (0: none)."""
    inspector = sa.inspect(db)
    key = inspector.get_pk_constraint(table)["constrained_columns"]
    return [{"name": c["name"], "type": _type_name(c["type"]),
             "primary_key": key.index(c["name"]) + 1 if c["name"] in key else 0}
            for c in inspector.get_columns(table)]


def _type_name(kind: Any) -> str:
    if isinstance(kind, sa.Integer):
        return "INTEGER"
    if isinstance(kind, (sa.Float, sa.Numeric)):  # REAL, DOUBLE PRECISION, NUMERIC, …
        return "REAL"
    return "BLOB" if isinstance(kind, sa.LargeBinary) else "TEXT"


def _table(name: str, columns: list[dict[str, Any]]) -> sa.Table:
    """The table as the backup describes it (types from `_TYPES`, unknown ones as text)."""
    return sa.Table(name, sa.MetaData(), *(
        sa.Column(c["name"], _TYPES.get(str(c["type"]).upper(), sa.Text)(),
                  primary_key=bool(c["primary_key"]), autoincrement=False)
        for c in sorted(columns, key=lambda c: (c["primary_key"] == 0, c["primary_key"]))))


def _encode(value: Any) -> Any:
    return {"base64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value


def _decode(value: Any) -> Any:
    return base64.b64decode(value["base64"]) if isinstance(value, dict) else value


# -- backup -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Ref:
    """A file the snapshot refers to (its key in the store's storage)."""

    key: str
    checksum: str | None = None  # SHA-256 its record gives it
    # version: must exist and match; broken: a damaged version's file, copied as it is if
    # there; upload: its hash is what the uploader's call recorded and may be edited later
    # through the API, so a file that still differs once nothing moves is kept with a note;
    # listed: a workspace upload, found by listing its dataset's folder, copied if still there
    kind: str = "version"


@dataclass
class _Snapshot:
    tables: dict[str, _Table]
    files: dict[str, _Ref]  # path in the store -> the file
    mark: Any  # of the data it saw (`Database.mark`)


def backup(store_root: Path, target: Path, progress: Progress | None = None,
           database: Database | None = None, files: Storage | None = None) -> Summary:
    """Write a consistent backup of the store at `store_root` (its database: `database`, by
    default the SQLite file in that folder; its files: `files`, by default HUB_STORAGE_URL or
    that folder) to the new folder `target`."""
    progress = progress or _Silent()
    store_root, target = Path(store_root), Path(target).absolute()
    db = database or Database.for_store(store_root)
    if db.path is not None and not db.path.is_file():
        raise BackupError(f"there is no store at {store_root} (no {DATABASE})")
    storage = files or for_store(store_root)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} exists and is not empty: back up into a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:12]}"
    notes: list[str] = []
    try:
        for attempt in range(1, ATTEMPTS + 1):
            shutil.rmtree(work, ignore_errors=True)
            (work / "tables").mkdir(parents=True)
            snap = _snapshot(db, storage, work, progress)
            copied, problems = _copy_files(snap, storage, work, progress)
            moved = db.mark(fresh=True) != snap.mark
            if not problems:
                break
            # an upload's file is moved into place just after its record is committed, so
            # one more look is worth it even when nothing was committed since the snapshot
            moved = moved or (attempt == 1 and any(k == "upload" for _, k in problems))
            if not moved or attempt == ATTEMPTS:
                fatal = [text for text, kind in problems if kind == "version"]
                if fatal:
                    raise BackupError(
                        "files the version log refers to are missing or damaged: "
                        + "; ".join(fatal) + ". Run `hub check` (it marks damaged versions "
                        "broken, which a backup then records as they are) and back up again")
                notes = [text for text, _ in problems]
                break
            time.sleep(0.1 * attempt)  # a writer is between its two steps: take a new snapshot
        manifest = {
            "format": FORMAT, "hub_version": hub.__version__,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "source": {"backend": db.dialect, "store": str(store_root.absolute()),
                       "database": str(db), "storage": storage.url},
            "tables": {name: vars(t) for name, t in snap.tables.items()},
            "files": {path: {"sha256": digest, "bytes": size}
                      for path, (digest, size) in sorted(copied.items())},
            "notes": notes}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False),
                                     encoding="utf-8")
        fsync(work / MANIFEST)
        for folder in (work / "tables", work):
            fsync(folder)
        if target.exists():
            target.rmdir()  # the empty folder checked above
        os.rename(work, target)
        fsync(target.parent)
    except OSError as exc:  # a full disk, a folder that cannot be written or read
        raise BackupError(f"the backup to {target} failed: {exc}") from None
    except DatabaseError as exc:
        raise BackupError(f"the store's database cannot be read: {exc}") from None
    except StoreError as exc:  # object storage that cannot be listed or read
        raise BackupError(f"the store's files cannot be read: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if database is None:
            db.close()
    return Summary(target, {n: t.rows for n, t in snap.tables.items()}, len(copied),
                   sum(size for _, size in copied.values()), attempt, notes=notes)


def _snapshot(database: Database, files: Storage, work: Path, progress: Progress
              ) -> _Snapshot:
    """Dump every table inside one read transaction and list the files it refers to (copied
    afterwards, outside it: no long read transaction)."""
    with database.reading() as (db, mark):
        tables = {}
        names = state_tables(db)
        progress.start("tables", len(names), "rows")
        for name in names:
            tables[name] = _dump(db, name, work / "tables" / f"{name}.jsonl")
            progress.advance(1)
        progress.done()
        refs: dict[str, _Ref] = {}
        kept = db.exec_driver_sql(
            "SELECT dataset, version, checksum, broken FROM versions WHERE purged = 0"
        ).all() if "versions" in names else []
        for dataset, number, checksum, broken in kept:
            folder = f"data/{dataset}/v{number}"
            kind = "broken" if broken else "version"
            refs[f"{folder}/{DATA}"] = _Ref(f"{folder}/{DATA}", checksum, kind)
            for extra in files.children(folder):  # gone: data.parquet is missed
                if extra not in (DATA, EXPORTS):  # exports are derived
                    refs[f"{folder}/{extra}"] = _Ref(f"{folder}/{extra}", kind=kind)
        uploads = Uploads(Path("."), 0)
        records = db.exec_driver_sql("SELECT id, record FROM catalog_records").all() \
            if "catalog_records" in names else []  # a store that only ingests has no catalog
        for record_id, body in records:
            for dist in json.loads(body).get("distributions", []):
                if dist.get("upload"):
                    key = uploads.path(record_id, dist["id"], dist["upload"]).as_posix()
                    digest = str(dist.get("hash") or "")
                    refs[key] = _Ref(key, digest[7:] if digest.startswith("sha256:") else None,
                                     "upload")
        for dataset in files.children(WORKSPACE):  # the workspace's uploaded source files
            for name in files.children(f"{WORKSPACE}/{dataset}"):
                refs[f"{WORKSPACE}/{dataset}/{name}"] = _Ref(
                    f"{WORKSPACE}/{dataset}/{name}", kind="listed")
    return _Snapshot(tables, refs, mark)


def _dump(db: Connection, table: str, path: Path) -> _Table:
    columns = _columns(db, table)
    found = sa.table(table, *(sa.column(c["name"]) for c in columns))
    digest, rows, size = hashlib.sha256(), 0, 0
    with open(path, "wb") as out:
        for row in db.execute(sa.select(*found.c)):
            line = (json.dumps([_encode(v) for v in row], ensure_ascii=False) + "\n").encode()
            out.write(line)
            digest.update(line)
            rows, size = rows + 1, size + len(line)
        out.flush()
        os.fsync(out.fileno())
    return _Table(columns, rows, f"tables/{path.name}", digest.hexdigest(), size)


def _copy_files(snap: _Snapshot, files: Storage, work: Path, progress: Progress
                ) -> tuple[dict[str, tuple[str, int]], list[tuple[str, str]]]:
    """Copy the snapshot's files out of the storage; returns what was copied (SHA-256, size)
    and what was missing or differed from its record (with the kind of file)."""
    copied: dict[str, tuple[str, int]] = {}
    problems = []
    progress.start("files", len(snap.files), "files")
    for rel, ref in sorted(snap.files.items()):
        progress.advance(1)
        try:
            if not files.exists(ref.key):
                raise FileNotFoundError(ref.key)
            with files.open(ref.key) as inp:
                digest, size = copy_stream(inp, work / "files" / rel)
        except FileNotFoundError:
            if ref.kind not in ("broken", "listed"):
                problems.append((f"{rel} is missing", ref.kind))
            (work / "files" / rel).unlink(missing_ok=True)
            continue
        if ref.kind != "broken" and ref.checksum is not None and digest != ref.checksum:
            problems.append((f"{rel} has SHA-256 {digest[:12]}…, its record says "
                             f"{ref.checksum[:12]}…", ref.kind))
            if ref.kind == "version":
                (work / "files" / rel).unlink()
                continue
        copied[f"files/{rel}"] = (digest, size)
    progress.done()
    return copied, problems


def copy_file(src: Path, dst: Path, progress: Progress | None = None) -> tuple[str, int]:
    """Copy `src` to `dst` (flushed to disk), hashing it on the way: (SHA-256, size)."""
    with open(src, "rb") as inp:
        return copy_stream(inp, dst, progress)


def copy_stream(inp: BinaryIO, dst: Path, progress: Progress | None = None
                ) -> tuple[str, int]:
    """Write the stream `inp` to `dst` (flushed to disk), hashing it: (SHA-256, size)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(dst, "wb") as out:
        while chunk := inp.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
            if progress is not None:
                progress.advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


# -- restore ------------------------------------------------------------------------------------

def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, checked for what a restore relies on."""
    path = Path(folder) / MANIFEST
    if not Path(folder).is_dir():
        raise BackupError(f"{folder} is not a backup folder (no such folder)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{path} is missing: {folder} is not a complete backup") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"{path} is damaged (not JSON: {exc})") from None
    version = manifest.get("format") if isinstance(manifest, dict) else None
    if not isinstance(version, int):
        raise BackupError(f"{path}: no backup format number; this is not a hub backup")
    if version > FORMAT:
        raise BackupError(f"{path}: the backup has format {version}, made by a newer hub "
                          f"(version {manifest.get('hub_version', '?')}); this hub reads "
                          f"format {FORMAT} and older. Restore it with a newer hub")
    problem = _malformed(manifest)
    if problem:
        raise BackupError(f"{path} is damaged: {problem}")
    return manifest


def _malformed(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the structure of a manifest (None: nothing)."""
    tables, files = manifest.get("tables"), manifest.get("files")
    if not isinstance(tables, dict) or not isinstance(files, dict):
        return "the list of tables or of files is missing"
    for rel, entry in files.items():
        if not (rel.startswith("files/") and _entry(entry)):
            return f"the entry of file {rel!r} is invalid"
    for name, table in tables.items():
        columns = table.get("columns") if isinstance(table, dict) else None
        if not (_entry(table) and isinstance(table.get("rows"), int)
                and table.get("file") == f"tables/{name}.jsonl" and isinstance(columns, list)
                and columns and all(_column(c) for c in columns)):
            return f"the entry of table {name!r} is invalid"
    return None


def _entry(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256"), str))


def _column(column: Any) -> bool:
    return (isinstance(column, dict) and isinstance(column.get("name"), str)
            and isinstance(column.get("primary_key"), int)
            and bool(re.fullmatch(r"[A-Za-z0-9_ (),]*", str(column.get("type")))))


def verify(folder: Path, manifest: dict[str, Any], progress: Progress | None = None) -> None:
    """Check every file and table of a backup against its manifest and the version log;
    raise BackupError naming the first file that is missing, damaged or inconsistent."""
    progress = progress or _Silent()
    folder = Path(folder)
    entries = {rel: f for rel, f in manifest["files"].items()}
    entries |= {t["file"]: t for t in manifest["tables"].values()}
    progress.start("verifying", sum(int(e["bytes"]) for e in entries.values()), "bytes")
    for rel, entry in sorted(entries.items()):
        _check_file(folder, rel, entry, progress)
    progress.done()
    for name, table in manifest["tables"].items():
        for _ in _rows(folder, name, table):
            pass
    versions = manifest["tables"].get("versions")
    if versions is None:
        raise BackupError(f"{folder / MANIFEST}: the version log (table versions) is missing")
    names = [c["name"] for c in versions["columns"]]
    for row in _rows(folder, "versions", versions):
        v = dict(zip(names, row, strict=True))
        rel = f"files/data/{v.get('dataset')}/v{v.get('version')}/data.parquet"
        if v.get("purged") or v.get("broken"):
            continue
        if rel not in manifest["files"]:
            raise BackupError(f"{folder}: {rel} (version {v['version']} of {v['dataset']!r}) "
                              "is not in the backup")
        if manifest["files"][rel]["sha256"] != v.get("checksum"):
            raise BackupError(f"{folder / rel}: its SHA-256 differs from the checksum the "
                              f"version log records for version {v['version']} of "
                              f"{v['dataset']!r}")


def _check_file(folder: Path, rel: str, entry: dict[str, Any], progress: Progress) -> None:
    path = folder / rel
    if ".." in Path(rel).parts or Path(rel).is_absolute():
        raise BackupError(f"{folder / MANIFEST}: the path {rel!r} leaves the backup folder")
    try:
        with open(path, "rb") as fh:
            digest, size = hashlib.sha256(), 0
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                progress.advance(len(chunk))
    except FileNotFoundError:
        raise BackupError(f"{path} is missing from the backup") from None
    except OSError as exc:
        raise BackupError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if size != entry["bytes"]:
        raise BackupError(f"{path} has {size:,} bytes, the manifest records "
                          f"{entry['bytes']:,} (truncated or changed)")
    if digest.hexdigest() != entry["sha256"]:
        raise BackupError(f"{path} is damaged: its SHA-256 differs from the manifest's")


def _rows(folder: Path, name: str, table: dict[str, Any]) -> Iterator[list[Any]]:
    path = folder / table["file"]
    width, count = len(table["columns"]), 0
    with open(path, encoding="utf-8") as fh:
        for count, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                if not isinstance(row, list) or len(row) != width:
                    raise ValueError(f"expected {width} values of table {name!r}")
                values = [_decode(v) for v in row]
            except (KeyError, TypeError, ValueError) as exc:
                raise BackupError(f"{path}, line {count}: not a row of the table ({exc})"
                                  ) from None
            yield values
    if count != table["rows"]:
        raise BackupError(f"{path}: {count} rows, the manifest records {table['rows']}")


def occupied(store: Path, database: Database | None = None, files: Storage | None = None
             ) -> list[str]:
    """What the store at `store` (with its database: `database`, by default the SQLite file
    in that folder; its files in `files`, by default that folder) holds (empty list: nothing
    a restore would replace)."""
    store = Path(store)
    found = []
    if files is not None and not isinstance(files, LocalStorage):
        found += [f"files under {sub}/ in {files.url}" for sub in ("data", "uploads")
                  if files.children(sub)]
    if database is not None or (store / DATABASE).is_file():
        database = database or Database.for_store(store)
        try:
            with database.connection() as db:
                for name in state_tables(db):
                    if name not in BOOKKEEPING:
                        rows = db.execute(sa.select(sa.func.count()).select_from(
                            sa.table(name))).scalar_one()
                        found += [f"{rows} rows in table {name}"] if rows else []
        except DatabaseError as exc:
            found.append(f"the database {database}, which cannot be read ({exc})")
        finally:
            database.close()
    if not store.exists():
        return found
    for sub in ("data", "uploads"):
        files = sum(1 for f in (store / sub).rglob("*") if f.is_file())
        found += [f"{files} files under {sub}/"] if files else []
    known = {DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", "data", "uploads", "locks",
             "staging", "cache"}  # cache/: the server's mapped layers (hub.api.ogc.mapped)
    found += [entry.name for entry in store.iterdir() if entry.name not in known]
    return found


def restore(folder: Path, settings: Settings, force: bool = False,
            progress: Progress | None = None) -> Summary:
    """Restore the backup in `folder` as the store of `settings` (empty unless `force`).

    On the SQLite default the whole store, database included, is built beside the target and
    moved into place. With a PostgreSQL database (HUB_DATABASE_URL) the files are built beside
    the target and the rows written into that database in one transaction, just before the
    files are moved into place. With object storage (HUB_STORAGE_URL) the files are put there
    first (on `force` after the storage's data/ and uploads/ were emptied: objects are not
    renamed into place), then the rows are written; a restore that fails between the two
    leaves only objects no row refers to, which the next writer of each dataset removes."""
    progress = progress or _Silent()
    folder = Path(folder)
    manifest = read_manifest(folder)
    store = settings.store
    storage = for_store(store, settings.storage_url)
    found = occupied(store, settings.database() if settings.database_url else None, storage)
    if found and not force:
        raise BackupError(f"the store {store} is not empty ({', '.join(found[:5])}); restore "
                          "into an empty store, or replace this one with --force (stop the "
                          "server first)")
    verify(folder, manifest, progress)
    store.parent.mkdir(parents=True, exist_ok=True)
    work = store.parent / f".{store.name}.restoring-{uuid.uuid4().hex[:12]}"
    local = isinstance(storage, LocalStorage)
    try:
        if found and not local:  # --force: objects are replaced in place, not renamed
            for sub in ("data", "uploads"):
                storage.delete(sub)
        broken = _build(folder, manifest, replace(settings, store=work), progress)
        _swap(work, store)
    except (OSError, DatabaseError, StoreError) as exc:  # a full disk, a folder or bucket
        # that cannot be written
        kept = "nothing was changed" if local else (
            f"the database was not changed, the files in {storage.url} were"
            f"{' replaced (--force)' if found else ' partly written'}; restore again with "
            "--force")
        raise BackupError(f"the restore into {store} failed, {kept}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = manifest["files"]
    return Summary(store, {n: t["rows"] for n, t in manifest["tables"].items()}, len(files),
                   sum(f["bytes"] for f in files.values()), broken=broken)


def _build(folder: Path, manifest: dict[str, Any], settings: Settings,
           progress: Progress) -> list[str]:
    """Make a complete store at `settings.store` from a verified backup."""
    from hub.web.services import Services  # opens every table the server uses

    files = manifest["files"]
    storage = for_store(settings.store, settings.storage_url)
    progress.start("files", sum(f["bytes"] for f in files.values()), "bytes")
    for rel, entry in sorted(files.items()):
        key = Path(rel).relative_to("files").as_posix()
        local = settings.store / key  # in the store folder: the file itself, or a copy
        digest, _ = copy_file(folder / rel, local, progress)
        if digest != entry["sha256"]:  # changed since `verify` read it
            raise BackupError(f"{folder / rel} changed while it was restored")
        if not isinstance(storage, LocalStorage):
            storage.put(local, key)
            if key.startswith("data/"):  # version files are read from the storage
                local.unlink()
    progress.done()
    services = Services.open(settings)
    tables = manifest["tables"]
    known = [t.name for t in metadata.sorted_tables]  # a table before those referring to it
    order = sorted(tables, key=lambda name: (known.index(name) if name in known
                                             else len(known), name))
    loading = ""
    try:
        with services.catalog.db.write() as db:  # one transaction (DDL included)
            for name in reversed([*order, *(n for n in state_tables(db) if n not in tables)]):
                if sa.inspect(db).has_table(name):  # what a store replaced with --force held
                    db.execute(sa.delete(sa.table(name)))
            for loading in order:
                _load(db, folder, loading, tables[loading])
    except IntegrityError as exc:
        raise BackupError(f"{folder / tables[loading]['file']}: its rows do not fit table "
                          f"{loading!r} of this hub ({exc.orig})") from None
    services.catalog.rebuild_index()
    store = services.catalog.store
    broken = []
    for dataset in store.datasets():
        for v in store.versions(dataset.name):
            if v.purged:
                continue
            if v.broken:
                broken.append(f"{v.dataset} v{v.version}: {v.broken}")
            elif (reason := integrity.problem(v, v.checksum)) is not None:
                raise BackupError(f"version {v.version} of {v.dataset!r} fails its check "
                                  f"after the restore: {reason}")
    return broken


def _load(db: Connection, folder: Path, name: str, table: dict[str, Any]) -> None:
    """Replace the rows of table `name` with the backup's (adding what this schema lacks)."""
    columns = table["columns"]
    described = _table(name, columns)
    if not sa.inspect(db).has_table(name):
        described.create(db)
    else:
        have = {c["name"] for c in sa.inspect(db).get_columns(name)}
        quote = db.dialect.identifier_preparer.quote
        for column in described.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=db.dialect)
                db.exec_driver_sql(f"ALTER TABLE {quote(name)} ADD COLUMN "
                                   f"{quote(column.name)} {kind}")
    names = [c["name"] for c in columns]
    batch: list[dict[str, Any]] = []
    for row in _rows(folder, name, table):
        batch.append(dict(zip(names, row, strict=True)))
        if len(batch) == 1000:
            db.execute(described.insert(), batch)
            batch = []
    if batch:
        db.execute(described.insert(), batch)
    if db.dialect.name == "postgresql":  # the keys PostgreSQL gives next: after the restored
        for column in described.primary_key.columns:
            sequence = db.execute(sa.select(sa.func.pg_get_serial_sequence(
                name, column.name))).scalar()
            if sequence is not None:
                top = db.execute(sa.select(sa.func.max(column))).scalar()
                db.execute(sa.select(sa.func.setval(sequence, (top or 0) + 1, False)))


def _swap(work: Path, store: Path) -> None:
    """Put the finished store `work` where `store` is, replacing it (renames only)."""
    fsync(work)
    old = store.parent / f".{store.name}.replaced-{uuid.uuid4().hex[:12]}"
    if store.exists():
        os.rename(store, old)
    try:
        os.rename(work, store)
    except OSError:
        if old.exists():
            os.rename(old, store)
        raise
    fsync(store.parent)
    shutil.rmtree(old, ignore_errors=True)
