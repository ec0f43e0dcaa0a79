"""A router's routes under its path prefix, tried only for paths under it.

FastAPI tries the routes of every included router one by one for each request (twice: to find
the router, then the route in it). A new tile passed some 30 routes before its own, and every
request after the OGC API tested its 15. `Prefixed` is one route for a whole router: it claims
the paths under the router's prefix by comparing strings and leaves finding the route to the
router, most asked for first. The paths keep their prefix (a Starlette `Mount` would move it to
`root_path`, and with it `request.base_url`), so the routes and the links they make are the
same as when the router is included. One difference: a path under the prefix that none of
the router's routes takes is the router's 404 (or its redirect to the path without a trailing
slash) and does not go on to the routes after it; the app has none that could take one.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send


class Prefixed(BaseRoute):
    """`router` (an APIRouter with a prefix) as one route; the routes whose paths are in
    `first` are tried first (in that order), the others in the router's order."""

    def __init__(self, router: APIRouter, first: tuple[str, ...] = ()):
        if not router.prefix:
            raise ValueError("Prefixed needs a router with a prefix")
        self.router, self.prefix = router, router.prefix
        rank = {router.prefix + path: k for k, path in enumerate(first)}
        router.routes.sort(key=lambda route: rank.get(getattr(route, "path", ""), len(rank)))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix
                                        or path.startswith(self.prefix + "/")):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        return self.router.url_path_for(name, **path_params)
