"""The JSON API of places: /api/orte (list), /api/orte/suche?q= (search),
/api/orte/punkt?lon=&lat= (answers for a point), /api/orte/{slug} (answers for a place).

Thin: parameters are checked here (a 400 names the parameter), everything else is
`hub.places.service.Places`. Answers are computed on the event loop when the versions are in
memory and small; otherwise the handler runs again in a worker thread (`hub.api.ogc.work`).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from hub.access import Viewer
from hub.api.ogc import caching, work
from hub.places.service import Need, OutsideDistrict, PlaceNotFound, Places, Sources

PREFIX = "/api/orte"
MAX_QUERY = 200  # characters of a search text
MAX_SLUG = 100
MAX_NUMBER = 40  # characters of lon or lat
T = TypeVar("T")


class BadParameter(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def places_router(places: Places, viewer: Callable[[Request], Viewer],
                  budget: work.Budget | None = None) -> APIRouter:
    """The routes; `viewer` tells who asks (their datasets are the ones that answer)."""
    router = APIRouter(prefix=PREFIX)
    pool = work.Pool(budget or work.Budget())

    async def respond(request: Request, compute: Callable[[Sources, Need], Any]) -> Response:
        try:
            sources = places.sources(viewer(request))
            body = await computed(pool, request, sources, compute)
        except BadParameter as exc:
            return JSONResponse({"detail": exc.message}, 400)
        except PlaceNotFound as exc:
            return JSONResponse({"detail": str(exc),
                                 "suggestions": [p.summary() for p in exc.suggestions]}, 404)
        except OutsideDistrict as exc:
            return JSONResponse({"detail": str(exc)}, 404)
        except work.Busy as exc:
            return JSONResponse({"detail": exc.message}, 503,
                                headers={"Retry-After": str(exc.retry_after)})
        response = JSONResponse(body, headers={
            "Cache-Control": caching.cache_control(request, sources.public)})
        return caching.validated(request, response)

    @router.get("")
    async def list_places(request: Request) -> Response:
        """The district's places (slug, name, ags, kind), by name."""
        return await respond(request, places.listing)

    @router.get("/suche")
    async def search_places(request: Request) -> Response:
        """Places by name (with or without diacritics, prefixes) or postcode; when nothing
        matches, the closest names as suggestions."""
        try:
            q = _text(request, "q", MAX_QUERY)
        except BadParameter as exc:
            return JSONResponse({"detail": exc.message}, 400)
        return await respond(request, lambda sources, need: places.search(sources, q, need))

    @router.get("/punkt")
    async def point_answers(request: Request) -> Response:
        """The answers for a point of the district (lon, lat in WGS84 degrees)."""
        try:
            lon = _number(request, "lon", 180)
            lat = _number(request, "lat", 90)
        except BadParameter as exc:
            return JSONResponse({"detail": exc.message}, 400)
        return await respond(request,
                             lambda sources, need: places.point(sources, lon, lat, need))

    @router.get("/{slug}")
    async def place_answers(request: Request, slug: str) -> Response:
        """The answers for one place; an unknown one: 404 with suggestions."""
        if len(slug) > MAX_SLUG or has_control(slug):
            return JSONResponse({"detail": f"slug: at most {MAX_SLUG} characters, no control "
                                           "characters"}, 400)
        return await respond(request, lambda sources, need: places.place(sources, slug, need))

    return router


async def computed(pool: work.Pool, request: Request, sources: Sources,
                   compute: Callable[[Sources, Need], T]) -> T:
    """`compute` on the event loop while its steps are cheap, else again in a worker of
    `pool` (the JSON API and the portal's place pages)."""
    def run() -> T:
        return compute(sources, lambda cost: work.needs(request, cost))
    try:
        return run()
    except work.Offload:
        return await pool.run(request, run)


def _text(request: Request, name: str, limit: int) -> str:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        raise BadParameter(f"{name}: required (the text to search for)")
    if len(value) > limit:
        raise BadParameter(f"{name}: at most {limit} characters")
    if has_control(value):
        raise BadParameter(f"{name}: control characters are not allowed")
    return value.strip()


def _number(request: Request, name: str, bound: float) -> float:
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        raise BadParameter(f"{name}: required (degrees, WGS84)")
    try:
        if len(raw) > MAX_NUMBER:
            raise ValueError
        value = float(raw)
    except ValueError:
        raise BadParameter(f"{name}: {raw[:MAX_NUMBER]!r} is not a number") from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise BadParameter(f"{name}: must be a number from {-bound:g} to {bound:g}")
    return value


def has_control(text: str) -> bool:
    """Does `text` hold control characters or lone surrogates?"""
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)
