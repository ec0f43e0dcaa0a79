"""Sources are fetched from public addresses only: a URL (or a redirect) to this machine, the
internal network or a cloud's metadata service is refused with a clear message and nothing is
committed, unless HUB_FETCH_ALLOW names the host or its network. The address checked is the
address connected to: a name that resolves to an allowed address when checked and to this
machine when connected to (DNS rebinding) never reaches this machine."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Project

from hub.errors import SourceError
from hub.ingest.remote import Guard, GuardedTransport
from hub.web.portal.i18n import language
from hub.web.workspace.problems import refusal

CSV = b"id,name\n1,Herzberg\n"


@pytest.fixture(scope="module")
def local_source() -> Iterator[str]:
    """A CSV at /daten.csv and a redirect to it at /weiter, on 127.0.0.1 (only there); the
    requests it answered are in `local_source.seen` (as `hits` on the module)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            HITS.append(self.path)
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


HITS: list[str] = []


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.csv", "http://localhost:9/x.csv",
                                 "http://10.1.2.3/x.csv", "http://192.168.0.10/x.csv",
                                 "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]:9/x.csv", "http://0.0.0.0:9/x.csv"])
def test_addresses_that_are_not_public_are_refused(url: str) -> None:
    with pytest.raises(SourceError, match=r"not a public address.*HUB_FETCH_ALLOW"), \
            httpx.Client(transport=GuardedTransport(Guard(())), timeout=5) as client:
        client.get(url)


def test_a_refused_address_is_said_in_the_pages_language() -> None:
    with pytest.raises(SourceError) as refused, \
            httpx.Client(transport=GuardedTransport(Guard(())), timeout=5) as client:
        client.get("http://10.1.2.3/x.csv")
    assert refused.value.failure_code == "fetch.private"  # type: ignore[attr-defined]
    assert refusal(language("de"), refused.value) == (
        "10.1.2.3 ist keine öffentliche Adresse (10.1.2.3). Der Datenhub holt Quellen nur aus "
        "dem Internet; einen Rechner im internen Netz kann die Verwaltung des Datenhubs "
        "freigeben (HUB_FETCH_ALLOW).")
    assert refusal(language("dsb"), refused.value).startswith("10.1.2.3 njejo zjawna adresa")


def test_allowed_hosts_and_networks_pass() -> None:
    assert Guard(("10.0.0.0/8",)).addresses("10.1.2.3", 80) == ["10.1.2.3"]
    assert "127.0.0.1" in Guard(("localhost",)).addresses("localhost", 9)
    assert Guard(()).addresses("93.184.215.14", 80) == ["93.184.215.14"]  # a public address
    with pytest.raises(SourceError):
        Guard(("10.0.0.0/8",)).addresses("192.168.1.1", 80)


def rebinding(monkeypatch: pytest.MonkeyPatch, name: str, first: str, then: str) -> list[str]:
    """Make the process's resolver answer `name` with `first` once and with `then` after that
    (what a hostile DNS server with a zero TTL does); returns the answers given."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        answers.append(then if answers else first)
        return real(answers[-1], port, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_rebound_to_this_machine_after_the_check_is_not_reached(
        local_source: str, ingest_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The name resolves to 127.0.0.2 first — allowed here by HUB_FETCH_ALLOW, standing in for
    a public address (there is no internet in the test), with nothing listening on it — and to
    127.0.0.1, where the local source listens, on every later lookup. Resolving once for the
    check and again for the connection would fetch from 127.0.0.1; the guard connects to the
    address it checked, so the source on 127.0.0.1 is never asked."""
    port = local_source.rsplit(":", 1)[1]
    url = f"http://rebound.example:{port}/daten.csv"
    answers = rebinding(monkeypatch, "rebound.example", "127.0.0.2", "127.0.0.1")
    HITS.clear()
    with pytest.raises(httpx.ConnectError), \
            httpx.Client(transport=GuardedTransport(Guard(("127.0.0.2",))), timeout=5) as client:
        client.get(url)
    assert answers == ["127.0.0.2"] and HITS == []
    # the same through an ingest: the run fails, nothing is committed, nothing was fetched
    monkeypatch.setenv("HUB_FETCH_ALLOW", "127.0.0.2")
    ingest_project.schema("orte", [{"name": "id", "type": "integer"},
                                   {"name": "name", "type": "string"}])
    ingest_project.pipeline("orte", "orte", source={"url": url, "format": "csv"})
    answers = rebinding(monkeypatch, "rebound.example", "127.0.0.2", "127.0.0.1")
    report = ingest_project.ingest("orte")
    assert report.status == "failed" and "cannot connect" in report.error, report
    assert answers == ["127.0.0.2"] and HITS == []
    assert "orte" not in {d.name for d in ingest_project.store.datasets() if d.current_version}
    # and the other way round: refused by the check, whatever the name resolves to later
    answers = rebinding(monkeypatch, "rebound.example", "127.0.0.1", "127.0.0.2")
    with pytest.raises(SourceError, match=r"rebound.example is not a public address "
                                          r"\(127.0.0.1\)"), \
            httpx.Client(transport=GuardedTransport(Guard(("127.0.0.2",))), timeout=5) as client:
        client.get(url)
    assert answers == ["127.0.0.1"] and HITS == []


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
