"""A dataset's uploaded files: received in a staging file (streamed, size-limited, see
`hub.catalog.uploads`), checked, and only then kept in the dataset's folder
(`hub.ingest.definitions.folder`). An upload of several files is kept whole or not at all.

The files are kept in the store's storage (hub.storage) under `uploads/workspace/<dataset>/`,
and the folder is this machine's copy: with S3 the replica that receives an upload puts it
there, and any other replica (its pages) or worker (the ingest, `hub.ingest.definitions.
fetch_uploads`) fetches the dataset's files before it reads them. On the default storage the
folder is the stored files themselves.

Refused, with a message naming the file and nothing kept:
- a name that names a folder (`../x.csv`, `a/b.csv`, `C:\\x.csv`), a hidden or control-character
  name, or a kind of file the ingest does not read;
- a file whose content is not what its name says (content sniffing): an .xlsx that is not a
  workbook, a .csv or .geojson that is binary, a .gpkg that is not a GeoPackage;
- a zip (a zipped Shapefile, and every .xlsx) with unsafe member names, too many members, a
  member that packs more than `Limits.ratio` to one (a zip bomb) or more than
  `Limits.unpacked` bytes in all. Members are decompressed to count, not trusted by their
  headers.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from hub.catalog.uploads import Received, Uploads, safe_name
from hub.errors import HubError
from hub.ingest.definitions import FILE_NAME, WORKSPACE, folder
from hub.ingest.sources import human_size
from hub.problem_codes import failing
from hub.storage import mirror

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".geojson": "geojson",
           ".json": "geojson", ".zip": "shapefile", ".gpkg": "gpkg"}
FORMAT_NAMES = {"csv": "CSV", "xlsx": "XLSX", "geojson": "GeoJSON",
                "shapefile": "Shapefile (ZIP)", "gpkg": "GeoPackage"}
HEAD = 64 << 10  # bytes looked at to tell what a file is
# zip, PDF, ELF, EXE, PNG, GIF, JPEG, SQLite, gzip, bzip2, 7z, rar, OLE (old .xls)
BINARY_MAGIC = (b"PK\x03\x04", b"%PDF", b"\x7fELF", b"MZ", b"\x89PNG", b"GIF8", b"\xff\xd8\xff",
                b"SQLite format 3\x00", b"\x1f\x8b", b"BZh", b"7z\xbc\xaf", b"Rar!",
                b"\xd0\xcf\x11\xe0")
UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


class UploadRefused(HubError):
    """An uploaded file is not taken (its name, kind or content); nothing was kept."""

    http_status = 400


class TooLarge(UploadRefused):
    http_status = 413


@dataclass(frozen=True)
class Limits:
    max_files: int = 10
    members: int = 1000  # entries of one zip
    ratio: int = 100  # uncompressed / compressed size of one zip member
    unpacked: int = 1 << 30  # bytes of one zip's members together


@dataclass(frozen=True)
class Kept:
    """A file of the dataset's folder."""

    name: str
    format: str
    size: int
    path: Path

    @property
    def size_text(self) -> str:
        return human_size(self.size)


def check_name(raw: str) -> tuple[str, str]:
    """The file name to keep and its format; `UploadRefused` for a name that names a folder,
    hides the file or is not a kind the ingest reads."""
    shown = UNSAFE_NAME.sub("?", raw)[:120]
    if not raw.strip():
        raise failing(UploadRefused("a file without a name was sent; choose a file to "
                                    "upload"), "upload.no-name")
    parts = re.split(r"[/\\]", raw)
    if len(parts) > 1 or raw in (".", "..") or re.match(r"^[A-Za-z]:", raw):
        raise failing(UploadRefused(f"{shown!r}: a file name must not name a folder (no / or "
                                    "\\, no ..); send the file itself"), "upload.folder",
                      file=shown)
    if UNSAFE_NAME.search(raw) or raw.startswith("."):
        raise failing(UploadRefused(f"{shown!r}: the file name has control characters or "
                                    "starts with a dot"), "upload.hidden", file=shown)
    name = safe_name(raw)
    fmt = FORMATS.get(Path(name).suffix.lower())
    if fmt is None or name == FILE_NAME:
        kinds = sorted(set(FORMAT_NAMES.values()))
        raise failing(UploadRefused(f"{shown!r}: the hub reads {', '.join(kinds)} files "
                                    f"({', '.join(sorted(FORMATS))})"), "upload.kind",
                      file=shown, formats=kinds)
    return name, fmt


