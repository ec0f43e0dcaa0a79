"""A remote data source for the job and scheduling tests: a real HTTP server on 127.0.0.1
that serves one CSV with an ETag and Last-Modified, answers conditional requests with 304,
counts what it was asked, and can hold a download half-sent until released (then it sends
the rest)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading
from typing import Any

LAST_MODIFIED = "Tue, 01 Dec 2026 08:00:00 GMT"


FIELDS = [  # the table schema of `points_csv`
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "name", "type": "string"},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]},
]


def points_pipeline(project: Any, url: str, **keys: Any) -> None:
    """Pipeline `orte` of `project` (a conftest.Project) reading `points_csv` from `url`,
    updated daily."""
    project.schema("points", FIELDS)
    project.pipeline("orte", "points", {
        "url": url, "format": "csv", "crs": "EPSG:4326",
        "geometry": {"lon": "lon", "lat": "lat"}}, update_frequency="daily", **keys)


def points_csv(rows: int, tag: str = "") -> bytes:
    """`rows` points inside the test district (tests/conftest.py DISTRICT_BBOX)."""
    lines = ["id;name;lon;lat"] + [
        f"{i};Ort {i}{tag};{13.1 + i % 700 / 1000:.4f};{51.4 + i % 400 / 1000:.4f}"
        for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


class SourceServer:
    def __init__(self, body: bytes):
        self.body = body
        self.requests: list[dict[str, str]] = []  # the headers of every request
        self.not_modified = 0  # how many were answered 304
        self.conditional = True  # False: answers 200 with the body even when unchanged
        self.hold = threading.Event()  # set: downloads are held half-sent
        self.holding = threading.Event()  # set once a download is being held
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.answer(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def url(self, path: str = "/daten.csv") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def answer(self, h: http.server.BaseHTTPRequestHandler) -> None:
        if self.conditional and h.headers.get("If-None-Match") == self.etag:
            self.not_modified += 1
            h.send_response(304)
            h.send_header("ETag", self.etag)
            h.end_headers()
            return
        body = self.body
        h.send_response(200)
        h.send_header("Content-Type", "text/csv; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("ETag", self.etag)
        h.send_header("Last-Modified", LAST_MODIFIED)
        h.end_headers()
        if self.hold.is_set():
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            self.holding.set()
            self.release.wait(timeout=120)  # guards a hang only
            h.wfile.write(body[len(body) // 2:])
            return
        h.wfile.write(body)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
