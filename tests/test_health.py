"""/health and /ready against a real `hub serve` (on SQLite and on PostgreSQL + S3), and the
graceful stop on SIGTERM: /ready answers 503 at once, new connections are refused after the
drain time, a streamed download in flight finishes whole, and the process exits with 0."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from conftest import DISTRICT_BBOX, Project, hub_server
from downloads_site import write_big

from hub.web.counting import classify

ROWS = 200_000  # a CSV download of some MB: larger than the sockets' buffers


def points_project(project: Project, rows: int) -> Project:
    """Public points `punkte` ingested and in the catalog."""
    (project.root / "catalog" / "district.yaml").write_text(yaml.safe_dump({
        "name": "Testkreis", "ags": "12062", "bbox": DISTRICT_BBOX, "extent_buffer_km": 5,
        "default_license": "dl-by-de/2.0"}), encoding="utf-8")
    project.schema("punkte", [{"name": "nr", "type": "integer"},
                              {"name": "gruppe", "type": "string"},
                              {"name": "adresse", "type": "string"},
                              {"name": "wert", "type": "number"},
                              {"name": "geometry", "type": "geojson"}])
    write_big(project.data / "punkte.csv", np.random.default_rng(14), rows)
    project.pipeline("punkte", "punkte", {"path": "data/punkte.csv", "crs": "EPSG:4326",
                                          "geometry": {"lon": "lon", "lat": "lat"},
                                          "casts": {"wert": {"decimalChar": "."}}},
                     access="public", organization="sozialamt")
    report = project.ingest("punkte")
    assert report.status == "committed", (report.error, report.violations[:3])
    assert project.cli("catalog", "load").exit_code == 0
    return project


def assert_short_and_clean(response: httpx.Response, *secrets: str) -> None:
    """A 503 that names what failed and nothing more."""
    assert response.status_code == 503 and len(response.content) < 200, response.text
    for secret in ("Traceback", "Error", *secrets):
        assert secret not in response.text


def test_health_and_ready_answer_everyone_and_are_not_usage() -> None:
    for path in ("/health", "/ready"):
        assert classify("GET", path, b"") is None


@pytest.mark.timeout(120)  # a hang guard, not a timing
def test_ready_names_a_database_that_is_gone(ingest_project: Project, postgres: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres.database()
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    project = points_project(ingest_project, 10)
    name = url.split("@/")[1].split("?")[0]
    with hub_server(project.root, project.store_dir) as server:
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert ready.headers["cache-control"] == "no-store"
        with postgres.connect() as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        gone = httpx.get(f"{server.url}/ready")
        assert_short_and_clean(gone, name, postgres.user, str(postgres.folder))
        assert gone.json() == {"status": "not ready", "failed": ["database"]}
        assert httpx.get(f"{server.url}/health").status_code == 200  # the process still is
        with postgres.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        # an empty database answers again: each server thread's broken connection fails
        # once, then it connects anew (the test's timeout guards a hang)
        while (back := httpx.get(f"{server.url}/ready")).status_code != 200:
            assert back.json() == {"status": "not ready", "failed": ["database"]}
            time.sleep(0.05)


def test_ready_names_storage_that_is_gone(ingest_project: Project, s3_server: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_server.bucket()
    for key, value in {**s3_server.environment(),
                       "HUB_STORAGE_URL": f"s3://{bucket}/hub"}.items():
        monkeypatch.setenv(key, value)
    project = points_project(ingest_project, 10)
    with hub_server(project.root, project.store_dir) as server:
        assert httpx.get(f"{server.url}/ready").json() == {"status": "ready"}
        client = s3_server.client()
        for key in s3_server.keys(bucket):
            client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)
        gone = httpx.get(f"{server.url}/ready")
        assert_short_and_clean(gone, bucket, s3_server.endpoint, "hubtest")
        assert gone.json() == {"status": "not ready", "failed": ["storage"]}


@contextlib.contextmanager
def slow_download(port: int, path: str) -> Iterator[socket.socket]:
    """A GET whose answer is read only when the caller reads it (a small receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                 .encode())
    try:
        yield sock
    finally:
        sock.close()


def read_all(sock: socket.socket, first: bytes) -> bytes:
    chunks = [first]
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.timeout(180)  # a hang guard, not a timing
def test_sigterm_drains_then_finishes_the_download_in_flight_and_exits_0(
        ingest_project: Project) -> None:
    project = points_project(ingest_project, ROWS)
    path = "/downloads/punkte/latest.csv"
    with hub_server(project.root, project.store_dir, HUB_SHUTDOWN_DRAIN="1",
                    HUB_SHUTDOWN_GRACE="60") as server:
        whole = httpx.get(server.url + path, headers={"Accept-Encoding": "identity"},
                          timeout=120)
        assert whole.status_code == 200 and len(whole.content) > 4 << 20
        with slow_download(server.port, path) as sock:
            first = sock.recv(1 << 14)
            assert first.startswith(b"HTTP/1.1 200"), first[:200]
            process = server.process
            assert process is not None
            process.send_signal(signal.SIGTERM)
            draining = httpx.get(f"{server.url}/ready")  # a new connection, still taken
            assert draining.status_code == 503 and draining.json() == {"status": "draining"}
            while not refused(server.port):  # the test's timeout guards a hang
                time.sleep(0.1)
            assert process.poll() is None  # the download is still in flight
            answer = read_all(sock, first)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert dechunk(body) == whole.content
        assert process.wait(timeout=60) == 0, server.output()[-2000:]


def dechunk(body: bytes) -> bytes:
    out, at = [], 0
    while True:
        end = body.index(b"\r\n", at)
        size = int(body[at:end], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[end + 2:end + 2 + size])
        at = end + 2 + size + 2


def test_sigterm_without_drain_stops_accepting_at_once_and_exits_0(
        ingest_project: Project, tmp_path: Path) -> None:
    project = points_project(ingest_project, 10)
    with hub_server(project.root, project.store_dir) as server:
        process = server.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, server.output()[-2000:]
        assert refused(server.port)
