"""Shared pytest fixtures."""

from __future__ import annotations

# ==================================================================================================
# Ingest test harness (used by tests/test_ingest_*.py).
# A throw-away project folder (catalog/, schemas/, pipelines/, store/) in tmp_path, with helpers to
# write schemas and pipelines, run the real `ingest()` or the real CLI, and read the store back.
# ==================================================================================================
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

# The tests' data sources are HTTP servers on this machine: allowed as an operator allows a host
# of the internal network (hub.ingest.remote fetches public addresses only);
# tests/test_fetch_guard.py checks the refusal without it.
os.environ["HUB_FETCH_ALLOW"] = "127.0.0.1"

#: lon/lat bbox of the test district (Elbe-Elster); points are built around its centre
DISTRICT_BBOX = [13.05, 51.368, 13.89, 51.884]
CENTRE = (13.47, 51.626)
REPO = Path(__file__).resolve().parents[1]


def add_catalog(root: Path) -> Path:
    """Give a project the catalog production has (the repository's vocabularies and
    organisations): the server does not start without one (see hub.access)."""
    import shutil

    catalog = root / "catalog"
    catalog.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "catalog" / "vocabularies", catalog / "vocabularies",
                    dirs_exist_ok=True)
    shutil.copy(REPO / "catalog" / "organizations.yaml", catalog / "organizations.yaml")
    return catalog


class Project:
    """A project root with its own store; everything the ingest tests need."""

    def __init__(self, root: Path):
        self.root = root
        self.store_dir = root / "store"
        self.data = root / "pipelines" / "data"
        self.data.mkdir(parents=True)
        (root / "schemas").mkdir()
        add_catalog(root)
        (root / "catalog" / "district.yaml").write_text(yaml.safe_dump(
            {"name": "Testkreis", "bbox": DISTRICT_BBOX, "extent_buffer_km": 5}))

    # -- writing the project -------------------------------------------------------------------

    def schema(self, name: str, fields: list[dict[str, Any]], **extra: Any) -> str:
        (self.root / "schemas" / f"{name}.json").write_text(
            json.dumps({"fields": fields, **extra}, ensure_ascii=False), encoding="utf-8")
        return name

    def pipeline(self, dataset: str, schema: str, source: dict[str, Any] | None = None,
                 **keys: Any) -> Path:
        spec: dict[str, Any] = {"title": f"Test {dataset}", "organization": "Testamt",
                                "schema": schema, **keys}
        if source is not None:
            spec["source"] = source
        path = self.root / "pipelines" / f"{dataset}.yaml"
        path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
        return path

    # -- running -------------------------------------------------------------------------------

    def settings(self):
        from hub.config import load_settings

        return load_settings(self.root, self.store_dir)

    @property
    def store(self):
        from hub.store.versions import Store

        return Store(self.store_dir)

    def ingest(self, dataset: str, force: bool = False):
        """The real ingest of `pipelines/<dataset>.yaml`; returns the RunReport."""
        from hub.ingest.pipeline import load_pipeline
        from hub.ingest.run import ingest

        settings = self.settings()
        pipeline = load_pipeline(self.root / "pipelines" / f"{dataset}.yaml",
                                 settings.schemas_dir)
        return ingest(pipeline, self.store, settings, who="pytest", force=force)

    def cli(self, *args: str) -> CliResult:
        """`hub <args> --root <root> --store <store>` through typer's CliRunner."""
        from typer.testing import CliRunner

        from hub.cli import app

        result = CliRunner().invoke(
            app, [*args, "--root", str(self.root), "--store", str(self.store_dir)],
            env={"COLUMNS": "400"})
        return CliResult(result)

    # -- reading the store back ----------------------------------------------------------------

    def current(self, dataset: str):
        return self.store.current(dataset)

    def table(self, dataset: str):
        return pq.read_table(self.current(dataset).data_file)

    def rows(self, dataset: str) -> list[dict[str, Any]]:
        table = self.table(dataset)
        return table.drop_columns([c for c in ("geometry", "bbox")
                                   if c in table.column_names]).to_pylist()

    def geometries(self, dataset: str) -> list[Any]:
        import shapely

        return list(shapely.from_wkb(self.table(dataset).column("geometry").to_pylist()))

    def quarantine(self, dataset: str) -> list[dict[str, Any]]:
        return pq.read_table(self.current(dataset).quarantine_file).to_pylist()


