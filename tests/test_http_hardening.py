"""The HTTP edge of `hub serve` against hostile and careless clients (issue 9, defects 4, 6, 14
and the busy port of 19): request bodies are read only after the caller and the action allow it
and only up to the limit; slow, stalled and idle connections are closed; a crowd of
connections gets a fast 503 instead of exhausting the file descriptors; a busy port is one
clear error; every response carries security headers, nothing loads from a CDN, and the access
log holds no secrets.

Everything runs against a real `hub serve` on 127.0.0.1; the hostile clients are raw sockets
(a chunked body that never ends, a request head sent byte by byte), because well-behaved
clients cannot be made to misbehave.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ckan_project import copy_project, new_token, run_hub
from conftest import Server, add_catalog, free_port, hub_server

BOUNDARY = "hubgrenze7d1"
LIMIT = 1000  # HUB_MAX_UPLOAD_BYTES of the upload server
GUARD = 20.0  # seconds: only guards against a hang (the timeouts under test are 1-2 s)


# -- raw HTTP ---------------------------------------------------------------------------------

def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    sock.settimeout(GUARD)
    return sock


def head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    kind = "\r\nContent-Type: application/octet-stream" if filename else ""
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}{kind}\r\n\r\n".encode() \
        + value + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()
MULTIPART = f"Content-Type: multipart/form-data; boundary={BOUNDARY}"


def response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of one response with a Content-Length (read to its end)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError(f"closed without a response: {data!r}")
        data += more
    head_part, body = data.split(b"\r\n\r\n", 1)
    lines = head_part.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                  if k.lower() == "content-length")
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), body[:length]


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


# -- the upload server: a catalog, an editor, a viewer, a tiny upload limit -------------------

class Site:
    def __init__(self, server: Server, root: Path, spool: Path, tokens: dict[str, str],
                 access_log: Path):
        self.server, self.root, self.spool, self.tokens = server, root, spool, tokens
        self.access_log = access_log

    def written(self) -> list[str]:
        """Files the server has written for requests: in its temporary folder (also unnamed
        ones it holds open), in the uploads' staging folder."""
        staging = self.root / "store" / "uploads" / ".staging"
        names = [str(p) for p in self.spool.rglob("*")]
        names += [str(p) for p in staging.rglob("*")] if staging.exists() else []
        fds = Path(f"/proc/{self.server.pid}/fd")
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith((str(self.spool), str(staging))):
                names.append(target)
        return names


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = copy_project(tmp_path_factory.mktemp("http-hardening") / "project")
    run_hub(root, "catalog", "load")
    tokens = {}
    for user, role in (("sam", "editor"), ("vic", "viewer")):
        run_hub(root, "user", "add", user, "--org", "sozialamt", "--role", role)
        tokens[user] = new_token(root, user)[1]
    spool = root.parent / "spool"
    spool.mkdir()
    access_log = root.parent / "access.log"
    with hub_server(root, HUB_MAX_UPLOAD_BYTES=str(LIMIT), TMPDIR=str(spool),
                    HUB_ACCESS_LOG=str(access_log)) as server:
        site = Site(server, root, spool, tokens, access_log)
        created = httpx.post(f"{server.url}/api/3/action/package_create", timeout=GUARD,
                             headers={"Authorization": tokens["sam"]},
                             json={"name": "mit-anhang", "title": "Mit Anhang",
                                   "notes": "Zum Hochladen.", "owner_org": "sozialamt",
                                   "license_id": "dl-by-de/2.0",
                                   # public: it passes the publication checklist
                                   "maintainer": "Sozialamt",
                                   "maintainer_email": "daten@example.org", "extras": [
                                       {"key": "frequency", "value": "ANNUAL"},
                                       {"key": "data_held", "value": "false"},
                                       {"key": "access_note", "value": "Beim Sozialamt."}]})
        assert created.status_code == 200, created.text
        yield site


