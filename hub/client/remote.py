"""A hub over HTTP, read-only, through its public APIs with the caller's token.

Whole versions come as GeoParquet downloads (`/downloads/<name>/v<N>.parquet`, immutable, kept
in a cache folder for the life of the object); bbox and CQL2 queries go to the OGC API
(`/ogc/collections/<name>/items`, the current version); catalog records to the CKAN API
(`/api/3/action/package_show`, `package_search`); the list of datasets to `/api/datasets`.
The token is sent as the APIs take it (`Authorization: <token>`, as ckanapi sends it), so the
caller sees exactly what that token may see; a hidden dataset answers as an unknown one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from hub.client.base import GEOMETRY_COLUMN, BBox, DatasetInfo, Hub, VersionInfo
from hub.client.errors import (
    ClientError,
    InvalidFilter,
    InvalidQuery,
    NotAHub,
    NotAllowed,
    NotFound,
    VersionRemoved,
)

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa

    from hub.client import maps

PAGE = 10_000  # features per OGC API request (the hub's default maximum)
TIMEOUT = 120.0
JSON_TYPES = {"integer": "int64", "number": "float64", "boolean": "bool"}
FORMATS = {"date": "date32", "date-time": "timestamp"}


class RemoteHub(Hub):
    """A hub at `url`, seen with `token` (anonymous without)."""

    read_only = True

    def __init__(self, url: str, token: str | None = None):
        super().__init__()
        import httpx

        self.location = url.rstrip("/")
        headers = {"Authorization": token} if token else {}
        self._http = httpx.Client(base_url=self.location, headers=headers, timeout=TIMEOUT,
                                  follow_redirects=True)
        self._cache = Path(tempfile.mkdtemp(prefix="hub-open-"))
        self._finalizer = weakref.finalize(self, _cleanup, self._http, self._cache)
        self._types: dict[str, dict[str, Any]] = {}
        try:
            body = self._json("/api/datasets")
        except NotAllowed:
            raise
        except (NotFound, InvalidQuery):
            raise NotAHub(f"{self.location}: not a hub (no dataset list at /api/datasets)") \
                from None
        except ClientError as exc:
            raise NotAHub(f"{self.location}: not a hub ({exc})") from None
        if not isinstance(body, list):
            raise NotAHub(f"{self.location}: not a hub (/api/datasets is not a list)")

    # -- HTTP ---------------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None,
             stream_to: Path | None = None) -> httpx.Response:
        """GET `path`; its error statuses as the client's errors (never a raw HTTP error)."""
        import httpx

        try:
            if stream_to is None:
                response = self._http.get(path, params=params)
            else:
                with self._http.stream("GET", path, params=params) as response:
                    if response.status_code == 200:
                        part = stream_to.with_suffix(".part")
                        with part.open("wb") as out:
                            for chunk in response.iter_bytes(1 << 20):
                                out.write(chunk)
                        part.replace(stream_to)
                    else:
                        response.read()
        except httpx.HTTPError as exc:
            raise NotAHub(f"{self.location}: cannot be reached ({type(exc).__name__}: "
                          f"{exc})") from None
        status = response.status_code
        if status < 400:
            return response
        detail = _detail(response)
        if status == 404:
            raise NotFound(detail)
        if status == 410:
            raise VersionRemoved(detail)
        if status in (401, 403):
            raise NotAllowed(f"{self.location} refused: {detail}")
        if status == 400:
            raise InvalidQuery(detail)
        raise ClientError(f"{self.location} answered {status}: {detail}")

    def _json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self._get(path, params)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{self.location}{path}: the answer is not JSON") from None

    # -- datasets -----------------------------------------------------------------------------

    def datasets(self) -> list[DatasetInfo]:
        return [DatasetInfo(
            name=d["name"], title=d.get("title", d["name"]),
            organization=d.get("organization", ""), attribution=d.get("attribution", ""),
            version=int(d["version"]), rows=int(d["rows"]), bbox=d.get("bbox"),
            geometry_types=list(d.get("geometry_types") or []), modified=d.get("modified", ""))
            for d in self._json("/api/datasets")]

    def _listing(self, name: str) -> dict[str, Any]:
        try:
            return self._json(f"/downloads/{quote(name, safe='')}")
        except NotFound:
            raise NotFound(f"no dataset named {name!r}") from None

    def history(self, name: str) -> list[VersionInfo]:
        listing = self._listing(name)
        return [VersionInfo(v["version"], v["rows"], v["committed"], v["checksum"],
                            bool(v["current"]), broken=v.get("broken", ""))
                for v in listing["versions"]]

    def _file(self, name: str, version: int | None) -> Path:
        number = int(version) if version is not None else int(self._listing(name)["current"])
        path = self._cache / f"{quote(name, safe='')}@{number}.parquet"
        if not path.exists():  # versions are immutable: a downloaded one stays valid
            try:
                self._get(f"/downloads/{quote(name, safe='')}/v{number}.parquet",
                          stream_to=path)
            except VersionRemoved:  # (a NotFound too)
                raise VersionRemoved(f"version {number} of {name!r} was removed by the "
                                     "retention policy (see history())") from None
            except NotFound:
                raise NotFound(f"dataset {name!r} has no version {number}" if version
                               is not None else f"no dataset named {name!r}") from None
        return path

    def _source(self, name: str, version: int | None) -> Path:
        return self._file(name, version)

    def _location(self, name: str, version: int | None) -> str:
        return str(self._file(name, version))

    def _selected(self, name: str, version: int | None, bbox: BBox | None,
                  cql: str | None) -> pa.Table:
        """The OGC API's answer, page by page, as a table typed by the queryables."""
        import pyarrow as pa
        import shapely

        path = f"/ogc/collections/{quote(name, safe='')}/items"
        if version is not None and int(version) != int(self._listing(name)["current"]):
            raise InvalidQuery(f"{name!r}: the OGC API filters the current version only; "
                               f"read version {version} whole (without bbox and filter) and "
                               "filter the GeoDataFrame")
        params: dict[str, Any] = {"f": "json", "limit": PAGE}
        if bbox is not None:
            params["bbox"] = ",".join(repr(float(v)) for v in bbox)
        if cql is not None:
            params.update({"filter": cql, "filter-lang": "cql2-text"})
        features: list[dict[str, Any]] = []
        url: str | None = path
        while url is not None:
            try:
                page = self._json(url, params)
            except NotFound:
                raise NotFound(f"no dataset named {name!r}") from None
            except InvalidQuery as exc:
                raise InvalidFilter(str(exc)) from None
            features += page.get("features", [])
            url = next((link["href"] for link in page.get("links", [])
                        if link.get("rel") == "next"), None)
            params = {}  # the next link carries them
        types = self._queryables(name)
        columns = {field: _typed([f["properties"].get(field) for f in features], spec)
                   for field, spec in types.items() if spec.get("format", "").split("-")[0]
                   != "geometry"}
        table = pa.table(columns) if columns else pa.table({})
        if any(spec.get("format", "").startswith("geometry") for spec in types.values()) \
                or any(f.get("geometry") for f in features):
            shapes = shapely.from_geojson([json.dumps(f["geometry"]) if f.get("geometry")
                                           else None for f in features])
            wkb = pa.array(shapely.to_wkb(shapes).tolist(), pa.binary()) if len(features) \
                else pa.array([], pa.binary())
            table = table.append_column(GEOMETRY_COLUMN, wkb) if columns else \
                pa.table({GEOMETRY_COLUMN: wkb})
        return table

    def _queryables(self, name: str) -> dict[str, Any]:
        if name not in self._types:
            body = self._json(f"/ogc/collections/{quote(name, safe='')}/queryables",
                              {"f": "json"})
            self._types[name] = body.get("properties", {})
        return self._types[name]

    # -- catalog ------------------------------------------------------------------------------

    def _action(self, name: str, params: dict[str, Any]) -> Any:
        try:
            body = self._json(f"/api/3/action/{name}", params)
        except InvalidQuery as exc:
            raise InvalidQuery(str(exc)) from None
        return body["result"]

    def record(self, name: str) -> dict[str, Any]:
        return self._action("package_show", {"id": name})

    def search(self, q: str = "", rows: int = 20, **params: Any) -> dict[str, Any]:
        return self._action("package_search", {"q": q, "rows": rows, **params})

    # -- maps and lifetime --------------------------------------------------------------------

    def _assets(self) -> maps.Assets:
        from hub.client import maps

        return maps.served(self.location)

    def close(self) -> None:
        super().close()
        self._finalizer()


def _cleanup(http: httpx.Client, cache: Path) -> None:
    http.close()
    shutil.rmtree(cache, ignore_errors=True)


def _detail(response: httpx.Response) -> str:
    """The message of an error answer: OGC/FastAPI `detail`/`description`, CKAN `error`."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} from {response.request.url.path}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        for key in ("detail", "description", "message"):
            if body.get(key):
                return str(body[key])
    return f"HTTP {response.status_code} from {response.request.url.path}"


def _typed(values: list[Any], spec: dict[str, Any]) -> pa.Array:
    """Property values of GeoJSON as the Arrow type their queryable declares."""
    import pyarrow as pa

    kind = FORMATS.get(spec.get("format", "")) or JSON_TYPES.get(spec.get("type", ""))
    if kind == "date32":
        return pa.array(values, pa.string()).cast(pa.date32())
    if kind == "timestamp":
        return pa.array(values, pa.string()).cast(pa.timestamp("us", "UTC"))
    if kind is not None:
        return pa.array(values, getattr(pa, kind if kind != "bool" else "bool_")())
    return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v)
                     for v in values], pa.string())
