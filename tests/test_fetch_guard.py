"""Sources are fetched from public addresses only: a URL (or a redirect) to this machine, the
internal network or a cloud's metadata service is refused with a clear message and nothing is
committed, unless HUB_FETCH_ALLOW names the host or its network."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest
from conftest import Project

from hub.errors import SourceError
from hub.ingest.remote import public_only

CSV = b"id,name\n1,Herzberg\n"


@pytest.fixture(scope="module")
def local_source() -> Iterator[str]:
    """A CSV at /daten.csv and a redirect to it at /weiter, on 127.0.0.1."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/weiter":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{port}/daten.csv")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(CSV)))
            self.end_headers()
            self.wfile.write(CSV)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.csv", "http://localhost:9/x.csv",
                                 "http://10.1.2.3/x.csv", "http://192.168.0.10/x.csv",
                                 "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]:9/x.csv", "http://0.0.0.0:9/x.csv"])
def test_addresses_that_are_not_public_are_refused(url: str) -> None:
    with pytest.raises(SourceError, match=r"not a public address.*HUB_FETCH_ALLOW"):
        public_only(())(httpx.Request("GET", url))


def test_allowed_hosts_and_networks_pass() -> None:
    public_only(("10.0.0.0/8",))(httpx.Request("GET", "http://10.1.2.3/wfs"))
    public_only(("localhost",))(httpx.Request("GET", "http://localhost:9/x.csv"))
    public_only(())(httpx.Request("GET", "http://93.184.215.14/x.csv"))  # a public address
    with pytest.raises(SourceError):
        public_only(("10.0.0.0/8",))(httpx.Request("GET", "http://192.168.1.1/x.csv"))


def test_a_pipeline_to_this_machine_fails_and_commits_nothing(
        local_source: str, ingest_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_project.schema("orte", [{"name": "id", "type": "integer"},
                                   {"name": "name", "type": "string"}])
    port = local_source.rsplit(":", 1)[1]
    # directly; and by a redirect from a host allowed by name to one that is not
    for allow, url in (("", f"{local_source}/daten.csv"),
                       ("localhost", f"http://localhost:{port}/weiter")):
        monkeypatch.setenv("HUB_FETCH_ALLOW", allow)
        ingest_project.pipeline("orte", "orte", source={"url": url, "format": "csv"})
        report = ingest_project.ingest("orte")
        assert report.status == "failed", report
        assert "not a public address (127.0.0.1)" in report.error
        assert "HUB_FETCH_ALLOW" in report.error
        assert "orte" not in {d.name for d in ingest_project.store.datasets()
                              if d.current_version}
    monkeypatch.setenv("HUB_FETCH_ALLOW", "127.0.0.1")
    assert ingest_project.ingest("orte").status == "committed"