def unfinished_upload(site: Site, action: str, *headers: str) -> tuple[int, dict]:
    """A chunked multipart upload whose body never ends: the answer must come anyway."""
    with connect(site.server) as sock:
        sock.sendall(head("POST", f"/api/3/action/{action}", MULTIPART,
                          "Transfer-Encoding: chunked", *headers))
        sock.sendall(chunk(part("package_id", b"mit-anhang")
                           + part("upload", b"x" * (512 << 10), "gross.bin")))
        status, body = response(sock)  # old code: waits for the rest of the body
        assert site.written() == []
        return status, json.loads(body)


@pytest.mark.parametrize("who", [None, "vic", "invalid"])
def test_an_upload_without_write_rights_is_refused_before_its_body(site: Site,
                                                                   who: str | None) -> None:
    token = {None: [], "vic": [f"Authorization: {site.tokens['vic']}"],
             "invalid": ["Authorization: kein-gueltiges-token"]}[who]
    status, body = unfinished_upload(site, "resource_create", *token)
    assert status == 403
    assert body["success"] is False and body["error"]["__type"] == "Authorization Error"
    assert site.written() == []


def test_a_read_action_takes_no_files(site: Site) -> None:
    status, body = unfinished_upload(site, "package_show",
                                     f"Authorization: {site.tokens['sam']}")
    assert status == 400 and "takes no files" in body
    fields_only = httpx.post(f"{site.server.url}/api/3/action/package_show",
                             files=[("id", (None, "mit-anhang"))], timeout=GUARD)
    assert fields_only.json()["result"]["name"] == "mit-anhang"  # fields, as CKAN takes them


def test_an_endless_chunked_upload_stops_at_the_limit(site: Site) -> None:
    """An editor's chunked upload without Content-Length is counted as it arrives and refused
    once it passes the limit, with CKAN's envelope; the rest of the stream is not kept."""
    sent, piece = 0, chunk(b"y" * (64 << 10))
    with connect(site.server) as sock:
        sock.sendall(head("POST", "/api/3/action/resource_create", MULTIPART,
                          "Transfer-Encoding: chunked", f"Authorization: {site.tokens['sam']}"))
        sock.sendall(chunk(part("package_id", b"mit-anhang") + part("name", b"Endlos")
                           + f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"upload\"; "
                             'filename="endlos.bin"\r\n\r\n'.encode()))
        while sent < 64 << 20 and not select.select([sock], [], [], 0)[0]:
            sock.sendall(piece)
            sent += len(piece)
        status, body = response(sock)
    # the old code read all 64 MB (spooling them to disk) before it looked at the size; what
    # is in flight in the sockets' buffers when the answer comes is at most a few MB
    assert sent < 32 << 20
    assert status == 409
    error = json.loads(body)["error"]
    assert error == {"__type": "Validation Error",
                     "upload": [f"File upload too large: the limit is {LIMIT:,} bytes"]}
    assert site.written() == []


def test_a_chunked_upload_within_the_limit_is_stored(site: Site) -> None:
    payload = bytes(range(256)) * 3  # 768 bytes

    def body() -> Iterator[bytes]:  # a generator: httpx sends it chunked
        yield part("package_id", b"mit-anhang") + part("name", b"Klein")
        yield part("upload", payload, "klein.bin") + END

    answer = httpx.post(f"{site.server.url}/api/3/action/resource_create", content=body(),
                        headers={"Authorization": site.tokens["sam"],
                                 "Content-Type": MULTIPART.split(": ", 1)[1]}, timeout=GUARD)
    assert answer.status_code == 200, answer.text
    resource = answer.json()["result"]
    assert resource["size"] == len(payload)
    assert httpx.get(resource["url"], timeout=GUARD).content == payload
    assert site.written() == []  # staged, then moved into place; nothing left behind


@pytest.mark.parametrize("body, content_type", [
    (part("package_id", b"mit-anhang") + part("name", b"Abgeschnitten")
     + part("url", b"https://example.org/a.csv"), MULTIPART.split(": ", 1)[1]),  # no end
    (b"irgendwas", "multipart/form-data"),  # no boundary
])
def test_a_malformed_multipart_body_is_a_400(site: Site, body: bytes, content_type: str) -> None:
    before = httpx.get(f"{site.server.url}/api/3/action/package_show?id=mit-anhang",
                       timeout=GUARD).json()["result"]
    answer = httpx.post(f"{site.server.url}/api/3/action/resource_create", content=body,
                        headers={"Authorization": site.tokens["sam"],
                                 "Content-Type": content_type}, timeout=GUARD)
    assert answer.status_code == 400
    assert answer.json().startswith("Bad request - ")
    after = httpx.get(f"{site.server.url}/api/3/action/package_show?id=mit-anhang",
                      timeout=GUARD).json()["result"]
    assert after["resources"] == before["resources"]


