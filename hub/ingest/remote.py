"""Remote sources: HTTP(S) downloads, WFS 2.0 and OGC API Features paging, CKAN resources.

Downloads go into the run's staging folder, with conditional requests (ETag, Last-Modified) so
an unchanged source is recognised without downloading it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from hub.errors import SourceError
from hub.ingest.pipeline import Source
from hub.ingest.sources import CHUNK, Fetched, FetchSettings, human_size


def fetch(source: Source, target: Path, settings: FetchSettings,
          previous: dict[str, Any] | None) -> Fetched:
    with httpx.Client(timeout=settings.timeout, follow_redirects=True,
                      headers={"User-Agent": "district-data-hub"}) as client:
        if source.kind == "url":
            return _download(client, source.location, target, settings, previous)
        if source.kind == "ckan":
            url = _ckan_resource_url(client, source.location)
            return _download(client, url, target, settings, previous)
        return _paged(client, source, target, settings)


@contextlib.contextmanager
def _request(client: httpx.Client, url: str, headers: dict[str, str] | None = None,
             params: dict[str, Any] | None = None) -> Iterator[httpx.Response]:
    """A streamed GET; network failures and HTTP errors become `SourceError`s."""
    try:
        response = client.send(client.build_request("GET", url, headers=headers, params=params),
                               stream=True)
    except httpx.TimeoutException:
        raise SourceError(f"{url}: no answer within {client.timeout.read or 0:g} s "
                          "(timeout)") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: cannot connect ({exc})") from None
    try:
        if response.status_code >= 400:
            raise SourceError(f"{url}: the server answered HTTP {response.status_code} "
                              f"{response.reason_phrase}")
        yield response
    finally:
        response.close()


def _download(client: httpx.Client, url: str, target: Path, settings: FetchSettings,
              previous: dict[str, Any] | None) -> Fetched:
    headers = {}
    if previous and previous.get("url") == url:
        if previous.get("etag"):
            headers["If-None-Match"] = previous["etag"]
        if previous.get("last_modified"):
            headers["If-Modified-Since"] = previous["last_modified"]
    with _request(client, url, headers) as response:
        if response.status_code == 304:
            return Fetched([], previous.get("fingerprint", "") if previous else "",
                           dict(previous or {}), not_modified=True)
        _refuse_html(response, url)
        path = target / _file_name(response, url)
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > settings.max_bytes:
                        raise SourceError(f"{url}: larger than the limit of "
                                          f"{human_size(settings.max_bytes)} "
                                          "(HUB_MAX_SOURCE_BYTES)")
                    if size == len(chunk):
                        _refuse_html_body(chunk, url)
                    digest.update(chunk)
                    out.write(chunk)
        except httpx.TimeoutException:
            raise SourceError(f"{url}: the download stalled for more than "
                              f"{client.timeout.read or 0:g} s (timeout)") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"{url}: the download broke off ({exc})") from None
    state = {"url": url, "etag": response.headers.get("etag"),
             "last_modified": response.headers.get("last-modified"),
             "fingerprint": digest.hexdigest()}
    return Fetched([(path, path.name)], digest.hexdigest(), state)


def _refuse_html(response: httpx.Response, url: str) -> None:
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        raise SourceError(f"{url}: the server sent an HTML page (Content-Type {kind}), not data; "
                          "is the address a landing page or a login?")


def _refuse_html_body(chunk: bytes, url: str) -> None:
    head = chunk[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise SourceError(f"{url}: the server sent an HTML page, not data; is the address a "
                          "landing page or a login?")


def _file_name(response: httpx.Response, url: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    if "filename=" in disposition:
        name = disposition.split("filename=")[-1].strip().strip('"')
    else:
        name = unquote(Path(urlparse(str(response.url)).path).name)
    name = Path(name).name or "download"
    return name if "." in name else name + _extension(response)


def _extension(response: httpx.Response) -> str:
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return {"text/csv": ".csv", "application/geo+json": ".geojson",
            "application/json": ".geojson", "application/zip": ".zip",
            "application/geopackage+sqlite3": ".gpkg",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
            "application/vnd.apache.parquet": ".parquet"}.get(kind, ".csv")


def _ckan_resource_url(client: httpx.Client, spec: dict[str, Any]) -> str:
    api = spec["url"].rstrip("/") + "/api/3/action/resource_show"
    with _request(client, api, params={"id": spec["resource_id"]}) as response:
        response.read()
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"{api}: not a CKAN API answer (no JSON)") from None
    if not body.get("success") or not body.get("result", {}).get("url"):
        raise SourceError(f"{api}: resource {spec['resource_id']!r} not found or has no URL")
    return body["result"]["url"]


def _paged(client: httpx.Client, source: Source, target: Path,
           settings: FetchSettings) -> Fetched:
    """WFS 2.0 GetFeature (startIndex/count) or OGC API Features (`next` links) as GeoJSON."""
    spec = source.location
    size = int(spec.get("page_size", settings.page_size))
    if source.kind == "wfs":
        url = spec["url"]
        params: dict[str, Any] | None = {
            "service": "WFS", "version": "2.0.0", "request": "GetFeature",
            "typeNames": spec["typename"], "outputFormat": spec.get("output_format",
                                                                     "application/json"),
            "count": size, "startIndex": 0}
    else:
        url = f"{spec['url'].rstrip('/')}/collections/{spec['collection']}/items"
        params = {"limit": size, "f": "json"}
    digest = hashlib.sha256()
    files = []
    for page in range(1, settings.max_pages + 1):
        with _request(client, url, {"Accept": "application/geo+json, application/json"},
                      params) as response:
            _refuse_html(response, url)
            body = response.read()
        try:
            doc = json.loads(body)
        except ValueError:
            raise SourceError(f"{response.url}: page {page} is not GeoJSON") from None
        features = doc.get("features")
        if not isinstance(features, list):
            raise SourceError(f"{response.url}: page {page} has no 'features' list")
        if features or page == 1:
            path = target / f"page-{page:05d}.geojson"
            path.write_bytes(body)
            digest.update(body)
            files.append((path, f"{source.describe()} page {page}"))
        if source.kind == "wfs":
            if len(features) < size:
                break
            params = {**params, "startIndex": params["startIndex"] + size}  # type: ignore[index]
        else:
            nxt = next((link["href"] for link in doc.get("links", [])
                        if link.get("rel") == "next"), None)
            if not nxt or not features:
                break
            url, params = nxt, None
    else:
        raise SourceError(f"{source.describe()}: more than {settings.max_pages} pages")
    return Fetched(files, digest.hexdigest())
