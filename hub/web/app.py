"""The hub's web server: the catalog's pages and feeds, the CKAN, OGC and JSON APIs and the
downloads of held data.

Who sees held data is decided by `hub.access.DataAccess` (the pipeline's access and owner with
the catalog record's); a dataset the caller may not see answers 404, the same as one that does
not exist, so nothing reveals what is internal. Its metadata (title, description, publisher)
comes from its catalog record on every surface.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pyarrow as pa
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from hub import __version__, memory
from hub.access import ADMIN, ANONYMOUS, DataAccess, Viewer
from hub.api import openapi
from hub.api.ckan.routes import ckan_router
from hub.api.downloads import downloads_router
from hub.api.ogc import BUSIEST, About, ogc_router
from hub.api.ogc.datasets import Current
from hub.catalog import dcat
from hub.catalog.dcat import Context
from hub.catalog.index import Catalog
from hub.catalog.model import ALL_STATES, Record
from hub.catalog.vocab import Vocabularies
from hub.config import Settings
from hub.errors import Conflict, Forbidden, HubError, Unavailable
from hub.places import Places, load_answers
from hub.places.routes import places_router
from hub.store.versions import Dataset, Store, Version
from hub.web.accesslog import AccessLog
from hub.web.assets import ASSETS
from hub.web.counting import UsageCounter
from hub.web.health import health_router
from hub.web.portal import i18n
from hub.web.portal import settings as portal_settings
from hub.web.portal.cache import PageCache, max_bytes_from_environment
from hub.web.portal.maps import MapPages
from hub.web.portal.pages import PageError, Portal
from hub.web.portal.places import PlacePages
from hub.web.portal.routes import Renderer, error_page, portal_router
from hub.web.portal.signin import signin_router
from hub.web.portal.viewer import DataViewer
from hub.web.routing import Prefixed
from hub.web.security import SecurityHeaders
from hub.web.services import InvalidToken, Opener, Services, credentials_sent
from hub.web.session import COOKIE as SESSION_COOKIE
from hub.web.throttle import Throttle
from hub.web.workspace import Desk, SignInFirst, redirect_to_sign_in, workspace_router
from hub.web.workspace.problem import Problem, workspace_error


def create_app(settings: Settings) -> FastAPI:
    """The web server. Raises `HubError` (naming the file) when the catalog cannot be opened,
    unless the settings ask for none (`HUB_CATALOG=none`): access fails closed."""
    _long_running_memory()
    store = Store(settings.store, settings.database())
    opened = Opener(settings)
    if settings.catalog:
        opened()  # a broken catalog is a startup error, not a reason to serve more
    access = DataAccess(_catalog_of(opened) if settings.catalog else None)
    held = Current(store)
    app = FastAPI(title="District data hub", version=__version__,  # no /docs: see README
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(UsageCounter, db=store.db)  # per dataset and day, nothing personal
    app.add_middleware(AccessLog)
    app.add_exception_handler(RequestValidationError, _invalid_parameter)
    app.include_router(health_router(store))  # /health, /ready: for the load balancer

    def services() -> Services:
        if not settings.catalog:
            raise HTTPException(503, "this hub serves its data without a catalog "
                                     "(HUB_CATALOG=none)")
        try:
            return opened()
        except HubError as exc:
            raise HTTPException(503, f"the catalog cannot be opened: {exc}") from None

    def record_of(name: str) -> Record | None:
        """The catalog record of held data: its metadata on every surface."""
        return services().catalog.get(name, ADMIN, ALL_STATES) if settings.catalog else None

    def summary(dataset: Dataset, version: Version) -> dict[str, Any]:
        record = record_of(dataset.name)
        return {"name": dataset.name,
                "title": record.title if record else dataset.title,
                "description": record.description if record else "",
                "organization": record.publisher if record else dataset.organization,
                "attribution": (record.attribution if record else "") or dataset.attribution,
                "update_frequency": record.frequency if record else dataset.update_frequency,
                "version": version.version, "rows": version.rows,
                "checksum": version.checksum, "bbox": version.bbox,
                "geometry_types": version.geometry_types, "source_crs": version.source_crs,
                "modified": version.finished}

    def shown(who: Viewer) -> list[tuple[Dataset, Version]]:
        """Held datasets with a current version that `who` may see."""
        return [(d, v) for d, v in held.entries().values() if access.may_see(who, d)]

    @app.get("/api/datasets")
    def list_datasets(request: Request) -> list[dict[str, Any]]:
        """The held datasets the caller may see, with their current version's facts."""
        return [summary(d, v) for d, v in shown(viewer(request))]

    @app.get("/api/datasets/{name}")
    def show_dataset(request: Request, name: str) -> dict[str, Any]:
        found = held.entries().get(name)
        if found is None or not access.may_see(viewer(request), found[0]):
            raise HTTPException(404, f"no dataset named {name!r}")  # unknown and hidden alike
        return summary(*found)

    @app.get("/api/datasets/{name}/features", include_in_schema=False)
    def features(request: Request, name: str) -> RedirectResponse:
        """Moved: the OGC API is the one features API (same access, paged by `limit`)."""
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/ogc/collections/{quote(name)}/items{query}", 308)

    def viewer(request: Request) -> Viewer:
        if not credentials_sent(request):  # no token or cookie: no need for the accounts
            return ANONYMOUS
        try:
            return services().viewer(request)
        except InvalidToken as exc:
            raise HTTPException(403, str(exc)) from None

    def signed_in(request: Request) -> str | None:
        """The name of the request's signed-in user (for the portal's header)."""
        if SESSION_COOKIE not in request.cookies or not settings.catalog:
            return None
        found = services().session(request)
        return found.user.name if found and found.signed_in else None

    def context(request: Request) -> tuple[Catalog, Context]:
        hub = services()
        district = hub.district
        return hub.catalog, Context(hub.base_url(request), hub.vocab, district.name,
                                    district.ags, district.org, district.contributor_id,
                                    dcat.derived_from(hub.catalog))

    app.include_router(ckan_router(services))

    @app.get(openapi.URL)
    def api_description(request: Request) -> JSONResponse:
        """The OpenAPI 3.0 document of the JSON and CKAN endpoints (the OGC API's: /ogc/api)."""
        return JSONResponse(openapi.document(services().base_url(request)))

    @app.get("/dataset/{ident}/resource/{res}/download/{filename}")
    def download_upload(request: Request, ident: str, res: str, filename: str) -> Response:
        """A file uploaded as a distribution (CKAN's resource download URL)."""
        hub = services()
        record = hub.catalog.get(ident, viewer(request))
        dist = next((d for d in record.distributions if d.id == res and d.upload == filename),
                    None) if record else None
        path = hub.uploads.local(record.id, dist.id, dist.upload) if dist else None
        if path is None:
            raise HTTPException(404, "no such file")
        return FileResponse(path, media_type=dist.media_type or "application/octet-stream",
                            filename=dist.upload, content_disposition_type="attachment",
                            headers={"X-Content-Type-Options": "nosniff",
                                     "Content-Security-Policy": "sandbox"})

    def about(name: str) -> About | None:
        """Catalog facts for an OGC collection or a download (visibility is `access`'s)."""
        if not settings.catalog:
            return None
        hub = services()
        record = record_of(name)
        if record is None:
            return None
        licence = hub.vocab.licenses.find(record.license)
        page = f"/datasets/{record.name}" if record.access == "public" else ""
        return About(record.description, licence.uri if licence else "",
                     licence.label if licence else "", list(record.keywords), page,
                     record.attribution, record.title)

    # OGC API – Features under /ogc (the portal owns "/", the JSON and CKAN APIs "/api/…"):
    # tried before every other route, its tiles and items first (a map asks for dozens at a
    # time); any other path passes it by one string comparison (`Prefixed`)
    app.router.routes.insert(0, Prefixed(ogc_router(
        store, viewer=viewer, access_of=access.of, about=about, catalog_state=access.state),
        first=BUSIEST))
    # Files of every version: /downloads/{dataset}/v{N}.{ext} and latest.{ext}
    app.router.routes.append(Prefixed(downloads_router(store, viewer=viewer,
                                                       access_of=access.of, about=about)))
    # Answers per place (for the JSON API and the portal): /api/orte, /api/orte/{slug},
    # /api/orte/suche?q=, /api/orte/punkt?lon=&lat=
    places = Places(store, load_answers(settings.root), access, about, settings.extent, held)
    app.include_router(places_router(places, viewer))

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

    # The citizen portal: "/", /datasets, /datasets/{name} (the DCAT landing page), /orte, …
    portal = Portal(services, store, held, access)
    pages = PageCache(lambda: (store.db.mark(), access.state()), max_bytes_from_environment())
    memory.register("portal pages", pages)
    render = Renderer(lambda: site, signed_in, pages)
    site = portal_settings.load(settings.root / "catalog", settings.district)
    i18n.load_all()
    app.include_router(portal_router(portal, render, PlacePages(places),
                                     MapPages(places, site["basemap"]),
                                     DataViewer(services, store, held, access, places,
                                                site["basemap"]), viewer))
    throttle = Throttle()
    if settings.oidc is not None:  # sign-in with the district's identity provider
        from hub.oidc import Provider
        from hub.web.portal.oidc import oidc_router

        app.include_router(oidc_router(Provider(settings.oidc, settings.fetch.timeout),
                                       services, render, throttle))
    app.include_router(signin_router(services, render, throttle,
                                     settings.oidc.label if settings.oidc else ""))
    # The data managers' workspace: /arbeitsbereich/… (signed-in users only)
    desk = Desk(services, render)
    app.include_router(workspace_router(desk))

    async def status_of(request: Request, exc: Exception) -> Response:
        """On the workspace's pages an HTML page (problem.workspace_error), elsewhere JSON."""
        return await workspace_error(desk, request, exc) or await _status_of(request, exc)

    for error in (Forbidden, Conflict, Unavailable, Problem):
        app.add_exception_handler(error, status_of)
    app.add_exception_handler(SignInFirst, redirect_to_sign_in)
    app.add_exception_handler(PageError, error_page(render))
    app.mount("/static", ASSETS, name="static")  # gzip once, ETag, immutable when versioned

    return app