# -- slow, idle and too many connections -------------------------------------------------------

@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A hub with short timeouts and a small connection limit (set as an operator would)."""
    root = tmp_path_factory.mktemp("guarded")
    add_catalog(root)
    with hub_server(root, HUB_HEADER_TIMEOUT="1", HUB_BODY_TIMEOUT="1",
                    HUB_KEEPALIVE_TIMEOUT="1", HUB_MAX_CONNECTIONS="40") as server:
        yield server


def test_slow_stalled_and_idle_connections_are_closed(guarded: Server) -> None:
    silent = [connect(guarded) for _ in range(5)]  # connect, send nothing
    slow = [connect(guarded) for _ in range(5)]  # slowloris: a header line now and then
    for sock in slow:
        sock.sendall(b"GET /api/3 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    stalled = [connect(guarded) for _ in range(5)]  # half a body, then nothing
    for sock in stalled:
        sock.sendall(head("POST", "/api/3/action/status_show", "Content-Type: application/json",
                          "Content-Length: 100") + b'{"a": ')
    idle = []  # one request answered, then nothing on the kept-alive connection
    for _ in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", int(guarded.url.rsplit(":", 1)[1]),
                                          timeout=GUARD)
        conn.request("GET", "/api/3")
        assert conn.getresponse().read() == b'{"version":3}'
        idle.append(conn.sock)
    # meanwhile a normal request is answered
    assert httpx.get(guarded.url + "/api/3", timeout=GUARD).json() == {"version": 3}
    waiting = {*silent, *slow, *stalled, *idle}
    deadline = time.monotonic() + GUARD
    while waiting and time.monotonic() < deadline:
        for sock in slow:
            if sock in waiting:
                try:
                    sock.sendall(b"X-Langsam: ja\r\n")  # more header, never the end
                except OSError:
                    waiting.discard(sock)
        readable = select.select(list(waiting), [], [], 0.3)[0]
        for sock in readable:
            if closed_by_server(sock):
                waiting.discard(sock)
    assert not waiting, f"{len(waiting)} of 20 connections still open after {GUARD} s"
    for sock in [*silent, *slow, *stalled, *idle]:
        sock.close()


def test_a_crowd_of_connections_gets_a_fast_503_and_the_server_recovers(guarded: Server
                                                                         ) -> None:
    fds = Path(f"/proc/{guarded.pid}/fd")
    baseline = len(list(fds.iterdir()))
    crowd = [connect(guarded) for _ in range(200)]  # 5 times the limit
    open_fds = len(list(fds.iterdir()))
    refused = []
    for sock in crowd:
        if select.select([sock], [], [], 0 if refused else 2)[0]:
            data = sock.recv(65536)
            if data.startswith(b"HTTP/1.1 503 "):
                refused.append(sock)
    # the limit holds: at most 40 kept, the rest answered 503 at once (not left open)
    assert len(crowd) - len(refused) <= 40 < len(refused) + 40
    assert len(refused) >= 100
    assert open_fds <= baseline + 40 + 10
    for sock in crowd:
        sock.close()
    # once the crowd is gone (closed, or timed out), normal requests are served again
    deadline = time.monotonic() + GUARD
    while True:
        answer = httpx.get(guarded.url + "/api/3", timeout=GUARD)
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.json() == {"version": 3}


def test_serve_on_a_busy_port_fails_before_it_says_serving(tmp_path: Path) -> None:
    add_catalog(tmp_path)
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        code = "import sys; from hub.cli import app; sys.exit(app())"
        result = subprocess.run([sys.executable, "-c", code, "serve", "--port", str(port),
                                 "--root", str(tmp_path)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Serving" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], result.stderr
    assert "already in use" in lines[0]


# -- security headers, no CDN, the access log ---------------------------------------------------

def test_every_response_carries_security_headers(site: Site) -> None:
    public = httpx.get(f"{site.server.url}/api/3/action/package_list", timeout=GUARD).json()
    pages = ["/", f"/datasets/{public['result'][0]}", "/ogc/?f=html", "/ogc/collections?f=html",
             "/datasets/gibt-es-nicht", "/datasets?page=0"]  # the portal's error pages too
    others = ["/api/3/action/status_show",
              "/api/3/action/package_show?id=gibt-es-nicht",
              "/catalog.ttl", "/catalog.jsonld", "/ogc/", "/ogc/api", "/api/datasets",
              "/downloads/gibt-es-nicht/latest.csv", "/api/3/action/gibt_es_nicht"]
    with httpx.Client(base_url=site.server.url, timeout=GUARD) as client:
        for path in pages + others:
            answer = client.get(path)
            headers = answer.headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "strict-origin-when-cross-origin", path
            assert "server" not in headers, (path, headers.get("server"))  # no banner
            policy = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy, path
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
            html = headers["content-type"].startswith("text/html")
            assert html == (path in pages), (path, headers["content-type"])
            if html:
                assert "script-src 'self'" in policy  # and no inline script: only files
                assert not re.search(r"<script(?![^>]*\ssrc=\"/static/)", answer.text), path
                for style in re.findall(r"<style>(.*?)</style>", answer.text, re.S):
                    digest = base64.b64encode(hashlib.sha256(style.encode()).digest())
                    assert f"'sha256-{digest.decode()}'" in policy  # the page keeps its style
            else:
                assert policy.startswith("default-src 'none'")


def test_no_swagger_ui_from_a_cdn(site: Site) -> None:
    with httpx.Client(base_url=site.server.url, timeout=GUARD) as client:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "cdn" not in answer.text.lower(), path


def test_the_access_log_holds_no_secrets(site: Site) -> None:
    token = site.tokens["sam"]
    with httpx.Client(base_url=site.server.url, timeout=GUARD) as client:
        client.get("/api/3/action/package_show", params={"id": "mit-anhang", "api_key": token},
                   headers={"Authorization": token, "Cookie": "sitzung=keks-geheim"})
        client.post("/api/3/action/package_patch", headers={"X-CKAN-API-Key": token},
                    json={"id": "mit-anhang", "notes": "Protokolliert? Nein."})
    deadline, text = time.monotonic() + GUARD, ""
    while "package_patch" not in text and time.monotonic() < deadline:  # written by a thread
        time.sleep(0.1)
        text = site.access_log.read_text(encoding="utf-8")
    shown = next(line for line in text.splitlines() if "api_key" in line)
    assert re.fullmatch(r"\S+Z GET /api/3/action/package_show\?id=mit-anhang&api_key=\*\*\* "
                        r"200 \d+B [\d.]+ms", shown), shown
    assert re.search(r" POST /api/3/action/package_patch 200 \d+B", text), text
    for secret in (token, "keks-geheim", "sitzung", "Protokolliert", "127.0.0.1"):
        assert secret not in text


@pytest.mark.parametrize("variable, value, message", [
    ("HUB_HEADER_TIMEOUT", "bald", "HUB_HEADER_TIMEOUT='bald': expected a positive number"),
    ("HUB_MAX_CONNECTIONS", "0", "HUB_MAX_CONNECTIONS='0': expected a positive whole number"),
    ("HUB_MAX_CONNECTIONS", str(10**12), "lower HUB_MAX_CONNECTIONS"),
    ("HUB_ACCESS_LOG", "/gibt/es/nicht/access.log", "cannot open the access log"),
])
def test_serve_names_a_wrong_setting(tmp_path: Path, variable: str, value: str,
                                     message: str) -> None:
    add_catalog(tmp_path)
    code = "import sys; from hub.cli import app; sys.exit(app())"
    result = subprocess.run([sys.executable, "-c", code, "serve", "--port", str(free_port()),
                             "--root", str(tmp_path)], env={**os.environ, variable: value},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert message in " ".join(result.stderr.split()), result.stderr
