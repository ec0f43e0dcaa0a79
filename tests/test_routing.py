"""`hub.web.routing.Prefixed` answers every request as the same router included would: the same
status, body and headers for its routes, its prefix without and with a slash, unknown paths
under it (404, or a redirect to the path without its slash), other methods, and the app's
routes around it."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from conftest import serving_app
from fastapi import APIRouter, FastAPI, HTTPException, Request

from hub.web.routing import Prefixed


def router() -> APIRouter:
    api = APIRouter(prefix="/ogc")

    @api.get("/")
    def landing() -> dict[str, str]:
        return {"page": "landing"}

    @api.get("/collections/{name}")
    def collection(name: str) -> dict[str, str]:
        if name == "versteckt":
            raise HTTPException(404, "no such collection")
        return {"collection": name}

    @api.api_route("/collections/{name}/tiles/{z}/{y}/{x}", methods=["GET", "HEAD"])
    def tile(request: Request, name: str, z: int, y: int, x: int) -> dict[str, object]:
        return {"tile": [name, z, y, x], "path": request.url.path,
                "base": str(request.base_url)}

    return api


def app(prefixed: bool) -> FastAPI:
    made = FastAPI()

    @made.get("/api/status")
    def status() -> dict[str, str]:
        return {"status": "ok"}

    if prefixed:
        made.router.routes.insert(0, Prefixed(router(), first=("/collections/{name}/tiles/"
                                                              "{z}/{y}/{x}",)))
    else:
        made.include_router(router())

    @made.get("/seite/{rest:path}")
    def portal(rest: str) -> dict[str, str]:  # a route after the router
        return {"portal": rest}

    return made


REQUESTS = [("GET", "/ogc/"), ("GET", "/ogc"), ("GET", "/ogc/collections/pflege"),
            ("GET", "/ogc/collections/versteckt"), ("GET", "/ogc/collections/pflege/tiles/3/2/1"),
            ("HEAD", "/ogc/collections/pflege/tiles/3/2/1"),
            ("GET", "/ogc/collections/pflege/tiles/drei/2/1"), ("POST", "/ogc/collections/x"),
            ("GET", "/ogc/gibtsnicht"), ("GET", "/ogcx/seite"), ("GET", "/api/status"),
            ("GET", "/seite/ogc/collections/pflege"), ("GET", "/ogc/collections/pflege/")]


@pytest.fixture(scope="module")
def servers() -> list[str]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(serving_app(app(prefixed))) for prefixed in (False, True)]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_a_prefixed_router_answers_as_the_router_included(servers: list[str], method: str,
                                                          path: str) -> None:
    included, prefixed = (httpx.request(method, url + path, follow_redirects=False)
                          for url in servers)
    assert prefixed.status_code == included.status_code, (path, prefixed.text)
    assert prefixed.text == included.text.replace(servers[0], servers[1])
    for name in ("content-type", "allow"):
        assert prefixed.headers.get(name) == included.headers.get(name), name
    if included.is_redirect:
        assert prefixed.headers["location"] == included.headers["location"].replace(
            servers[0], servers[1])


def test_the_routes_asked_for_first_are_tried_first() -> None:
    route = Prefixed(router(), first=("/collections/{name}/tiles/{z}/{y}/{x}",))
    assert [r.path for r in route.router.routes] == [  # type: ignore[attr-defined]
        "/ogc/collections/{name}/tiles/{z}/{y}/{x}", "/ogc/", "/ogc/collections/{name}"]
    with pytest.raises(ValueError, match="prefix"):
        Prefixed(APIRouter())