class CliResult:
    """A CliRunner result with the combined output flattened for substring checks."""

    def __init__(self, result: Any):
        self.result = result
        self.exit_code = result.exit_code
        self.exception = result.exception
        self.output = result.output
        self.text = " ".join(result.output.split())  # rich may wrap long lines

    def __repr__(self) -> str:
        return f"<exit {self.exit_code}: {self.output!r} exception={self.exception!r}>"


@pytest.fixture
def ingest_project(tmp_path: Path) -> Project:
    return Project(tmp_path / "project")


@pytest.fixture(autouse=True)
def guard_limits(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest tests use toy files where one bad row in three is the point, so they run with the
    guard against near-empty versions switched off (every share 1). Tests marked `guard` (the
    guard's own, the demo) run with its defaults; session- and module-scoped sites are built
    before this fixture and so with the defaults too."""
    from hub.ingest.guard import ENV

    for var in ENV.values():
        if request.node.get_closest_marker("guard") is None:
            monkeypatch.setenv(var, "1")
        else:
            monkeypatch.delenv(var, raising=False)

# ======================================== end ingest harness ======================================


# ==================================================================================================
# A running hub: `hub serve` in a child process on a free port of 127.0.0.1, for real clients.
# ==================================================================================================
import contextlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from bench._serve import HUB, HubServer, free_port  # noqa: E402  (the one server starter)


def hub_cli(root: Path, *args: str, store: Path | None = None) -> subprocess.CompletedProcess:
    """`hub ARGS --root ROOT --store STORE` in a child process (checked, text output)."""
    return subprocess.run([sys.executable, "-c", HUB, *args, "--root", str(root),
                           "--store", str(store or root / "store")],
                          capture_output=True, text=True, check=True, timeout=300)


Server = HubServer  # what `hub_server` yields: `url`, `pid`, ... (bench/_serve.py)


@contextlib.contextmanager
def hub_server(root: Path, store: Path | None = None, **env: str) -> Iterator[HubServer]:
    """Run `hub serve` on the project at `root` (the environment's HUB_BASE_URL dropped,
    `env` added) until it answers; stops it afterwards."""
    with HubServer(root, store, **env) as server:
        yield server


@contextlib.contextmanager
def hub_worker(root: Path, store: Path | None = None) -> Iterator[None]:
    """A real `hub worker` on the project at `root` until the block ends: it runs the jobs
    the workspace queues."""
    worker = subprocess.Popen(
        [sys.executable, "-c", HUB, "worker", "--poll", "0.2", "--root", str(root),
         "--store", str(store or root / "store")], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@contextlib.contextmanager
def serving(root: Path, store: Path | None = None, **env: str) -> Iterator[str]:
    """`hub_server`, yielding just its base URL."""
    with hub_server(root, store, **env) as server:
        yield server.url


@contextlib.contextmanager
def serving_side_by_side(*projects: tuple[Path, dict[str, str]]) -> Iterator[list[str]]:
    """`serving` for several projects (root, environment) at once: the servers start side by
    side (a start is mostly imports and the app's set-up, on a core of its own) and all stop
    when the block ends; yields their base URLs in order."""
    from concurrent.futures import ThreadPoolExecutor

    servers = [HubServer(root, None, **env) for root, env in projects]
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.callback(server.stop)  # a server that did start stops even if another failed
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(HubServer.start, servers))
        yield [server.url for server in servers]


@contextlib.contextmanager
def serving_app(app: Any) -> Iterator[str]:
    """An ASGI app of the test's own making served by uvicorn in this process, on 127.0.0.1,
    until the block ends; yields its base URL (for a router wired with test hooks)."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(1000):  # a bound against a hang only
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# ======================================== PostgreSQL ==============================================

@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server for the session (deploy/postgres.py); never skipped."""
    from deploy.postgres import Postgres

    with Postgres.started(free_port()) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test on each database backend: "sqlite" (the store's file, the default) and
    "postgresql" (a fresh database of the session's server, as HUB_DATABASE_URL)."""
    if request.param == "postgresql":
        monkeypatch.setenv("HUB_DATABASE_URL", request.getfixturevalue("postgres").database())
    else:
        monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    return request.param


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """`backend` for a module's shared hub (its tests run once on each backend): the
    environment holds HUB_DATABASE_URL while the module's hub runs on PostgreSQL."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "postgresql":
            patch.setenv("HUB_DATABASE_URL", request.getfixturevalue("postgres").database())
        else:
            patch.delenv("HUB_DATABASE_URL", raising=False)
        yield request.param


# ======================================== OGC API server ==========================================

@pytest.fixture(scope="session")
def ogc_site(tmp_path_factory: pytest.TempPathFactory):
    """A running `hub serve` with the OGC API test datasets (see tests/ogc_site.py)."""
    from ogc_site import serve

    yield from serve(tmp_path_factory)


# ======================================== demo district ===========================================

@pytest.fixture(scope="session")
def demo_district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project with generated data, every pipeline ingested once per session
    (tests/test_demo.py, the portal's tests); tests that change it work on a copy."""
    import shutil

    from hub.config import load_settings
    from hub.ingest.pipeline import discover
    from hub.ingest.run import ingest
    from hub.store import Store

    root = tmp_path_factory.mktemp("demo")
    for part in ("pipelines", "schemas", "catalog"):
        shutil.copytree(REPO / part, root / part,
                        ignore=shutil.ignore_patterns("generated", "__pycache__"))
    subprocess.run([sys.executable, str(root / "pipelines" / "generate_demo_data.py"),
                    "--out", str(root / "pipelines" / "data" / "generated")], check=True)
    settings = load_settings(root, root / "store")
    store = Store(settings.store)
    reports = [ingest(p, store, settings) for p in discover(settings.pipelines_dir)]
    failed = {r.dataset: r.error for r in reports if r.status != "committed"}
    assert not failed, failed
    return root


@dataclass
class DemoPortal:
    url: str
    root: Path  # the project: catalog/, pipelines/, store/


def hub_settings() -> tuple[tuple[str, str], ...]:
    """Every HUB_* variable of the environment: what a project the hub's commands make
    depends on (to keep one made by commands and copy it under the same settings only)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("HUB_")))


def all_in_folder() -> bool:
    """Whether the hub keeps a project's database and files in the project's folder (no
    HUB_DATABASE_URL, no HUB_STORAGE_URL): then a copy of the folder is a copy of the project."""
    return not os.environ.get("HUB_DATABASE_URL") and not os.environ.get("HUB_STORAGE_URL")


def demo_copy(demo_district: Path, root: Path) -> Path:
    """A copy of the ingested demo district in `root` with its catalog loaded and the inventory
    imported, as `make demo` leaves it (for tests that serve or change it)."""
    import shutil

    settings = hub_settings()
    loaded = _LOADED_DEMO.get((demo_district, settings))
    if loaded is not None:  # the commands' result under the same settings: copied
        shutil.copytree(loaded, root, ignore=shutil.ignore_patterns("*-shm"))
        return root
    shutil.copytree(demo_district, root)
    hub_cli(root, "catalog", "load")
    hub_cli(root, "catalog", "import", str(root / "catalog" / "inventory" / "dateninventur.csv"),
            "--apply")
    if all_in_folder():  # kept beside the demo district for the next copy
        loaded = demo_district.with_name(f"{demo_district.name}-loaded-{len(_LOADED_DEMO)}")
        shutil.copytree(root, loaded, ignore=shutil.ignore_patterns("*-shm"))
        _LOADED_DEMO[(demo_district, settings)] = loaded
    return root


# (demo district, the HUB_* settings) -> a copy made by `demo_copy`, as its commands left it
_LOADED_DEMO: dict[tuple[Path, tuple[tuple[str, str], ...]], Path] = {}


@pytest.fixture(scope="session")
def demo_portal(demo_district: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPortal]:
    """`hub serve` on a copy of the demo district as `make demo` leaves it (the portal's
    tests, HTTP and browser)."""
    root = demo_copy(demo_district, tmp_path_factory.mktemp("portal") / "demo")
    with hub_server(root) as server:
        yield DemoPortal(server.url, root)


# ========================================= browser ================================================

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright, for the module (tests/chromium.py)."""
    from chromium import launched

    yield from launched()


# ===================================== S3 (moto's server) =========================================

@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """An S3 endpoint for the session: moto's standalone server (deploy/s3.py)."""
    from deploy.s3 import S3

    with S3.started(free_port()) as server:
        yield server
