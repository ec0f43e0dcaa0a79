"""Remote sources over real HTTP on 127.0.0.1: WFS 2.0 paging, OGC API Features `next` links,
CKAN resources, and conditional requests that recognise an unchanged source."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pyarrow.parquet as pq
import pytest

from hub.config import load_settings
from hub.ingest.pipeline import load_pipeline
from hub.ingest.run import ingest
from hub.store import Store
from hub.web.portal.i18n import language
from hub.web.workspace.problems import failure

FEATURES = [
    {"type": "Feature", "id": i,
     "properties": {"id": f"S{i:03d}", "name": f"Station {i}", "plaetze": i % 7},
     "geometry": {"type": "Point", "coordinates": [13.2 + i / 1000, 51.6 + i / 2000]}}
    for i in range(23)
]
SCHEMA = {"fields": [
    {"name": "id", "type": "string", "constraints": {"required": True, "unique": True}},
    {"name": "name", "type": "string"},
    {"name": "plaetze", "type": "integer"},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]},
]}
CSV_BODY = b"id;name;plaetze;lon;lat\nA1;Eins;3;13,25;51,62\nA2;Zwei;4;13,31;51,70\n"


class Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []
    # The WFS's behaviour, set per test (the `server` fixture resets it):
    wfs_cap: ClassVar[int | None] = None  # server-side maximum of `count` (GeoServer, deegree)
    wfs_matched: ClassVar[str] = "exact"  # numberMatched: exact | omit | unknown | more | shifting
    oapif_matched: ClassVar[int | None] = None  # numberMatched of the OGC API (None: omitted)

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: bytes, kind: str, status: int = 200,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        Handler.requests.append(self.path)
        if url.path == "/wfs":
            self._wfs(q)
        elif url.path == "/ogc/collections/stationen/items":
            offset, limit = int(q.get("offset", 0)), int(q["limit"])
            page = FEATURES[offset:offset + limit]
            links = []
            if offset + limit < len(FEATURES):
                host = self.headers["Host"]
                nxt = f"http://{host}{url.path}?limit={limit}&offset={offset + limit}"
                links.append({"rel": "next", "href": nxt, "type": "application/geo+json"})
            body = {"type": "FeatureCollection", "features": page, "links": links}
            if Handler.oapif_matched is not None:
                body["numberMatched"] = Handler.oapif_matched
            self._send(json.dumps(body).encode(), "application/geo+json")
        elif url.path == "/api/3/action/resource_show":
            host = self.headers["Host"]
            if q.get("id") != "res-1":
                self._send(json.dumps({"success": False, "error": {
                    "__type": "Not Found Error", "message": "Not found"}}).encode(),
                    "application/json", 404)
                return
            result = {"id": "res-1", "url": f"http://{host}/files/stationen.csv"}
            self._send(json.dumps({"success": True, "result": result}).encode(),
                       "application/json")
        elif url.path == "/files/stationen.csv":
            etag = '"v1"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self._send(CSV_BODY, "text/csv", headers={"ETag": etag})
        else:
            self._send(b"not found", "text/plain", 404)


    def _wfs(self, q: dict[str, str]) -> None:
        """GetFeature as WFS 2.0 servers answer it: `count` capped by the server's limit,
        `sortBy` honoured, and without it an order that shifts between requests (like a
        database without ORDER BY)."""
        assert q["service"] == "WFS" and q["request"] == "GetFeature"
        start, count = int(q["startIndex"]), int(q["count"])
        count = min(count, Handler.wfs_cap or count)
        if "sortBy" in q:
            key = q["sortBy"].split()[0]
            ordered = sorted(FEATURES, key=lambda f: f["properties"][key])
        else:
            shift = len(Handler.requests)
            ordered = FEATURES[shift:] + FEATURES[:shift]
        page = ordered[start:start + count]
        body: dict[str, object] = {"type": "FeatureCollection", "features": page,
                                   "numberReturned": len(page)}
        total = len(FEATURES)
        body["numberMatched"] = {"exact": total, "unknown": "unknown", "more": total + 5,
                                 "shifting": total + len(Handler.requests)
                                 }.get(Handler.wfs_matched)
        if Handler.wfs_matched == "omit":
            del body["numberMatched"], body["numberReturned"]
        self._send(json.dumps(body).encode(), "application/geo+json")


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.requests, Handler.wfs_cap, Handler.wfs_matched = [], None, "exact"
    Handler.oapif_matched = None
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def project(tmp_path: Path, source: str) -> Path:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "schemas" / "stationen.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "pipelines" / "stationen.yaml").write_text(
        "dataset: stationen\ntitle: Stationen\norganization: test\nschema: stationen\n"
        "outside_extent: keep\nsources:\n" + textwrap.indent(source, "  "))
    return tmp_path


def run(root: Path):
    settings = load_settings(root, root / "store")
    return ingest(load_pipeline(root / "pipelines" / "stationen.yaml"), Store(settings.store),
                  settings)


def test_wfs_pages_with_start_index(tmp_path: Path, server: str) -> None:
    root = project(tmp_path, f"- wfs: {{url: {server}/wfs, typename: 'app:stationen', "
                             "page_size: 10}\n")
    report = run(root)
    assert report.status == "committed", report.error
    assert report.rows_valid == 23
    pages = [r for r in Handler.requests if r.startswith("/wfs")]
    assert len(pages) == 3 and "startIndex=20" in pages[-1]  # numberMatched reached: no 4th
    assert all("srsName=EPSG%3A4326" in p and "sortBy=id" in p for p in pages)


def wfs_source(server: str, **extra: str) -> str:
    keys = "".join(f", {k}: {v}" for k, v in extra.items())
    return f"- wfs: {{url: {server}/wfs, typename: 'app:stationen', page_size: 10{keys}}}\n"


@pytest.mark.parametrize("matched", ["exact", "omit", "unknown"])
def test_wfs_server_capping_count_is_paged_to_the_end(tmp_path: Path, server: str,
                                                      matched: str) -> None:
    """The server returns at most 7 features whatever `count` asks: short pages are not the
    end. With numberMatched the client stops when all arrived, without it at an empty page."""
    Handler.wfs_cap, Handler.wfs_matched = 7, matched
    report = run(project(tmp_path, wfs_source(server)))
    assert report.status == "committed", report.error
    assert report.rows_valid == 23
    starts = [parse_qs(urlparse(r).query)["startIndex"][0] for r in Handler.requests]
    assert starts == (["0", "7", "14", "21"] + ([] if matched == "exact" else ["23"]))
    ids = [r["id"] for r in pq.read_table(Store(tmp_path / "store").current("stationen")
                                          .data_file, columns=["id"]).to_pylist()]
    assert sorted(ids) == sorted(f["properties"]["id"] for f in FEATURES)


@pytest.mark.parametrize("matched,expected", [
    ("more", "announced 28 features (numberMatched) but 23 arrived"),
    ("shifting", "says numberMatched 25, an earlier page said 24"),
])
def test_wfs_counts_that_disagree_fail_the_run(tmp_path: Path, server: str, matched: str,
                                               expected: str) -> None:
    Handler.wfs_cap, Handler.wfs_matched = 7, matched
    report = run(project(tmp_path, wfs_source(server)))
    assert report.status == "failed" and expected in report.error, report.error
    assert report.error_code == ("fetch.incomplete" if matched == "more" else "fetch.changed")
    assert Store(tmp_path / "store").current("stationen") is None


def test_wfs_unstable_order_fails_and_sort_by_fixes_it(tmp_path: Path, server: str) -> None:
    """Without a key in the schema there is no default sortBy; the server's order shifts
    between requests, so a feature comes twice (and another never): the run fails."""
    unkeyed = {"fields": [{"name": "id", "type": "string"}, *SCHEMA["fields"][1:]]}
    root = project(tmp_path, wfs_source(server))
    (root / "schemas" / "stationen.json").write_text(json.dumps(unkeyed))
    report = run(root)
    assert report.status == "failed" and "order is not stable" in report.error, report.error
    assert "sort_by" in report.error and "sortBy" not in "".join(Handler.requests)
    said = failure(language("de"), SimpleNamespace(report={
        "error_code": report.error_code, "error_params": report.error_params}, error=""))
    assert said.startswith("Das Objekt „") and "Bitte in der Pipeline „sort_by“" in said
    (root / "pipelines" / "stationen.yaml").write_text(
        (root / "pipelines" / "stationen.yaml").read_text().replace(
            "page_size: 10", "page_size: 10, sort_by: id"))
    report = run(root)
    assert report.status == "committed" and report.rows_valid == 23, report.error


def test_oapif_follows_next_links(tmp_path: Path, server: str) -> None:
    root = project(tmp_path, f"- oapif: {{url: {server}/ogc, collection: stationen, "
                             "page_size: 5}\n")
    report = run(root)
    assert report.status == "committed", report.error
    assert report.rows_valid == 23
    version = Store(root / "store").current("stationen")
    assert version.bbox[0] == pytest.approx(13.2) and version.source_crs == ["EPSG:4326"]


def test_oapif_next_links_ending_before_number_matched_fail(tmp_path: Path,
                                                            server: str) -> None:
    Handler.oapif_matched = 30
    report = run(project(tmp_path, f"- oapif: {{url: {server}/ogc, collection: stationen, "
                                   "page_size: 5}\n"))
    assert report.status == "failed", report
    assert "announced 30 features (numberMatched) but 23 arrived in 5 page(s)" in report.error


def test_ckan_resource_and_conditional_request(tmp_path: Path, server: str) -> None:
    root = project(tmp_path, f"- ckan: {{url: {server}, resource_id: res-1}}\n"
                             "  geometry: {lon: lon, lat: lat}\n  crs: EPSG:4326\n")
    first = run(root)
    assert first.status == "committed" and first.rows_valid == 2, first.error
    second = run(root)
    assert second.status == "unchanged" and second.version == 1
    assert any(r == "/files/stationen.csv" for r in Handler.requests)
    assert len(Store(root / "store").versions("stationen")) == 1


def test_ckan_unknown_resource_is_a_clear_error(tmp_path: Path, server: str) -> None:
    root = project(tmp_path, f"- ckan: {{url: {server}, resource_id: nope}}\n"
                             "  geometry: {lon: lon, lat: lat}\n  crs: EPSG:4326\n")
    report = run(root)
    assert report.status == "failed"
    assert "resource_show" in report.error and "404" in report.error
    assert report.error_code == "fetch.status" and report.error_params["status"] == 404
    said = failure(language("de"), SimpleNamespace(report={
        "error_code": report.error_code, "error_params": report.error_params}, error=""))
    assert said.startswith("Der Server von ") and said.endswith(
        " hat mit dem Fehler HTTP 404 geantwortet.")
