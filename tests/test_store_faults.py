"""The versioned store under faults: kills mid-write, a server reading while ingest runs,
two writers at once, leftovers of dead runs, history, rollback and retention."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import add_catalog, free_port

from hub.config import load_settings
from hub.errors import StoreError
from hub.ingest.pipeline import load_pipeline
from hub.ingest.run import ingest
from hub.store import Store
from hub.store.faults import wait_stopped
from soak.faults import HubServer, MountDenied, hub_process, kill, output, resize
from soak.faults import small_filesystem as mounted

SCHEMA = {"fields": [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "name", "type": "string"},
    {"name": "wert", "type": "number", "constraints": {"minimum": 0}},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"],
     "constraints": {"required": True}},
]}


def write_points(path: Path, rows: int, seed: int = 1) -> None:
    """A cp1252, semicolon, decimal-comma CSV in EPSG:25833 (fast, vectorised)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(rows)
    x = rng.uniform(370_000, 400_000, rows).round(2)
    y = rng.uniform(5_700_000, 5_730_000, rows).round(2)
    wert = rng.uniform(0, 100, rows).round(2)
    body = "\n".join(
        f"{i};Ort {i} – Straße;{w};{a};{b}".replace(".", ",")
        for i, w, a, b in zip(ids.tolist(), wert.tolist(), x.tolist(), y.tolist(), strict=True))
    path.write_bytes(("id;name;wert;rechtswert;hochwert\n" + body + "\n").encode("cp1252"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for sub in ("schemas", "pipelines", "data"):
        (root / sub).mkdir(parents=True)
    add_catalog(root)
    (root / "schemas" / "points.json").write_text(json.dumps(SCHEMA))
    (root / "pipelines" / "points.yaml").write_text(textwrap.dedent("""\
        dataset: points
        title: Punkte
        organization: test
        access: public
        schema: points
        on_error: reject
        outside_extent: keep
        retention: 3
        source:
          path: ../data/points.csv
          geometry: {lon: rechtswert, lat: hochwert}
          crs: EPSG:25833
        """))
    return root


def run(project: Path, **kwargs: object):
    settings = load_settings(project, project / "store")
    pipeline = load_pipeline(project / "pipelines" / "points.yaml")
    return ingest(pipeline, Store(settings.store), settings, **kwargs)


def cli(project: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """`hub ARGS` on the project in a process of its own (output: `soak.faults.output`)."""
    return hub_process(project, project / "store", *args, **env)


def test_versions_history_unchanged_and_rollback(project: Path) -> None:
    data = project / "data" / "points.csv"
    write_points(data, 100)
    first = run(project)
    assert first.status == "committed" and first.version == 1
    assert run(project).status == "unchanged"  # same source, same pipeline: no new version
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert run(project).status == "unchanged"  # touched, same content: still no new version
    write_points(data, 120, seed=2)
    second = run(project)
    assert second.version == 2 and second.rows_valid == 120
    store = Store(project / "store")
    v2 = store.current("points")
    assert v2.rows == 120 and v2.source_crs == ["EPSG:25833"] and v2.run_by
    assert v2.bbox and 13 < v2.bbox[0] < v2.bbox[2] < 14 and 51 < v2.bbox[1] < v2.bbox[3] < 52
    assert pq.ParquetFile(v2.data_file).metadata.num_rows == 120
    store.rollback("points", 1, who="test")
    assert store.current("points").version == 1
    assert [e["kind"] for e in store.events("points")][:2] == ["rollback", "commit"]
    third = run(project, force=True)
    assert third.version == 3  # numbering continues after a rollback
    with pytest.raises(StoreError, match="no version 9"):
        store.rollback("points", 9, who="test")


def test_retention_keeps_newest_and_current(project: Path) -> None:
    data = project / "data" / "points.csv"
    for seed in range(5):
        write_points(data, 10 + seed, seed=seed)
        assert run(project).status == "committed"
    store = Store(project / "store")
    versions = {v.version: v for v in store.versions("points")}
    assert [n for n, v in sorted(versions.items()) if v.purged] == [1, 2]
    assert not versions[1].path.exists() and versions[5].data_file.exists()
    with pytest.raises(StoreError, match="retention"):
        store.rollback("points", 1, who="test")


def test_leftovers_of_dead_runs_are_cleaned(project: Path) -> None:
    write_points(project / "data" / "points.csv", 50)
    assert run(project).version == 1
    store_root = project / "store"
    (store_root / "staging" / "points.deadbeef0000").mkdir()  # died while staging
    orphan = store_root / "data" / "points" / "v2"  # died after rename, before the commit
    orphan.mkdir()
    (orphan / "data.parquet").write_bytes(b"half a file")
    report = run(project, force=True)
    assert report.status == "committed" and report.version == 2
    assert not (store_root / "staging" / "points.deadbeef0000").exists()
    assert pq.ParquetFile(Store(store_root).current("points").data_file).metadata.num_rows == 50


@pytest.mark.parametrize(("point", "survivor"), [
    ("first-batch-staged", 1),  # rows are being written into staging
    ("version-renamed", 1),  # the version folder is in place, the log does not know it
    ("committed", 2),  # the log points at the new version; nothing else has run
])
def test_sigkill_at_each_step_of_a_write(project: Path, point: str, survivor: int) -> None:
    """The writer stops itself at a named point (HUB_FAULT_POINT, hub/store/faults.py) and is
    killed there, so the same moment is tested on a fast machine and a slow one."""
    data = project / "data" / "points.csv"
    write_points(data, 1000)
    assert run(project).version == 1
    store = Store(project / "store")
    write_points(data, 150_000, seed=7)  # several batches
    proc = cli(project, "ingest", "points", HUB_FAULT_POINT=point)
    wait_stopped(proc.pid)
    staged = list((project / "store" / "staging").glob("points.*/data.parquet"))
    unrecorded = project / "store" / "data" / "points" / "v2"
    if point == "first-batch-staged":
        assert staged and staged[0].stat().st_size > 0 and store.current("points").version == 1
    elif point == "version-renamed":
        assert (unrecorded / "data.parquet").exists() and store.current("points").version == 1
    kill(proc)
    current = store.current("points")
    assert current.version == survivor
    store.ensure_sound(current)  # the file is the one its checksum was taken of
    rows = {1: 1000, 2: 150_000}[survivor]
    assert pq.ParquetFile(current.data_file).metadata.num_rows == current.rows == rows
    write_points(data, 2000, seed=8)
    after = run(project)  # no manual cleanup needed
    assert after.status == "committed" and after.version == survivor + 1, after.error
    assert after.rows_valid == 2000 and store.current("points").version == survivor + 1
    assert not list((project / "store" / "staging").glob("points.*"))
    folders = sorted(p.name for p in (project / "store" / "data" / "points").iterdir())
    assert folders == [f"v{n}" for n in range(1, survivor + 2)]


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of `size` mounted at `path` (a real full disk); skips where mounting is denied."""
    try:
        with mounted(path, size):
            yield
    except MountDenied as exc:
        pytest.skip(str(exc))


def test_disk_full_fails_clearly_keeps_the_previous_version_and_is_in_history(
        project: Path) -> None:
    data = project / "data" / "points.csv"
    store_dir = project / "store"
    with small_filesystem(store_dir, "2m"):
        write_points(data, 1000)
        assert run(project).version == 1
        write_points(data, 150_000, seed=3)  # about 4 MB of Parquet
        proc = cli(project, "ingest", "points")
        text = output(proc)
        assert proc.returncode == 1, text
        assert "Traceback" not in text
        assert "dataset 'points'" in text and "is full" in text and str(store_dir) in text
        assert "No space left on device" in text and "when space ran out" in text
        assert "version 1 stays current and intact" in text
        store = Store(store_dir)
        current = store.current("points")
        assert current.version == 1 and current.rows == 1000
        store.ensure_sound(current)
        assert not list((store_dir / "staging").iterdir())  # the space is given back
        history = cli(project, "history", "points")
        shown = output(history)
        assert history.returncode == 0 and "failed" in shown and "is full" in shown
        resize(store_dir, "64m")
        again = run(project)  # space freed: the next run commits, nothing to clean by hand
        assert again.status == "committed" and again.version == 2 and again.rows_valid == 150_000


def test_history_of_a_dataset_whose_only_run_failed(project: Path) -> None:
    report = run(project)  # data/points.csv does not exist
    assert report.status == "failed"
    proc = cli(project, "history", "points")
    text = output(proc)
    assert proc.returncode == 0, text
    assert "unknown dataset" not in text and "no version yet" in text
    assert "failed" in text and "points.csv" in text
    unknown = cli(project, "history", "nichts")
    assert "unknown dataset" in output(unknown) and unknown.returncode == 1


def test_second_writer_is_refused_while_first_runs(project: Path) -> None:
    write_points(project / "data" / "points.csv", 300_000)
    store = Store(project / "store")
    with store.writing("points"):
        report = run(project)
    assert report.status == "failed" and "another run is writing" in report.error
    assert run(project).status == "committed"


@pytest.mark.parametrize("point", ["first-batch-staged", "version-renamed"])
def test_two_writer_processes_of_one_dataset(project: Path, point: str) -> None:
    """A second `hub ingest` while the first is held mid-write (at a named point) is refused
    with a clear message; the first then finishes and commits; the store is sound."""
    data = project / "data" / "points.csv"
    write_points(data, 1000)
    assert run(project).version == 1
    write_points(data, 50_000, seed=4)
    first = cli(project, "ingest", "points", HUB_FAULT_POINT=point)
    wait_stopped(first.pid)
    second = cli(project, "ingest", "points")
    text = output(second)
    assert second.returncode == 1 and "another run is writing dataset 'points'" in text, text
    os.kill(first.pid, signal.SIGCONT)
    text = output(first)
    assert first.returncode == 0 and "committed" in text, text
    store = Store(project / "store")
    current = store.current("points")
    assert current.version == 2 and current.rows == 50_000
    store.ensure_sound(current)
    assert not list((project / "store" / "staging").iterdir())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_ingest_while_serving_readers_never_see_a_mix(project: Path) -> None:
    data = project / "data" / "points.csv"
    write_points(data, 1000)
    assert run(project).version == 1
    server = HubServer(project, project / "store", free_port())
    server.start()
    base = f"{server.url}/api/datasets/points"
    try:
        seen: list[dict] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                seen.append(_get(base))

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            sizes = [50_000, 2000, 70_000]
            for seed, rows in enumerate(sizes):
                write_points(data, rows, seed=seed + 10)
                writer = cli(project, "ingest", "points")
                text = output(writer)
                assert writer.returncode == 0, text
        finally:
            stop.set()
            poller.join()
        assert seen
        rows = {1: 1000, 2: 50_000, 3: 2000, 4: 70_000}
        for answer in seen:  # each answer is one committed version, whole
            assert answer["rows"] == rows[answer["version"]]
        versions = {a["version"] for a in seen}
        assert versions >= {4}  # the server saw the newest version without a restart
        final = _get(base)
        assert final["version"] == 4 and final["rows"] == 70_000
    finally:
        server.stop()


def test_dropping_rows_keeps_the_geoparquet_metadata(tmp_path: Path) -> None:
    import pyarrow as pa
    import shapely

    from hub.store.geoparquet import VersionWriter, drop_rows

    path = tmp_path / "data.parquet"
    schema = pa.schema([("id", pa.int64()), ("geometry", pa.binary())])
    writer = VersionWriter(path, schema, geometry=True)
    points = shapely.to_wkb(shapely.points([[13.4, 51.6], [13.5, 51.7], [13.6, 51.8]]))
    writer.write(pa.table({"id": [1, 2, 3], "geometry": list(points)}))
    writer.close(["Point"], [13.4, 51.6, 13.6, 51.8])
    assert drop_rows(path, np.array([1])) == 2
    geo = json.loads(pq.ParquetFile(path).metadata.metadata[b"geo"])
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"][
        "geometry_types"] == ["Point"]
    assert pq.read_table(path).column("id").to_pylist() == [1, 3]
