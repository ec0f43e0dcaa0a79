"""The download routes: every version of every dataset in five formats.

    GET|HEAD /downloads/{dataset}                 versions and their download URLs (JSON)
    GET|HEAD /downloads/{dataset}/v{N}.{ext}      one version: immutable, cached for a year
    GET|HEAD /downloads/{dataset}/latest.{ext}    the current version: revalidated every time

`ext` is geojson, csv, gpkg, parquet or fgb; CSV also takes `?dialect=excel`. A dataset is
visible when `Viewer.may_see(*access_of(dataset))` holds for the caller; every other name
answers 404 with the same body as a name that does not exist, on every URL and method.
Malformed file names and unknown formats are checked before the dataset is looked up, so they
answer alike for visible and invisible datasets too. A version whose file is damaged (see
hub.store.integrity) answers 503 on its own URLs; the other versions and datasets are served.
GeoJSON and CSV are streamed as they are encoded, or, to a client that accepts gzip, sent from
a gzipped file made once per version (and dialect) beside the exports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from hub.access import Viewer
from hub.api.downloads import csv_text, geojson
from hub.api.downloads.columns import Source
from hub.api.downloads.exports import Exports, packed_name
from hub.api.downloads.formats import FORMATS, Terms
from hub.api.downloads.http import (
    IMMUTABLE,
    PRIVATE,
    REVALIDATE,
    accepts_gzip,
    etag,
    http_date,
    moment,
    not_modified,
    produced,
)
from hub.api.ogc.datasets import Current
from hub.api.ogc.features import About
from hub.errors import StoreError
from hub.store.integrity import CorruptVersion
from hub.store.versions import Dataset, Store, Version

FILE = re.compile(r"^(?:latest|v(?P<number>[1-9][0-9]{0,17}))\.(?P<ext>[a-z0-9]+)$")
USAGE = ("use v<N>.<ext> (N = 1, 2, …) or latest.<ext>, with ext one of "
         + ", ".join(FORMATS))


class Problem(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def downloads_router(store: Store, viewer: Callable[[Request], Viewer], *,
                     access_of: Callable[[Dataset], tuple[str, list[str]]] = lambda d: (
                         d.access, []),
                     prefix: str = "/downloads",
                     about: Callable[[str], About | None] | None = None) -> APIRouter:
    """Downloads of the store's versions, mounted at `prefix`.

    `viewer` tells who is asking and `access_of` a dataset's access level and the organisations
    it is restricted to; `about` supplies the catalog's licence and attribution per
    dataset (the store's attribution is used when the catalog has none).
    """
    router = APIRouter(prefix=prefix)
    current = Current(store)
    exports = Exports()

    def visible(request: Request, name: str) -> tuple[Dataset, Version, bool]:
        """The dataset, its current version, and whether it is public."""
        found = current.entries().get(name)
        level, orgs = access_of(found[0]) if found else ("", [])
        if found is None or not viewer(request).may_see(level, orgs):
            raise Problem(404, f"no dataset named {name!r}")  # unknown and hidden alike
        return found[0], found[1], level == "public"

    def terms_of(dataset: Dataset) -> Terms:
        facts = about(dataset.name) if about else None
        return Terms(title=(facts.title if facts else "") or dataset.title,
                     license_url=facts.license_url if facts else "",
                     license_title=facts.license_title if facts else "",
                     attribution=(facts.attribution if facts else "") or dataset.attribution)

    def url(name: str, label: str, ext: str) -> str:
        return f"{prefix}/{quote(name)}/{label}.{ext}"

    @router.api_route("/{name}/{file}", methods=["GET", "HEAD"], include_in_schema=False)
    def download(request: Request, name: str, file: str) -> Response:
        try:
            return _download(request, name, file)
        except Problem as exc:
            return JSONResponse({"detail": exc.detail}, exc.status)
        except CorruptVersion as exc:
            return JSONResponse({"detail": str(exc)}, exc.status)

    def _download(request: Request, name: str, file: str) -> Response:
        match = FILE.match(file)
        if match is None or match["ext"] not in FORMATS:
            raise Problem(404, f"no download {file!r}: {USAGE}")
        fmt = FORMATS[match["ext"]]
        dialect = _dialect(request, fmt.ext)
        dataset, version, public = visible(request, name)
        latest = match["number"] is None
        if not latest:
            version = _version(store, name, int(match["number"]))
        if version.broken:
            raise CorruptVersion(name, version.version, version.broken)
        terms = terms_of(dataset)
        squeeze = fmt.compressible and accepts_gzip(request)
        variant = "" if dialect is None or dialect.name == "default" else dialect.name
        tag = etag(version, fmt.ext, terms, variant, squeeze)
        modified = moment(version)
        stable = url(name, f"v{version.version}", fmt.ext) + (f"?dialect={variant}"
                                                               if variant else "")
        headers = {
            "ETag": tag, "Last-Modified": http_date(modified),
            "Cache-Control": PRIVATE if not public else REVALIDATE if latest else IMMUTABLE,
            "Content-Location": stable,
            "Content-Disposition": f'attachment; filename="{name}-v{version.version}.{fmt.ext}"',
            "X-Content-Type-Options": "nosniff"}
        if terms.license_url:
            headers["Link"] = f'<{terms.license_url}>; rel="license"'
        if fmt.compressible:
            headers["Vary"] = "Accept-Encoding"
        if not_modified(request, tag, modified):
            return Response(status_code=304, headers={
                k: v for k, v in headers.items() if k not in ("Content-Disposition",)})
        store.ensure_sound(version)  # hashes the file once per process and version
        if not fmt.streamed:
            with store.reading(version):  # a read error checks the file again
                path = exports.file(version, fmt.ext, terms)
            return FileResponse(path, media_type=fmt.media_type, headers=headers)
        if squeeze:
            headers["Content-Encoding"] = "gzip"
        if request.method == "HEAD":
            return StreamingResponse(iter(()), media_type=fmt.media_type, headers=headers)
        if squeeze:  # compressed once per version and variant, then served as a file
            with store.reading(version):
                path = exports.file(version, packed_name(fmt.ext, dialect), terms)
            return FileResponse(path, media_type=fmt.media_type, headers=headers)
        source = Source(version)
        if fmt.ext == "geojson":
            chunks = geojson.stream(source, terms, geojson.id_field(source))
        else:
            assert dialect is not None
            chunks = csv_text.stream(source, dialect)
        return StreamingResponse(produced(chunks), media_type=fmt.media_type, headers=headers)

    @router.api_route("/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    @router.api_route("/{name}/", methods=["GET", "HEAD"], include_in_schema=False)
    def versions(request: Request, name: str) -> Response:
        """The dataset's versions (files kept by the retention policy) and their URLs."""
        try:
            dataset, version, public = visible(request, name)
        except Problem as exc:
            return JSONResponse({"detail": exc.detail}, exc.status)
        listed = [{"version": v.version, "rows": v.rows, "committed": v.finished,
                   "checksum": v.checksum, "current": v.version == version.version,
                   **({"broken": v.broken} if v.broken else {}),
                   "downloads": {ext: url(name, f"v{v.version}", ext) for ext in FORMATS}}
                  for v in store.versions(name) if not v.purged]
        body: dict[str, Any] = {
            "dataset": name, "title": terms_of(dataset).title, "current": version.version,
            "latest": {ext: url(name, "latest", ext) for ext in FORMATS},
            "formats": {ext: f.media_type for ext, f in FORMATS.items()},
            "versions": listed}
        return JSONResponse(body, headers={
            "Cache-Control": REVALIDATE if public else PRIVATE})

    return router


def _dialect(request: Request, ext: str) -> csv_text.Dialect | None:
    """The CSV dialect asked for; any other query parameter is a 400."""
    params = request.query_params
    for key in params:
        if key != "dialect" or ext != "csv":
            allowed = "dialect (CSV only)" if ext == "csv" else "none"
            raise Problem(400, f"unknown parameter {key!r}; allowed: {allowed}")
    if ext != "csv":
        return None
    wanted = params.get("dialect", "default")
    if wanted not in csv_text.DIALECTS:
        raise Problem(400, f"dialect: {wanted!r} is not one of "
                           f"{', '.join(csv_text.DIALECTS)}")
    return csv_text.DIALECTS[wanted]


def _version(store: Store, name: str, number: int) -> Version:
    try:
        version = store.version(name, number)
    except (StoreError, OverflowError):
        raise Problem(404, f"dataset {name!r} has no version {number}") from None
    if version.purged or not version.exists():
        raise Problem(410, f"version {number} of {name!r} was removed by the retention "
                           "policy; the latest version is at latest.<ext>")
    return version


