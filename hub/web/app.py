"""The hub's web server: for now a minimal, correct view of the public datasets.

Only datasets whose pipeline says `access: public` are visible; anything else answers 404, the
same as a dataset that does not exist, so nothing reveals what is internal.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse

from hub import __version__
from hub.api.ckan.routes import ckan_router
from hub.api.downloads import downloads_router
from hub.api.ogc import About, ogc_router
from hub.catalog import District, dcat
from hub.catalog.dcat import Context
from hub.catalog.index import Catalog
from hub.catalog.model import ADMIN, ANONYMOUS, HUB_FILES, Viewer, access_in_force
from hub.catalog.vocab import Vocabularies
from hub.config import Settings
from hub.errors import HubError, StoreError
from hub.store.versions import Dataset, Store, Version
from hub.web.accesslog import AccessLog
from hub.web.security import SecurityHeaders
from hub.web.services import InvalidToken, Opener, Services, token_sent


def create_app(settings: Settings) -> FastAPI:
    _long_running_memory()
    store = Store(settings.store)
    app = FastAPI(title="District data hub", version=__version__,  # no /docs: see README
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)

    def public(name: str) -> Version:
        try:
            dataset = store.dataset(name)
        except StoreError:
            dataset = None
        version = store.current(name) if dataset and access_of(dataset)[0] == "public" \
            else None
        if version is None:
            raise HTTPException(404, f"no public dataset named {name!r}")
        return version

    def summary(name: str) -> dict[str, Any]:
        v = public(name)
        d = store.dataset(name)
        return {"name": d.name, "title": d.title, "organization": d.organization,
                "attribution": d.attribution,
                "update_frequency": d.update_frequency, "version": v.version, "rows": v.rows,
                "checksum": v.checksum, "bbox": v.bbox, "geometry_types": v.geometry_types,
                "source_crs": v.source_crs, "modified": v.finished,
                "file_rows": pq.ParquetFile(v.data_file).metadata.num_rows}

    @app.get("/api/datasets")
    def list_datasets() -> list[dict[str, Any]]:
        return [summary(d.name) for d in store.datasets()
                if d.current_version and access_of(d)[0] == "public"]

    @app.get("/api/datasets/{name}")
    def show_dataset(name: str) -> dict[str, Any]:
        return summary(name)

    @app.get("/api/datasets/{name}/features")
    def features(name: str, limit: int = Query(100, ge=1, le=10_000),
                 offset: int = Query(0, ge=0)) -> Response:
        v = public(name)
        table = pq.read_table(v.data_file).slice(offset, limit)
        rows = table.drop_columns([c for c in ("geometry", "bbox") if c in table.column_names])
        geoms = (shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
                 if "geometry" in table.column_names else [None] * table.num_rows)
        out = [{"type": "Feature", "properties": props,
                "geometry": json.loads(shapely.to_geojson(g)) if g is not None else None}
               for props, g in zip(rows.to_pylist(), geoms, strict=True)]
        body = {"type": "FeatureCollection", "features": out, "version": v.version}
        return Response(json.dumps(body, default=str), media_type="application/geo+json")

    opened = Opener(settings)

    def services() -> Services:
        try:
            return opened()
        except HubError as exc:  # the data can be served without a catalog; the rest cannot
            raise HTTPException(503, f"the catalog is not set up: {exc}") from None

    def catalog_or_503() -> tuple[Catalog, Vocabularies, District]:
        hub = services()
        return hub.catalog, hub.vocab, hub.district

    def viewer(request: Request) -> Viewer:
        if not token_sent(request):  # no token: no need for the accounts (or a catalog)
            return ANONYMOUS
        try:
            return services().viewer(request)
        except InvalidToken as exc:
            raise HTTPException(403, str(exc)) from None

    def context(request: Request) -> tuple[Catalog, Context]:
        hub = services()
        district = hub.district
        return hub.catalog, Context(hub.base_url(request), hub.vocab, district.name,
                                    district.ags, district.org, district.contributor_id)

    app.include_router(ckan_router(services))

    @app.get("/dataset/{ident}/resource/{res}/download/{filename}")
    def download_upload(request: Request, ident: str, res: str, filename: str) -> Response:
        """A file uploaded as a distribution (CKAN's resource download URL)."""
        hub = services()
        record = hub.catalog.get(ident, viewer(request))
        dist = next((d for d in record.distributions if d.id == res and d.upload == filename),
                    None) if record else None
        path = hub.uploads.path(record.id, dist.id, dist.upload) if dist else None
        if path is None or not path.is_file():
            raise HTTPException(404, "no such file")
        return FileResponse(path, media_type=dist.media_type or "application/octet-stream",
                            filename=dist.upload, content_disposition_type="attachment",
                            headers={"X-Content-Type-Options": "nosniff",
                                     "Content-Security-Policy": "sandbox"})

    def about(name: str) -> About | None:
        """Catalog facts for an OGC collection (visibility is the router's business)."""
        try:
            hub = opened()
        except HubError:
            return None
        catalog, vocab = hub.catalog, hub.vocab
        record = catalog.get(name, ADMIN)
        if record is None:
            return None
        licence = vocab.licenses.find(record.license)
        page = f"/datasets/{record.name}" if record.access == "public" else ""
        return About(record.description, licence.uri if licence else "",
                     licence.label if licence else "", list(record.keywords), page,
                     record.attribution)

    # OGC API – Features under /ogc (the portal owns "/", the JSON and CKAN APIs "/api/…")
    def access_of(dataset: Dataset) -> tuple[str, list[str]]:
        """The access in force for a dataset's data (pipeline and catalog record agree)."""
        try:
            record = opened().catalog.access(dataset.name)
        except HubError:
            record = None
        return access_in_force(dataset.access, record)

    app.include_router(ogc_router(store, viewer=viewer, access_of=access_of, about=about))
    # Files of every version: /downloads/{dataset}/v{N}.{ext} and latest.{ext}
    app.include_router(downloads_router(store, viewer=viewer, access_of=access_of,
                                        about=about))

    @app.get("/catalog.{fmt}")
    def dcat_catalog(request: Request, fmt: str, page: int = Query(1, ge=1, le=100_000),
                     modified_since: str | None = None) -> Response:
        if fmt not in dcat.FORMATS:
            raise HTTPException(404, f"no catalog format {fmt!r}; use rdf, ttl or jsonld")
        since = _iso_moment(modified_since) if modified_since else None
        catalog, ctx = context(request)
        args = (catalog, ctx, page, dcat.PER_PAGE, since, f"/catalog.{fmt}")
        if fmt == "ttl":  # streamed
            return StreamingResponse(dcat.turtle(dcat.catalog_triples(*args)),
                                     media_type=dcat.MEDIA_TYPES[fmt])
        return Response(dcat.serialize(dcat.catalog_page(*args), fmt),
                        media_type=dcat.MEDIA_TYPES[fmt])

    @app.get("/dataset/{ident}.{fmt}")
    def dcat_dataset(request: Request, ident: str, fmt: str) -> Response:
        catalog, ctx = context(request)
        record = catalog.get(ident, ANONYMOUS)
        if record is None or fmt not in dcat.FORMATS:
            raise HTTPException(404, f"no public dataset {ident!r} in format {fmt!r}")
        graph = dcat.dataset_graph(record, ctx)
        return Response(dcat.serialize(graph, fmt), media_type=dcat.MEDIA_TYPES[fmt])

    @app.get("/datasets/{name}", response_class=HTMLResponse)
    def dataset_page(name: str) -> str:
        """The landing page of a public record (the DCAT dcat:landingPage)."""
        catalog, vocab, _ = catalog_or_503()
        record = catalog.get(name, ANONYMOUS)
        if record is None:
            raise HTTPException(404, f"no public dataset named {name!r}")
        org = vocab.organizations.get(record.publisher)
        licence = vocab.licenses.find(record.license)
        facts = [("Herausgeber", org.name if org else record.publisher),
                 ("Lizenz", licence.label if licence else record.license),
                 ("Quellenangabe", record.attribution),
                 ("Aktualisierung", (vocab.frequencies.find(record.frequency) or
                                     vocab.frequencies.get("UNKNOWN")).label),
                 ("Stand", (record.last_modified or "")[:10]),
                 ("Datensätze", f"{record.rows:,}".replace(",", ".") if record.rows else "")]
        rows = "".join(f"<tr><th scope=\"row\">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                       for k, v in facts if v)
        if record.version is not None:
            files = " · ".join(
                f'<a href="/downloads/{html.escape(record.name)}/latest.{kind}">{label}</a>'
                for kind, label, *_ in HUB_FILES)
            access = (f"<p>Herunterladen (aktuelle Version): {files} · "
                      f'<a href="/downloads/{html.escape(record.name)}/latest.csv'
                      '?dialect=excel">CSV für Excel</a></p>'
                      f'<p><a href="/downloads/{html.escape(record.name)}">'
                      "Alle Versionen (JSON)</a>"
                      f' · <a href="/ogc/collections/{html.escape(record.name)}">'
                      "als Geodienst (OGC API – Features)</a></p>")
        else:
            note = record.access_note or "Die Daten liegen nicht im Datenhub."
            access = f"<p>{html.escape(note)}</p>"
        return _page(record.title, f"<h1>{html.escape(record.title)}</h1>"
                     f"<p>{html.escape(record.description)}</p><table>{rows}</table>{access}"
                     f'<p><a href="/">Alle Datensätze</a></p>')

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        items = "".join(
            f'<li><a href="/datasets/{html.escape(d["name"])}">{html.escape(d["title"])}</a>'
            f' — {d["rows"]:,} Datensätze, Version {d["version"]}, Stand '
            f'{html.escape(d["modified"][:10])}'
            + (f'<br><small>Quelle: {html.escape(d["attribution"])}</small>'
               if d["attribution"] else "") + "</li>"
            for d in list_datasets())
        district = settings.district or "Datenhub"
        return _page(district, f"<h1>Offene Daten – {html.escape(district)}</h1>"
                     f"<ul>{items or '<li>Noch keine öffentlichen Datensätze.</li>'}</ul>"
                     '<p><a href="/ogc/">Geodaten-Schnittstelle (OGC API – Features)</a></p>')

    return app


def _long_running_memory() -> None:
    """Arrow allocates from jemalloc in the server. Its default in these wheels, mimalloc,
    keeps freed pages per thread and purges them late: reading a 200,000-row version 12 times
    in 16k-row batches raised RSS by 82 MB and still climbing, against 16 MB (all in the first
    pass) with jemalloc. tests/test_downloads.py checks the server's peak while streaming."""
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.system_memory_pool())


def _iso_moment(value: str) -> str:
    """A `modified_since` parameter as an ISO timestamp, or a 400 naming the parameter."""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"modified_since: {value!r} is not an ISO 8601 date or "
                                 "timestamp (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") if len(value) > 10 else value[:10]


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="de"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title></head><body><main>{body}</main></body></html>")
