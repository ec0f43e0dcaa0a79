"""Three replicas and a worker behind haproxy on PostgreSQL + S3 — the reference deployment
of deploy/cluster.py (`make cluster`), started here as documented — while a load client reads
through haproxy (portal pages, CKAN search, OGC items, tiles, downloads) and pipelines commit
new versions through jobs (issue 14's tests c, a, d and b, in this order):

1. the worker killed with SIGKILL mid-ingest: the previous version stays current on every
   replica, another worker takes the job once its lease ran out, and it commits once;
2. every replica serves a new version 1 s after its commit, and no response mixes two
   versions (every name of a version carries the version's tag);
3. a token revoked through one replica is refused by every replica 1 s later;
4. a replica killed with SIGKILL while requests to it are in flight: haproxy retries them and
   the ones it still sends there on another replica, its health check takes the replica out
   (DOWN in haproxy's statistics, on its admin socket), and the restarted replica is UP again
   and answers requests; meanwhile a job commits and every replica serves the new version.

No client request fails meanwhile (clients on kept-alive and on new connections). The 1 s
bounds are the requirement itself (issue 14): replicas re-read the version log when the
database's mark changes, on the next request."""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import DISTRICT_BBOX, Project
from source_server import SourceServer, points_csv, points_pipeline

from deploy.cluster import Cluster
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.jobs import get, submit
from hub.store.versions import Store

pytestmark = pytest.mark.slow
ROWS = 3000
WORKER = ("--lease", "2", "--beat", "0.2", "--poll", "0.2", "--schedule", "0")
PASSWORD = "Korrekt Pferd Batterie"


def tag(version: int) -> str:
    return f" v{version}"


def tile_of(lon: float, lat: float, zoom: int) -> str:
    n = 2 ** zoom
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"{zoom}/{y}/{x}"


READS = ("/", "/datasets", "/datasets/orte", "/api/3/action/package_search?q=orte",
         "/ogc/collections/orte/items?limit=200",
         f"/ogc/collections/orte/tiles/WebMercatorQuad/{tile_of(13.3, 51.6, 9)}",
         "/downloads/orte/latest.csv")


