"""The portal's URLs: thin routes that ask `pages.Portal` for a page's facts and render its
template in the visitor's language (`?lang=` remembered in a cookie; German by default).

HTML is gzip-compressed when the browser accepts it (pages stay far under 60 KB on a slow
line); the pages need no JavaScript, and the strict CSP of `hub.web.security` holds: no
inline script or style anywhere.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from hub.access import Viewer
from hub.api.downloads.http import accepts_gzip
from hub.web import assets
from hub.web.portal import i18n
from hub.web.portal.cache import Lookup, Page, PageCache
from hub.web.portal.i18n import COOKIE, LANGUAGES, Language
from hub.web.portal.maps import MAPS, MapPages
from hub.web.portal.pages import PageError, Portal
from hub.web.portal.places import PlacePages
from hub.web.portal.viewer import DataViewer

COOKIE_DAYS = 365
GZIP_LEVEL = 6
PAGES = {  # path -> template of the pages made from configuration and fixed text
    "/ueber-die-daten": "about.html", "/impressum": "imprint.html",
    "/datenschutz": "privacy.html", "/barrierefreiheit": "accessibility.html",
    "/leichte-sprache": "easy.html"}


@jinja2.pass_context
def _gettext(context: Any, message: str) -> str:
    return context["lang"].gettext(message)


@jinja2.pass_context
def _ngettext(context: Any, singular: str, plural: str, n: int) -> str:
    return context["lang"].ngettext(singular, plural, n)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("hub.web.portal", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["static"] = assets.url  # /static/{name}?v={content hash}
    return env


class Renderer:
    def __init__(self, site: Callable[[], dict[str, Any]],
                 signed_in: Callable[[Request], str | None] = lambda request: None,
                 cache: PageCache | None = None):
        """`signed_in`: the name of the request's signed-in user, for the header; `cache`:
        where the pages rendered with `keep` are kept (see `lookup`)."""
        self.env = environment()
        self.site, self.signed_in, self.cache = site, signed_in, cache

    def __call__(self, request: Request, template: str, status: int = 200,
                 keep: Lookup | None = None, secret: bool = False,
                 signed_in_as: str | None = None, **context: Any) -> Response:
        """The page; with `keep` (a `lookup` that missed) it is kept for the next request.
        A page with a secret (`secret`: the session's pages; any page with a `csrf` token) is
        never compressed: BREACH would let text reflected into it reveal the secret.
        `signed_in_as`: the signed-in user's name when the caller has looked the session up
        (the header's name, without a second lookup)."""
        lang, remember = i18n.chosen(request.query_params.get("lang"),
                                     request.cookies.get(COOKIE))
        html = self.env.get_template(template).render(
            lang=lang, languages=LANGUAGES, site=self.site(), path=request.url.path,
            vocab_lang="en" if lang.code == "en" else "de",
            lang_url=lambda code: _with_lang(request, code),
            signed_in=signed_in_as or self.signed_in(request), **context).encode()
        if keep is not None and keep.key is not None and self.cache is not None:
            page = Page(html, gzip.compress(html, GZIP_LEVEL, mtime=0))
            self.cache.keep(keep, page)
            return self.kept(request, page, status)
        return self._respond(request, lang.code, remember, status, html, None,
                             compress=not secret and "csrf" not in context)

    def lookup(self, request: Request, viewer: Viewer) -> Lookup:
        """The page kept for this request and `viewer`, or where to keep it once rendered
        (reads the session and the database's state: call it off the event loop)."""
        if self.cache is None:
            return Lookup(None)
        return self.cache.lookup(request, self.language(request).code, viewer,
                                 self.signed_in(request))

    def kept(self, request: Request, page: Page, status: int = 200) -> Response:
        """A kept page as this request gets it (compressed or not; the language cookie)."""
        lang, remember = i18n.chosen(request.query_params.get("lang"),
                                     request.cookies.get(COOKIE))
        return self._respond(request, lang.code, remember, status, page.html, page.gzipped)

    @staticmethod
    def _respond(request: Request, code: str, remember: bool, status: int, html: bytes,
                 gzipped: bytes | None, compress: bool = True) -> Response:
        headers = {"Content-Language": code, "Vary": "Accept-Encoding, Cookie",
                   "Cache-Control": "no-cache"}
        body = html
        if compress and accepts_gzip(request):
            body = gzipped if gzipped is not None else gzip.compress(html, GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
        response = HTMLResponse(body, status, headers=headers)
        if remember:
            response.set_cookie(COOKIE, code, max_age=COOKIE_DAYS * 86400, path="/",
                                samesite="lax", httponly=True)
        return response

    def language(self, request: Request) -> Language:
        return i18n.chosen(request.query_params.get("lang"), request.cookies.get(COOKIE))[0]


def _with_lang(request: Request, code: str) -> str:
    """The current page's URL in another language (its other parameters kept)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{request.url.path}?{urlencode([*kept, ('lang', code)])}"


def portal_router(portal: Portal, render: Renderer, places: PlacePages,
                  maps: MapPages, data: DataViewer,
                  viewer: Callable[[Request], Viewer]) -> APIRouter:
    """The portal's pages, each showing what `viewer(request)` may see (hub.access)."""
    router = APIRouter(include_in_schema=False)

    def looked_up(request: Request) -> tuple[Viewer, Lookup]:
        who = viewer(request)
        return who, render.lookup(request, who)

    @router.get("/", response_class=HTMLResponse)
    def start(request: Request) -> Response:
        """Kept per language, viewer and state of the data (`hub.web.portal.cache`)."""
        who, found = looked_up(request)
        if found.page is not None:
            return render.kept(request, found.page)
        return render(request, "start.html", keep=found,
                      **portal.start(render.language(request), who))

    @router.get("/datasets", response_class=HTMLResponse)
    def search(request: Request) -> Response:
        lang = render.language(request)
        return render(request, "search.html",
                      **portal.search(request.query_params.multi_items(), lang,
                                      viewer(request)))

    @router.get("/datasets/{name}", response_class=HTMLResponse)
    def dataset(request: Request, name: str) -> Response:
        """The landing page of a public record (the DCAT dcat:landingPage)."""
        return render(request, "dataset.html",
                      **portal.dataset(name, render.language(request), viewer(request)))

    @router.get("/organizations", response_class=HTMLResponse)
    def organizations(request: Request) -> Response:
        return render(request, "organizations.html",
                      **portal.organizations(render.language(request), viewer(request)))

    @router.get("/organizations/{ident}", response_class=HTMLResponse)
    def organization(request: Request, ident: str) -> Response:
        return render(request, "organization.html", **portal.organization(
            ident, request.query_params.multi_items(), render.language(request),
            viewer(request)))

    @router.get("/orte", response_class=HTMLResponse)
    async def place_index(request: Request) -> Response:
        """The place search and every municipality; `?q=` the places found."""
        who = await run_in_threadpool(viewer, request)  # (a session: looked up off the loop)
        return render(request, "places.html", **await places.index(request, who))

    @router.get("/orte/{slug}", response_class=HTMLResponse)
    async def place(request: Request, slug: str) -> Response:
        """The answers for a municipality (kept like the start page); an unknown one: 404
        with suggestions."""
        who, found = await run_in_threadpool(looked_up, request)  # (a session, the state)
        if found.page is not None:
            return render.kept(request, found.page)
        return render(request, "place.html", keep=found,
                      **await places.place(request, slug, who))

    for slug in MAPS:
        router.add_api_route(f"/karten/{slug}", _map_page(render, maps, slug), methods=["GET"],
                             response_class=HTMLResponse, name=f"map_{slug}")

    @router.get("/karten/daten/{name}", response_class=HTMLResponse)
    async def data_map(request: Request, name: str) -> Response:
        """The map viewer of a geodataset the visitor may see, with its paged list."""
        return render(request, "map_data.html", **await data.page(
            request, name, viewer(request), render.language(request)))

    for path, template in PAGES.items():
        router.add_api_route(path, _fixed_page(render, template), methods=["GET"],
                             response_class=HTMLResponse, name=template.split(".")[0])
    return router


def _fixed_page(render: Renderer, template: str) -> Callable[[Request], Response]:
    def page(request: Request) -> Response:
        return render(request, template)
    return page


def _map_page(render: Renderer, maps: MapPages,
              slug: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        """A curated map and its list of the same features (filters as a GET form)."""
        return render(request, "map.html", **await maps.page(request, slug))
    return page


def error_page(render: Renderer) -> Callable[[Request, Exception], Any]:
    """The handler of `PageError`: an error page in the visitor's language, its status."""
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return render(request, "error.html", exc.status, error=exc)
    return handle