def sniff(path: Path, name: str, fmt: str, limits: Limits) -> None:
    """`UploadRefused` unless the content is what the name says."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD)
    if not head:
        raise failing(UploadRefused(f"{name}: the file is empty (0 bytes)"), "upload.empty",
                      file=name)
    if fmt in ("csv", "geojson"):
        if b"\x00" in head or head.startswith(BINARY_MAGIC):
            raise failing(UploadRefused(f"{name}: the content is binary, not text; a "
                                        f".{_ext(name)} file must be {FORMAT_NAMES[fmt]} text"),
                          "upload.binary", file=name, format=FORMAT_NAMES[fmt])
        if fmt == "geojson" and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            raise failing(UploadRefused(f"{name}: not GeoJSON (it does not begin with a JSON "
                                        "object)"), "upload.geojson", file=name)
    elif fmt == "gpkg":
        if not head.startswith(b"SQLite format 3\x00") or head[68:72] not in (
                b"GPKG", b"GP10", b"GP11"):
            raise failing(UploadRefused(f"{name}: not a GeoPackage (an SQLite file with the "
                                        "GeoPackage application id)"), "upload.gpkg",
                          file=name)
    else:
        members = check_zip(path, name, limits)
        if fmt == "xlsx" and not {"[Content_Types].xml", "xl/workbook.xml"} <= set(members):
            raise failing(UploadRefused(f"{name}: not an Excel workbook (.xlsx); save the "
                                        "sheet as Excel workbook or CSV"), "upload.xlsx",
                          file=name)
        if fmt == "shapefile":
            stems = {m.lower()[:-4] for m in members if m.lower().endswith(".shp")}
            if not stems:
                raise failing(UploadRefused(f"{name}: the zip holds no Shapefile (.shp)"),
                              "upload.no-shapefile", file=name)
            if not all(f"{stem}.dbf" in {m.lower() for m in members} for stem in stems):
                raise failing(UploadRefused(f"{name}: the Shapefile in the zip lacks its .dbf "
                                            "file"), "upload.no-dbf", file=name)


def check_zip(path: Path, name: str, limits: Limits) -> list[str]:
    """The member names of a safe zip; `UploadRefused` for anything else."""
    if not zipfile.is_zipfile(path):
        raise failing(UploadRefused(f"{name}: not a zip archive (the content does not match "
                                    f"the .{_ext(name)} name)"), "upload.not-zip", file=name)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > limits.members:
                raise failing(UploadRefused(f"{name}: the zip has {len(infos):,} entries, "
                                            f"more than {limits.members:,}"),
                              "upload.zip-entries", file=name, count=len(infos),
                              limit=limits.members)
            total = 0
            for info in infos:
                member = PurePosixPath(info.filename.replace("\\", "/"))
                if member.is_absolute() or ".." in member.parts or ":" in info.filename:
                    raise failing(UploadRefused(f"{name}: the zip holds an unsafe path "
                                                f"{info.filename[:120]!r}"), "upload.zip-path",
                                  file=name, member=info.filename[:120])
                total += _unpacked(zf, info, name, limits, total)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError,
            OSError) as exc:
        raise failing(UploadRefused(f"{name}: damaged or unsupported zip archive ({exc})"),
                      "upload.zip", file=name) from None
    return [info.filename for info in infos]


def _unpacked(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: Limits,
              before: int) -> int:
    """Decompress one member, counting; refuse as soon as it packs too much."""
    size = 0
    with zf.open(info) as member:
        while chunk := member.read(1 << 20):
            size += len(chunk)
            if size > max(1 << 20, limits.ratio * max(info.compress_size, 1)):
                raise failing(UploadRefused(
                    f"{name}: {info.filename[:120]!r} unpacks to more than {limits.ratio} "
                    "times its packed size (a zip bomb?); refused"), "upload.zip-bomb",
                    file=name, member=info.filename[:120], limit=limits.ratio)
            if before + size > limits.unpacked:
                raise failing(UploadRefused(f"{name}: the zip unpacks to more than "
                                            f"{human_size(limits.unpacked)}; refused"),
                              "upload.zip-unpacked", file=name,
                              limit=human_size(limits.unpacked))
    return size


def _ext(name: str) -> str:
    return Path(name).suffix.lower().lstrip(".")


class Intake:
    """The uploaded files of the store's datasets (one folder per dataset)."""

    def __init__(self, uploads: Uploads, store_root: Path, limits: Limits | None = None):
        self.uploads = uploads
        self.store_root = Path(store_root)
        self.limits = limits or Limits(unpacked=min(1 << 30, 20 * uploads.limit))

    def folder(self, dataset: str) -> Path:
        return folder(self.store_root, dataset)

    def key(self, dataset: str) -> str:
        """The dataset's folder in the store's storage."""
        return f"{WORKSPACE}/{dataset}"

    def files(self, dataset: str) -> list[Kept]:
        """The dataset's uploaded files, by name (fetched from the storage first)."""
        here = self.folder(dataset)
        if self.uploads.files is not None:
            mirror(self.uploads.files, self.key(dataset), here)
        if not here.is_dir():
            return []
        return [Kept(p.name, FORMATS[p.suffix.lower()], p.stat().st_size, p)
                for p in sorted(here.iterdir())
                if p.is_file() and p.suffix.lower() in FORMATS and p.name != FILE_NAME]

    def receive(self, stream: BinaryIO, raw_name: str) -> tuple[Received, str]:
        """Stream one file into staging (its name checked first); `TooLarge` past the limit."""
        name, fmt = check_name(raw_name)
        from hub.catalog.uploads import UploadTooLarge

        try:
            return self.uploads.receive(stream, name), fmt
        except UploadTooLarge:
            raise failing(TooLarge(f"{name}: larger than the upload limit of "
                                   f"{human_size(self.uploads.limit)} (HUB_MAX_UPLOAD_BYTES)"),
                          "upload.too-large", file=name,
                          limit=self.uploads.limit) from None

    def keep(self, dataset: str, received: list[tuple[Received, str]]) -> list[Kept]:
        """Check every received file, then replace the dataset's files with them; if one is
        refused, none is kept (the staging files are removed either way)."""
        try:
            if not received:
                raise failing(UploadRefused("no file was sent; choose one or several files"),
                              "upload.none")
            if len(received) > self.limits.max_files:
                raise failing(UploadRefused(f"{len(received)} files sent; at most "
                                            f"{self.limits.max_files} at once"),
                              "upload.too-many", count=len(received),
                              limit=self.limits.max_files)
            names = [r.filename for r, _ in received]
            if len(set(names)) < len(names):
                raise failing(UploadRefused("two files have the same name; rename one"),
                              "upload.same-name")
            for item, fmt in received:
                sniff(item.staging, item.filename, fmt, self.limits)
            here = self.folder(dataset)
            for old in self.files(dataset):
                old.path.unlink()
            here.mkdir(parents=True, exist_ok=True)
            for item, _ in received:
                os.replace(item.staging, here / item.filename)
            if (stored := self.uploads.files) is not None:  # (the folder itself: no change)
                key = self.key(dataset)
                for name in stored.children(key):
                    if name not in names:
                        stored.delete(f"{key}/{name}")
                for name in names:
                    stored.put(here / name, f"{key}/{name}")
        finally:
            for item, _ in received:
                Uploads.discard(item)
        return self.files(dataset)