class Load:
    """Clients reading through haproxy in threads, `clients` over kept-alive connections and
    `fresh` with a new connection per request; every failure and every response that mixes
    versions is kept."""

    def __init__(self, url: str, clients: int = 1, fresh: int = 0):
        self.url = url
        self.failures: list[str] = []
        self.mixed: list[str] = []
        self.answered: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._read, args=(new,), daemon=True)
                         for new in [False] * clients + [True] * fresh]
        for thread in self._threads:
            thread.start()

    def _read(self, new_connections: bool) -> None:
        headers = {"Connection": "close"} if new_connections else {}
        with httpx.Client(base_url=self.url, timeout=60, headers=headers) as http:
            while not self._stop.is_set():
                for path in READS:
                    try:
                        response = http.get(path)
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{path}: {exc!r}")
                        continue
                    if response.status_code != 200:
                        self.failures.append(f"{path}: {response.status_code} "
                                             f"{response.text[:200]}")
                        continue
                    with self._lock:
                        self.answered[path] += 1
                    self._check_one_version(path, response)

    def total(self) -> int:
        with self._lock:
            return sum(self.answered.values())

    def _check_one_version(self, path: str, response: httpx.Response) -> None:
        if "/items" in path:
            names = [f["properties"]["name"] for f in response.json()["features"]]
        elif path.endswith(".csv"):
            names = re.findall(r"Ort \d+ v\d+", response.text)
        else:
            return
        tags = {name.rsplit(" ", 1)[1] for name in names}
        if len(tags) != 1:
            self.mixed.append(f"{path}: {sorted(tags)}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll `check` until true (the timeout guards a hang only)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Deployment:
    def __init__(self, cluster: Cluster, source: SourceServer, store: Store, load: Load):
        self.cluster, self.source, self.store, self.load = cluster, source, store, load

    def version(self) -> int:
        current = self.store.current("orte")
        assert current is not None
        return current.version

    def submit(self) -> str:
        return submit(self.store.db, "ingest", {"dataset": "orte"}, by="pytest",
                      organization="sozialamt")

    def served(self, url: str) -> int:
        return httpx.get(f"{url}/api/datasets/orte", timeout=30).json()["version"]

    def assert_no_failure(self) -> None:
        assert self.load.failures == [], self.load.failures[:10]
        assert self.load.mixed == [], self.load.mixed[:10]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    project = Project(tmp_path_factory.mktemp("replicas") / "project")
    (project.root / "catalog" / "district.yaml").write_text(yaml.safe_dump({
        "name": "Testkreis", "ags": "12062", "bbox": DISTRICT_BBOX, "extent_buffer_km": 5,
        "default_license": "dl-by-de/2.0"}), encoding="utf-8")
    source = SourceServer(points_csv(ROWS, tag=tag(1)))
    points_pipeline(project, source.url(), access="public", organization="sozialamt")
    try:
        with Cluster.started(project.root, worker_options=WORKER) as cluster, \
                pytest.MonkeyPatch.context() as patch:
            for key, value in cluster.env.items():  # this process reads the same state
                patch.setenv(key, value)
            settings = load_settings(project.root, cluster.folder / "observer")
            store = Store(settings.store, settings.database())
            load = Load(cluster.url)
            try:
                yield Deployment(cluster, source, store, load)
            finally:
                load.stop()
            assert all(load.answered[path] > 0 for path in READS), load.answered
    finally:
        source.close()


def test_1_a_worker_killed_mid_ingest_leaves_the_version_and_the_job_commits_once(
        deployment: Deployment) -> None:
    d = deployment
    before = d.version()
    versions = [v.version for v in d.store.versions("orte")]
    d.source.body = points_csv(ROWS, tag=tag(before + 1))
    d.source.release.clear()
    d.source.holding.clear()
    d.source.hold.set()
    job_id = d.submit()
    first = d.cluster.workers[0]
    try:
        wait_for(d.source.holding.is_set, "the worker's download")
        assert get(d.store.db, job_id).state == "running"
        first.kill()
        first.wait(timeout=60)
    finally:
        d.source.hold.clear()
    assert d.version() == before  # nothing half-done is visible
    for replica in d.cluster.replicas:
        assert d.served(replica.url) == before
    d.cluster.start_worker()  # another worker
    d.source.release.set()
    wait_for(lambda: get(d.store.db, job_id).ended, "the retried job")
    job = get(d.store.db, job_id)
    assert (job.state, job.attempts, job.result["version"]) == ("done", 2, before + 1), job
    assert [v.version for v in d.store.versions("orte")] == [before + 1, *versions]
    for replica in d.cluster.replicas:
        wait_for(lambda r=replica: d.served(r.url) == before + 1, "the new version", 10)
    d.assert_no_failure()


def test_2_every_replica_serves_a_new_version_within_1_s(deployment: Deployment) -> None:
    d = deployment
    first = d.version()
    for version in (first + 1, first + 2):
        d.source.body = points_csv(ROWS, tag=tag(version))
        job_id = d.submit()
        wait_for(lambda v=version: d.version() == v, f"version {version} committed")
        committed = time.monotonic()  # seen committed (at most one poll after the commit)
        time.sleep(max(0.0, committed + 1.0 - time.monotonic()))
        for replica in d.cluster.replicas:  # asked 1 s after the commit
            assert d.served(replica.url) == version, replica.url
        wait_for(lambda j=job_id: get(d.store.db, j).ended, "the job's end")
        assert get(d.store.db, job_id).state == "done"
    d.assert_no_failure()


def sign_in(http: httpx.Client, name: str) -> str:
    """Signs in; the account page's CSRF token."""
    form = http.get("/anmelden")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text[:500]
    done = http.post("/anmelden", data={"name": name, "password": PASSWORD,
                                        "csrf": csrf.group(1)})
    assert done.status_code == 303, done.text[:500]
    page = http.get("/konto")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def test_3_a_token_revoked_through_one_replica_is_refused_by_all_within_1_s(
        deployment: Deployment) -> None:
    d = deployment
    catalog, vocab, _ = open_catalog(load_settings(d.cluster.root, d.cluster.folder / "observer"))
    from hub.accounts import Accounts

    accounts = Accounts(catalog.store, vocab)
    accounts.add_user("leser", "sozialamt", role="viewer")
    accounts.set_password("leser", PASSWORD)
    token, secret = accounts.create_token("leser", "laptop")
    header = {"Authorization": secret}
    for replica in d.cluster.replicas:
        assert httpx.get(f"{replica.url}/api/datasets", headers=header).status_code == 200
    first = d.cluster.replicas[0]
    with httpx.Client(base_url=first.url, timeout=30) as http:
        csrf = sign_in(http, "leser")
        revoked = http.post(f"/konto/schluessel/{token.id}/widerrufen", data={"csrf": csrf})
        assert revoked.status_code == 303, revoked.text[:500]
    time.sleep(1.0)
    for replica in d.cluster.replicas:  # asked 1 s after the revocation
        refused = httpx.get(f"{replica.url}/api/datasets", headers=header, timeout=30)
        assert refused.status_code == 403, (replica.url, refused.text[:200])
    d.assert_no_failure()


def counter(d: Deployment, server: str, field: str = "stot") -> int:
    """One of haproxy's counters of `server` (stot: requests sent to it)."""
    return int(d.cluster.servers()[server][field])


def wait_for_status(d: Deployment, server: str, status: str, seconds: float) -> None:
    """Until haproxy has `server` in `status`: fails after `seconds` with the status it has."""
    deadline = time.monotonic() + seconds
    while (now := d.cluster.servers()[server]["status"]) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"haproxy has {server} {now!r}, not {status!r}, "
                                 f"{seconds:g} s on")
        time.sleep(0.05)


