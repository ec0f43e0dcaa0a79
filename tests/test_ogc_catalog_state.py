"""The OGC API keeps each dataset's access in force and catalog facts per catalog state
(`hub.api.ogc.facts`): a change of a record's access or title, made by another process, is
honoured by the very next OGC request — on every kind of URL, with nothing cached served.

A real `hub serve` on 127.0.0.1; the record is changed with `hub catalog edit` (its own
database connection, as an editor's CLI call or another server would)."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml
from conftest import CENTRE, Project, hub_server

PATHS = ("/ogc/collections/karte", "/ogc/collections/karte/items",
         "/ogc/collections/karte/items/1", "/ogc/collections/karte/queryables",
         "/ogc/collections/karte/tiles/WebMercatorQuad",
         "/ogc/collections/karte/tiles/WebMercatorQuad/12/1359/2201")  # the points


def statuses(client: httpx.Client, url: str) -> dict[str, int]:
    return {path: client.get(url + path).status_code for path in PATHS}


def listed(client: httpx.Client, url: str) -> dict[str, str]:
    return {c["id"]: c["title"] for c in client.get(url + "/ogc/collections").json()
            ["collections"]}


def test_an_access_change_of_a_record_is_honoured_by_the_next_ogc_request(
        tmp_path: Path) -> None:
    project = Project(tmp_path / "project")
    project.schema("punkte", [{"name": "nr", "type": "string"},
                              {"name": "geometry", "type": "geojson"}])
    rows = "\n".join(f"k-{i},{CENTRE[0] + i / 1000},{CENTRE[1]}" for i in range(5))
    (project.data / "karte.csv").write_text(f"nr,lon,lat\n{rows}\n", encoding="utf-8")
    project.pipeline("karte", "punkte", {"path": "data/karte.csv", "crs": "EPSG:4326",
                                         "geometry": {"lon": "lon", "lat": "lat"}},
                     organization="sozialamt", access="public")
    assert project.ingest("karte").status == "committed"
    record = project.root / "karte.yaml"
    record.write_text(yaml.safe_dump({
        "name": "karte", "title": "Karte der Orte", "description": "Test",
        "publisher": "sozialamt", "license": "dl-by-de/2.0", "frequency": "ANNUAL",
        "contact": {"name": "Sozialamt", "email": "daten@example.org"}}), encoding="utf-8")
    assert project.cli("catalog", "add", str(record)).exit_code == 0
    with hub_server(project.root, project.store_dir) as server, \
            httpx.Client(timeout=60) as client:
        shown = statuses(client, server.url)
        assert set(shown.values()) == {200}, shown
        assert listed(client, server.url)["karte"] == "Karte der Orte"
        for round_ in range(2):  # twice: the facts kept for the first state are not reused
            closed = project.cli("catalog", "edit", "karte", "--set", "access=internal")
            assert closed.exit_code == 0, closed
            assert set(statuses(client, server.url).values()) == {404}
            assert "karte" not in listed(client, server.url)
            opened = project.cli("catalog", "edit", "karte", "--set", "access=public",
                                 "--set", f"title=Neuer Titel {round_}")
            assert opened.exit_code == 0, opened
            assert statuses(client, server.url) == shown
            assert listed(client, server.url)["karte"] == f"Neuer Titel {round_}"
            assert client.get(server.url + PATHS[0]).json()["title"] == \
                f"Neuer Titel {round_}"
