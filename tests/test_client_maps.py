"""Maps from `hub.open`: folium maps with the datasets' attributions that load nothing from
the internet — Leaflet embedded for a local store, served by the hub (/static) for a remote
one (project: tests/client_site.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from client_site import ClientSite, build
from conftest import hub_server

import hub

URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> ClientSite:
    return build(tmp_path_factory.mktemp("client-maps") / "project")


@pytest.fixture(scope="module")
def url(site: ClientSite) -> Iterator[str]:
    with hub_server(site.root) as server:
        yield server.url


def rendered(m) -> str:
    return m.get_root().render()


def test_local_map_embeds_leaflet_and_names_no_url(site: ClientSite) -> None:
    page = rendered(hub.open(site.root).explore("orte"))
    assert URL.findall(page) == []  # no CDN, no basemap: nothing to fetch
    assert "data:text/javascript;base64," in page and "data:text/css;base64," in page
    assert "new L.CircleMarker" in page and '"Ort 3"' in page  # the current version's points
    # the attribution, HTML-escaped as data (it is shown as HTML by Leaflet)
    assert "addAttribution(\"Testdaten \\u0026lt;sozialamt\\u0026gt; \\u0026amp; Co\")" in page


def test_remote_map_loads_leaflet_from_the_hub(site: ClientSite, url: str) -> None:
    remote = hub.open(url)
    page = rendered(remote.explore("orte", filter="art = 'Hospiz'"))
    found = set(URL.findall(page))
    assert found and all(u.startswith(url + "/static/vendor/leaflet/") for u in found), found
    for asset in found:  # each is served, as the right type, without a token
        answer = httpx.get(asset)
        assert answer.status_code == 200, asset
        assert answer.headers["content-type"].startswith(
            "text/javascript" if asset.endswith(".js") else "text/css")
    assert "Testdaten" in page and '"Hospiz"' in page and '"Pflegeheim"' not in page


def test_map_with_several_layers_and_an_analysis_result(site: ClientSite) -> None:
    opened = hub.open(site.root, as_user="bernd")
    result = opened.read("orte").head(3)
    page = rendered(opened.map(["orte", "geheim", ("Ergebnis", result)]))
    assert URL.findall(page) == []
    assert "L.control.layers" in page
    for title in ("Test orte", "Test geheim", "Ergebnis"):
        assert f'"{title}"' in page
    assert page.count("addAttribution") == 2  # one per dataset; the analysis names none


def test_the_leaflet_licence_is_vendored() -> None:
    from hub.client.maps import VENDOR

    assert "BSD 2-Clause" in (VENDOR / "LICENSE").read_text()
    assert (VENDOR / "leaflet.js").read_bytes().startswith(b"/* @preserve")