def streams(d: Deployment, server: str) -> dict[str, int]:
    """haproxy's requests in flight to `server` (`show sess all`): stream id -> the status of
    its response, -1 while nothing of it arrived."""
    found = {}
    for stream in re.split(r"\n(?=0x)", d.cluster.admin("show sess all")):
        ident = re.search(r" id=(\d+) ", stream)
        status = re.search(r" status=(-?\d+) ", stream)
        if ident and status and re.search(rf"^  server={server} ", stream, re.MULTILINE):
            found[ident.group(1)] = int(status.group(1))
    return found


def unsent(port: int) -> int:
    """Bytes a server on `port` wrote that its peers have not read yet (Linux: the send
    queues of its connections and the receive queues of theirs, in /proc/net/tcp)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state, queues = line.split()[1:5]
        sending, receiving = (int(q, 16) for q in queues.split(":"))
        if state != "0A" and int(local.split(":")[1], 16) == port:  # 0A: listening
            total += sending
        if int(remote.split(":")[1], 16) == port:
            total += receiving
    return total


def kill_between_answers(d: Deployment, number: int) -> int:
    """SIGKILL to replica `number` while haproxy has requests in flight to it and none of its
    answers is half-sent; returns how many requests were in flight.

    An answer half-sent when its replica dies is cut, whatever sits in between: the client
    has to ask again (a download with a Range). So the replica is stopped (SIGSTOP) until
    haproxy has read all it sent and has a request waiting for it; if an answer had begun,
    it goes on (SIGCONT) until that answer is through, and is stopped again."""
    replica, name = d.cluster.replicas[number], d.cluster.server_name(number)
    deadline = time.monotonic() + 60  # a bound against a hang only
    while time.monotonic() < deadline:
        os.kill(replica.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: unsent(replica.port) == 0 and bool(streams(d, name)),
                     f"a request in flight to the stopped {name}", 30)
            in_flight = streams(d, name)  # asked after all it sent arrived
            begun = {i for i, status in in_flight.items() if status != -1}
            if not begun:
                d.cluster.kill_replica(replica)
                return len(in_flight)
        finally:
            if replica.process is not None and replica.process.poll() is None:
                os.kill(replica.pid, signal.SIGCONT)
        wait_for(lambda b=frozenset(begun): not b & streams(d, name).keys(),
                 f"the answers {name} had begun", 30)
    raise AssertionError(f"{name} had an answer half-sent whenever it was stopped, for 60 s")


def test_4_a_replica_killed_with_sigkill_is_taken_out_and_rejoins_on_restart(
        deployment: Deployment) -> None:
    d = deployment
    number = 1
    victim, name = d.cluster.replicas[number], d.cluster.server_name(number)
    names = [d.cluster.server_name(i) for i in range(len(d.cluster.replicas))]
    before = d.cluster.servers()
    version = d.version() + 1
    d.source.body = points_csv(ROWS, tag=tag(version))
    load = Load(d.cluster.url, clients=2, fresh=2)  # beside the module's client
    try:
        wait_for(lambda: all(counter(d, n) >= int(before[n]["stot"]) + 10 for n in names),
                 "requests to every replica", 60)
        job_id = d.submit()  # a pipeline commits meanwhile
        in_flight = kill_between_answers(d, number)
        wait_for_status(d, name, "DOWN", 10)  # 2 failed checks 1 s apart
        out = counter(d, name)
        answered = load.total()
        wait_for(lambda: load.total() >= answered + 20, f"answers while {name} is out", 60)
        assert counter(d, name) == out, f"haproxy sent requests to {name} while DOWN"
        victim.start()  # on its port, answering /ready
        wait_for_status(d, name, "UP", 10)  # 2 good checks 1 s apart
        wait_for(lambda: counter(d, name) >= out + 10, f"requests to {name} again", 60)
        wait_for(lambda: get(d.store.db, job_id).ended, "the job's end")
        assert get(d.store.db, job_id).state == "done"
        for replica in d.cluster.replicas:  # the restarted one too
            wait_for(lambda r=replica: d.served(r.url) == version, "the new version", 10)
    finally:
        load.stop()
    after = d.cluster.servers()
    assert int(after[name]["chkdown"]) == int(before[name]["chkdown"]) + 1
    assert load.failures == [], load.failures[:10]
    assert load.mixed == [], load.mixed[:10]
    assert set(load.answered) == set(READS), load.answered
    d.assert_no_failure()
    retried = sum(int(after["BACKEND"][k]) - int(before["BACKEND"][k])
                  for k in ("wretr", "wredis"))  # retries, redispatches
    assert retried >= in_flight >= 1, (retried, in_flight)
