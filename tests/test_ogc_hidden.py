"""Hidden collections are never read: access is decided before any data is touched.

The OGC router runs in this process (uvicorn on 127.0.0.1) with a `LayerCache` of the test's
own, whose `reads` count every Parquet footer and version the server reads per dataset: after
every OGC and tiles URL of the hidden datasets, nothing of theirs may have been read (timing
and memory would tell a caller that they exist)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import serving_app
from fastapi import FastAPI
from ogc_site import Site

from hub.access import ANONYMOUS
from hub.api.ogc import LayerCache, ogc_router

HIDDEN = ("intern", "vertraulich")
PATHS = ("", "?f=html", "/queryables", "/items", "/items?limit=5000",
         "/items?filter=plaetze > 1", "/items?bbox=13,51,14,52&art=Hospiz", "/items/I0001",
         "/items/1", "/tiles", "/tiles/WebMercatorQuad",
         "/tiles/WebMercatorQuad/tilejson.json", "/tiles/WebMercatorQuad/0/0/0",
         "/tiles/WebMercatorQuad/12/1381/2200")


@pytest.fixture(scope="module")
def served(ogc_site: Site) -> Iterator[tuple[str, LayerCache]]:
    layers = LayerCache()
    app = FastAPI()
    app.include_router(ogc_router(ogc_site.project.store, viewer=lambda request: ANONYMOUS,
                                  cache=layers))
    with serving_app(app) as url:
        yield f"{url}/ogc", layers


def test_hidden_collections_are_never_read(served: tuple[str, LayerCache]) -> None:
    url, layers = served
    with httpx.Client(timeout=60) as client:
        for name in (*HIDDEN, "gibtsnicht"):
            for path in PATHS:
                response = client.get(f"{url}/collections/{name}{path}")
                assert response.status_code == 404, (name, path, response.text)
        for path in ("/", "/collections", "/api", "/api?f=html"):
            assert client.get(url + path).status_code == 200
        assert {name: layers.reads[name] for name in HIDDEN} == dict.fromkeys(HIDDEN, 0)
        # the same URLs of a public collection do read it: the count can tell
        for path in PATHS:
            client.get(f"{url}/collections/pflege{path}")
    assert layers.reads["pflege"] >= 2  # its footer and its version
