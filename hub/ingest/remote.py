"""Remote sources: HTTP(S) downloads, WFS 2.0 and OGC API Features paging, CKAN resources.

Downloads go into the run's staging folder, with conditional requests (ETag, Last-Modified) so
an unchanged source is recognised without downloading it again.

Only public addresses are fetched: a connection (for the first request and every redirect) to a
host whose address is loopback, private, link-local (a cloud's metadata service), shared or
reserved is refused unless `HUB_FETCH_ALLOW` names the host or a network holding its address.
The address checked is the address connected to (`GuardedTransport`): a name is resolved once
per connection, so DNS rebinding cannot slip a second answer past the check. A source is
configuration an editor can type in the workspace; it must not reach the hub's own machine or
the administration's internal network (a district's own WFS there is allowed by name).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpcore
import httpx

from hub.errors import SourceError
from hub.ingest.pipeline import Source
from hub.ingest.sources import CHUNK, Fetched, FetchSettings, human_size
from hub.problem_codes import failing


def fetch(source: Source, target: Path, settings: FetchSettings,
          previous: dict[str, Any] | None) -> Fetched:
    with httpx.Client(timeout=settings.timeout, follow_redirects=True,
                      headers={"User-Agent": "district-data-hub"},
                      transport=GuardedTransport(Guard(settings.allow))) as client:
        if source.kind == "url":
            return _download(client, source.location, target, settings, previous)
        if source.kind == "ckan":
            url = _ckan_resource_url(client, source.location)
            return _download(client, url, target, settings, previous)
        return _paged(client, source, target, settings)


class Guard:
    """Which addresses may be fetched: public ones, and those `allow` names (a host, or a
    network in CIDR notation holding the address)."""

    def __init__(self, allow: tuple[str, ...]):
        self.names = {a.lower() for a in allow if not _network(a)}
        self.networks = [n for n in map(_network, allow) if n is not None]

    def addresses(self, host: str, port: int) -> list[str]:
        """The host's addresses, resolved once; `SourceError` when one of them is not public
        (and not allowed)."""
        try:
            found = list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM)))
        except (socket.gaierror, UnicodeError) as exc:
            raise failing(SourceError(f"{host}: the name cannot be resolved ({exc})"),
                          "fetch.resolve", host=host) from None
        if host.lower() in self.names:
            return found
        for address in found:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global and not any(ip in n for n in self.networks):
                raise failing(SourceError(
                    f"{host} is not a public address ({ip}); the hub fetches sources on the "
                    "internet only — an administrator can allow a host of the internal network "
                    "with HUB_FETCH_ALLOW"), "fetch.private", host=host, address=str(ip))
        return found


class _PinnedBackend(httpcore.SyncBackend):
    """Connections to the addresses the guard checked: the name is resolved once per
    connection, checked, and that address is connected to, so a name that resolves to another
    address between the check and the connection (DNS rebinding) cannot reach one the check
    would refuse. TLS still verifies the certificate against the name (httpcore sends it as
    SNI) and the Host header is the URL's."""

    def __init__(self, guard: Guard):
        self.guard = guard

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        failed: Exception | None = None
        for address in self.guard.addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address,
                                           socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc  # the next address of the name, as socket.create_connection does
        assert failed is not None  # getaddrinfo gives at least one address or raises
        raise failed


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with every connection (the first request's and each redirect's)
    made through the guard. No proxy from the environment: the guard checks where the
    connection goes."""

    def __init__(self, guard: Guard):
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                             network_backend=_PinnedBackend(guard))


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


@contextlib.contextmanager
def _request(client: httpx.Client, url: str, headers: dict[str, str] | None = None,
             params: dict[str, Any] | None = None) -> Iterator[httpx.Response]:
    """A streamed GET; network failures and HTTP errors become `SourceError`s."""
    try:
        response = client.send(client.build_request("GET", url, headers=headers, params=params),
                               stream=True)
    except httpx.TimeoutException:
        seconds = client.timeout.read or 0
        raise failing(SourceError(f"{url}: no answer within {seconds:g} s (timeout)"),
                      "fetch.timeout", url=url, seconds=seconds) from None
    except httpx.HTTPError as exc:
        raise failing(SourceError(f"{url}: cannot connect ({exc})"), "fetch.connect",
                      url=url) from None
    try:
        if response.status_code >= 400:
            raise failing(SourceError(f"{url}: the server answered HTTP "
                                      f"{response.status_code} {response.reason_phrase}"),
                          "fetch.status", url=url, status=response.status_code)
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
                        raise failing(SourceError(
                            f"{url}: larger than the limit of "
                            f"{human_size(settings.max_bytes)} (HUB_MAX_SOURCE_BYTES)"),
                            "fetch.too-large", url=url, limit=settings.max_bytes)
                    if size == len(chunk):
                        _refuse_html_body(chunk, url)
                    digest.update(chunk)
                    out.write(chunk)
        except httpx.TimeoutException:
            seconds = client.timeout.read or 0
            raise failing(SourceError(f"{url}: the download stalled for more than "
                                      f"{seconds:g} s (timeout)"), "fetch.stalled", url=url,
                          seconds=seconds) from None
        except httpx.HTTPError as exc:
            raise failing(SourceError(f"{url}: the download broke off ({exc})"),
                          "fetch.broken", url=url) from None
    state = {"url": url, "etag": response.headers.get("etag"),
             "last_modified": response.headers.get("last-modified"),
             "fingerprint": digest.hexdigest()}
    return Fetched([(path, path.name)], digest.hexdigest(), state)


def _refuse_html(response: httpx.Response, url: str) -> None:
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        raise failing(SourceError(f"{url}: the server sent an HTML page (Content-Type {kind}), "
                                  "not data; is the address a landing page or a login?"),
                      "fetch.html", url=url)


def _refuse_html_body(chunk: bytes, url: str) -> None:
    head = chunk[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise failing(SourceError(f"{url}: the server sent an HTML page, not data; is the "
                                  "address a landing page or a login?"), "fetch.html", url=url)


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
            raise failing(SourceError(f"{api}: not a CKAN API answer (no JSON)"), "fetch.ckan",
                          url=api) from None
    if not body.get("success") or not body.get("result", {}).get("url"):
        raise failing(SourceError(f"{api}: resource {spec['resource_id']!r} not found or has "
                                  "no URL"), "fetch.ckan-resource", url=api,
                      resource=str(spec["resource_id"]))
    return body["result"]["url"]


def _paged(client: httpx.Client, source: Source, target: Path,
           settings: FetchSettings) -> Fetched:
    """WFS 2.0 GetFeature or OGC API Features as GeoJSON pages, complete or not at all.

    Follows a `next` link where the server gives one, else (WFS) advances `startIndex` by the
    features received, so a server that caps `count` below the page size is paged to the end.
    Paging stops at an empty page or when `numberMatched` features have arrived; a total that
    disagrees with `numberMatched`, a feature id that comes twice (an unstable order) or a
    `numberReturned` that disagrees with its page fails the run.
    """
    spec = source.location
    size = int(spec.get("page_size", settings.page_size))
    url, params = _first_page(source, size)
    digest = hashlib.sha256()
    files = []
    expected: int | None = None
    received = 0
    seen: dict[Any, int] = {}  # feature id -> page it came on
    for page in range(1, settings.max_pages + 1):
        with _request(client, url, {"Accept": "application/geo+json, application/json"},
                      params) as response:
            _refuse_html(response, url)
            body = response.read()
        where = f"{response.url}: page {page}"
        on_page = {"url": str(response.url), "page": page}
        try:
            doc = json.loads(body)
        except ValueError:
            raise failing(SourceError(f"{where} is not GeoJSON"), "fetch.geojson",
                          **on_page) from None
        features = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(features, list):
            raise failing(SourceError(f"{where} has no 'features' list"), "fetch.features",
                          **on_page)
        returned = _count(doc, "numberReturned")
        if returned is not None and returned != len(features):
            raise failing(SourceError(f"{where} says numberReturned {returned:,} but holds "
                                      f"{len(features):,} features"), "fetch.returned",
                          **on_page, returned=returned, found=len(features))
        matched = _count(doc, "numberMatched")
        if matched is not None and expected is not None and matched != expected:
            raise failing(SourceError(f"{where} says numberMatched {matched:,}, an earlier page "
                                      f"said {expected:,}: the data changed while it was "
                                      "paged; run again"), "fetch.changed", **on_page,
                          matched=matched, expected=expected)
        expected = matched if matched is not None else expected
        _check_ids(features, seen, on_page)
        received += len(features)
        if features or page == 1:
            path = target / f"page-{page:05d}.geojson"
            path.write_bytes(body)
            digest.update(body)
            files.append((path, f"{source.describe()} page {page}"))
        nxt = next((link.get("href") for link in doc.get("links") or []
                    if isinstance(link, dict) and link.get("rel") == "next"), None)
        if not features or (expected is not None and received >= expected):
            break
        if nxt:
            url, params = nxt, None
        elif source.kind == "wfs" and params is not None:
            params = {**params, "startIndex": int(params["startIndex"]) + len(features)}
        else:
            break  # OGC API Features: no `next` link is the last page
    else:
        raise failing(SourceError(f"{source.describe()}: more than {settings.max_pages} "
                                  "pages"), "fetch.pages", source=source.describe(),
                      limit=settings.max_pages)
    if expected is not None and received != expected:
        raise failing(SourceError(
            f"{source.describe()}: the server announced {expected:,} features (numberMatched) "
            f"but {received:,} arrived in {page} page(s); an incomplete dataset is not "
            "committed"), "fetch.incomplete", source=source.describe(), expected=expected,
            received=received, pages=page)
    return Fetched(files, digest.hexdigest())


def _first_page(source: Source, size: int) -> tuple[str, dict[str, Any]]:
    """URL and query of the first page: WFS with srsName and a stable sortBy where known."""
    spec = source.location
    if source.kind != "wfs":
        return (f"{spec['url'].rstrip('/')}/collections/{spec['collection']}/items",
                {"limit": size, "f": "json"})
    params: dict[str, Any] = {
        "service": "WFS", "version": "2.0.0", "request": "GetFeature",
        "typeNames": spec["typename"],
        "outputFormat": spec.get("output_format", "application/json"),
        "srsName": spec.get("srs_name") or source.crs or "EPSG:4326",
        "count": size, "startIndex": 0}
    sort_by = spec.get("sort_by") or ",".join(source.key_columns)
    if sort_by:
        params["sortBy"] = sort_by
    return spec["url"], params


def _count(doc: dict[str, Any], key: str) -> int | None:
    """`numberMatched`/`numberReturned` as a number; None when absent or "unknown"."""
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _check_ids(features: list[Any], seen: dict[Any, int], on_page: dict[str, Any]) -> None:
    """A feature id on two pages means the server's order shifted between requests
    (`on_page`: the page's url and number)."""
    for feature in features:
        fid = feature.get("id") if isinstance(feature, dict) else None
        if fid is None:
            continue
        if fid in seen:
            raise failing(SourceError(
                f"{on_page['url']}: page {on_page['page']}: feature {fid!r} came already on "
                f"page {seen[fid]}; the server's order is not stable between pages, so "
                "features may be missing. Set `sort_by:` to a unique column of the source "
                "(default: the schema's primary key)"), "fetch.order", **on_page, id=str(fid),
                first_page=seen[fid])
        seen[fid] = on_page["page"]