def preload() -> None:
    """Load what every worker of `hub serve --workers N` would load the same, once, in the
    supervising process before it forks them, so the workers share it copy-on-write (see
    `hub.web.server.run_workers`) instead of each holding a copy: the database migrations'
    scripts (Alembic with Mako and Pygments, read when a worker opens the store: 145 modules),
    the portal's message catalogs and the CLDR data of its languages (babel, about 4 MiB,
    read at the first page)."""
    from babel import localedata

    from hub.db import migrate

    migrate.head()
    i18n.load_all()
    for code in i18n.LANGUAGES:
        localedata.load(code)


def _catalog_of(opened: Opener) -> Callable[[], tuple[Catalog, Vocabularies]]:
    def catalog() -> tuple[Catalog, Vocabularies]:
        hub = opened()
        return hub.catalog, hub.vocab
    return catalog


async def _status_of(request: Request, exc: Exception) -> Response:
    """An error that carries its HTTP status (Forbidden, Conflict, Unavailable) as that."""
    status = getattr(exc, "http_status", 500)
    return JSONResponse({"detail": str(exc)}, status,
                        headers={"Retry-After": "30"} if status == 503 else None)


async def _invalid_parameter(request: Request, exc: Exception) -> Response:
    """A parameter FastAPI's validation rejects (`page=0` of a DCAT feed): a 400 naming it,
    as the hub's own checks answer, not FastAPI's 422 with its list of error objects."""
    problems = "; ".join(f"{' '.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
                         for e in exc.errors()) if isinstance(exc, RequestValidationError) else ""
    return JSONResponse({"detail": problems or "invalid request"}, 400)


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

