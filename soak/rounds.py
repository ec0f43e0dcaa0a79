"""The soak's rounds: one fault each, then the same checks.

After every fault: the store's current version of every dataset is the last one known to be
committed (nothing committed lost, nothing uncommitted served), the server serves exactly that
version, `hub check` verifies every kept version (exit 0), and the next run succeeds without
manual cleanup.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from typer.testing import CliRunner

from hub.store.faults import wait_stopped
from hub.store.versions import Store
from soak import project
from soak.faults import (
    INGEST_POINTS,
    Cut,
    HubServer,
    cut_download,
    flip_bytes,
    hub_process,
    kill,
    kill_at,
    output,
    resize,
    truncate,
    used_kib,
)
from soak.poller import Poller

STORE_SIZE = "512m"  # the store's tmpfs, outside the full-disk round
EXPORTS = ("gpkg", "fgb")  # built by the server on first request (fault point export-written)
STREAMS = ("geojson", "csv", "fgb")  # chunked, chunked, Content-Length


class SoakFailure(AssertionError):
    """A promise was broken: the soak stops and names the round."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise SoakFailure(message)


class Soak:
    def __init__(self, root: Path, rng: random.Random, port: int, tmpfs: bool):
        self.root, self.rng, self.tmpfs = root, rng, tmpfs
        self.store_dir = root / "store"
        self.datasets = {d.name: d for d in (project.Dataset("punkte", 60_000),
                                             project.Dataset("zweit", 20_000),
                                             project.Dataset("stabil", 500))}
        self.server = HubServer(root, self.store_dir, port, log=root / "serve.log")
        self.poller = Poller(self.server.url, list(self.datasets))
        self.tally: Counter[str] = Counter()
        self.ingest_seconds = 2.0  # how long a whole ingest of punkte takes (measured)
        self.references: dict[tuple[str, int, str], bytes] = {}
        #: the checksum each committed version was served with (a file hub check verifies)
        self.checksums: dict[tuple[str, int], str] = {}

    # -- setting up and tearing down -------------------------------------------------------------

    def start(self) -> None:
        project.build(self.root, list(self.datasets.values()))
        for d in self.datasets.values():
            self.ingest(d, self.new_source(d, d.rows))
        loaded = self.cli("catalog", "load")
        expect(loaded.exit_code == 0, f"hub catalog load: {loaded.output}")
        self.server.start()
        self.poller.start()

    def stop(self) -> None:
        self.poller.halt.set()
        if self.poller.ident is not None:
            self.poller.join(timeout=60)
        self.server.stop()

    # -- the rounds ------------------------------------------------------------------------------

    def ingest_kill(self) -> None:
        """SIGKILL an ingest at a named fault point or after a random delay."""
        d = self.datasets[self.rng.choice(["punkte", "zweit"])]
        rows, before = self.new_source(d), d.committed[-1]
        if self.rng.random() < 0.5:
            point = self.rng.choice(INGEST_POINTS)
            run = self.hub("ingest", d.name, HUB_FAULT_POINT=point)
            kill_at(run)
            how = point
        else:
            delay = self.rng.uniform(0.05, 1.0) * self.ingest_seconds * d.rows / 60_000
            run = self.hub("ingest", d.name)
            time.sleep(delay)
            if run.poll() is not None:  # done before the kill: an ordinary run
                expect(run.returncode == 0, f"ingest {d.name}: {output(run)}")
                self.committed(d, rows)
                self.tally["ingest finished before the kill"] += 1
                self.verify()
                return
            kill(run)
            how = "delay"
        self.tally["ingest SIGKILL"] += 1
        self.tally[f"ingest SIGKILL at {how}"] += 1
        current = self.store().current(d.name)
        assert current is not None
        if (current.version, current.rows) != before:  # the run was killed after its commit
            expect(how in ("committed", "delay"), f"{d.name}: a run killed at {how} committed")
            self.committed(d, rows)
        else:
            expect(how != "committed", f"{d.name}: a run killed after its commit is lost")
        self.verify()
        self.ingest(d, self.new_source(d))  # the next run, no cleanup by hand
        self.verify()

    def server_kill(self) -> None:
        """SIGKILL the server while it serves: at its named fault point (an export half
        built) or after a random delay while downloads are under way."""
        unbuilt = [(d.name, fmt) for d in self.datasets.values() for fmt in EXPORTS
                   if not self.export_built(d.name, fmt)]
        if unbuilt and self.rng.random() < 0.5:
            name, fmt = self.rng.choice(unbuilt)
            self.restart(HUB_FAULT_POINT="export-written")
            request = self.background(f"/downloads/{name}/latest.{fmt}")
            wait_stopped(self.server.pid)
            self.poller.down.set()
            self.server.kill()
            request.join()
            how = "export-written"
        else:
            urls = [f"/downloads/{name}/latest.{self.rng.choice(STREAMS)}"
                    for name in self.datasets]
            requests = [self.background(url) for url in urls]
            time.sleep(self.rng.uniform(0.05, 2.0))
            self.poller.down.set()
            self.server.kill()
            for request in requests:
                request.join()
            how = "delay"
        self.tally["server SIGKILL"] += 1
        self.tally[f"server SIGKILL at {how}"] += 1
        self.restart()
        self.verify()
        if how == "export-written":  # the export is built again, whole
            response = httpx.get(f"{self.server.url}/downloads/{name}/latest.{fmt}", timeout=300)
            expect(response.status_code == 200, f"{name}.{fmt} after the kill: "
                   f"{response.status_code} {response.text[:200]}")
            self.verify()

    def two_writers(self) -> None:
        """Two ingests of one dataset at once: one writes, the other is refused (or finds
        nothing new), and the store holds exactly one new version. Either the first is held
        at a named point while the second runs, or both race freely."""
        d = self.datasets[self.rng.choice(["punkte", "zweit"])]
        rows, before = self.new_source(d), d.committed[-1]
        held = self.rng.random() < 0.5
        if held:
            first = self.hub("ingest", d.name, HUB_FAULT_POINT=self.rng.choice(
                ["first-batch-staged", "version-renamed"]))
            wait_stopped(first.pid)
            second = self.hub("ingest", d.name)
            second.wait(timeout=300)
            os.kill(first.pid, signal.SIGCONT)
        else:
            first = self.hub("ingest", d.name)
            time.sleep(self.rng.uniform(0, 0.3))
            second = self.hub("ingest", d.name)
        texts = [output(first), output(second)]
        refused = ["another run is writing" in text for text in texts]
        for run, text, no in zip((first, second), texts, refused, strict=True):
            expect(run.returncode == 0 or no, f"two writers of {d.name}: {text}")
        expect(not held or refused == [False, True], f"two writers of {d.name}, the first "
               f"held: {texts[1]}")
        current = self.store().current(d.name)
        assert current is not None
        expect(current.version > before[0] and current.rows == rows,
               f"two writers of {d.name}: v{current.version} with {current.rows} rows")
        self.committed(d, rows)
        self.tally["two writers"] += 1
        self.tally["two writers: second refused"] += sum(refused)
        self.verify()

    def full_disk(self) -> None:
        """An ingest runs out of space: it fails clearly, the current version stays, the
        space is given back; with space again the next run commits."""
        d = self.datasets["punkte"]
        before = d.committed[-1]
        rows = self.new_source(d, d.rows * 2)
        resize(self.store_dir, f"{used_kib(self.store_dir) + 1024}k")
        try:
            run = self.hub("ingest", d.name)
            text = output(run)
            expect(run.returncode == 1 and "is full" in text and "Traceback" not in text,
                   f"ingest on a full disk: {text}")
            expect(f"version {before[0]} stays current and intact" in text, text)
            current = self.store().current(d.name)
            assert current is not None
            expect((current.version, current.rows) == before, "the full disk changed "
                   f"{d.name}: v{current.version}")
            expect(not list((self.store_dir / "staging").glob(f"{d.name}.*")),
                   "a failed run left its staging folder behind")
            self.verify()
        finally:
            resize(self.store_dir, STORE_SIZE)
        self.ingest(d, rows)  # same source, space again
        self.tally["full disk"] += 1
        self.verify()

    def corrupt(self) -> None:
        """Damage the current version's file: `hub check` finds it, the server answers 503
        for that dataset only, `hub rollback` restores service."""
        store = self.store()
        choices = []
        for d in self.datasets.values():
            good = [v for v in store.versions(d.name) if not v.purged and not v.broken
                    and v.version != d.committed[-1][0]]
            if good:
                choices.append((d, good[-1]))
        if not choices:
            self.ingest(self.datasets["stabil"], 400 + self.rng.randrange(200))
            return self.corrupt()
        d, previous = self.rng.choice(choices)
        current = store.current(d.name)
        assert current is not None
        original = current.data_file.read_bytes()
        self.poller.skip.add(d.name)
        try:
            self.rng.choice([flip_bytes, truncate])(current.data_file)
            checked = self.cli("check")
            expect(checked.exit_code == 1 and d.name in checked.output
                   and "broken" in checked.output, f"hub check missed the damage: {checked}")
            for other in self.datasets:
                url = f"{self.server.url}/downloads/{other}/latest.csv"
                status = httpx.get(url, timeout=300).status_code
                expect(status == (503 if other == d.name else 200), f"{url}: {status}")
            rolled = self.cli("rollback", d.name, str(previous.version))
            expect(rolled.exit_code == 0, f"hub rollback: {rolled.output}")
            d.committed.append((previous.version, previous.rows))
            served = httpx.get(f"{self.server.url}/downloads/{d.name}/latest.csv", timeout=300)
            expect(served.status_code == 200 and served.text.count("\n") == previous.rows + 1,
                   f"{d.name} after the rollback: {served.status_code}")
            current.data_file.write_bytes(original)  # the file back from a backup
            repaired = self.cli("check")
            expect(repaired.exit_code == 0 and "repaired" in repaired.output,
                   f"hub check after the repair: {repaired.output}")
        finally:
            self.poller.skip.discard(d.name)
        self.tally["corrupt file"] += 1
        self.verify()
        self.ingest(d, self.new_source(d))
        self.verify()

    def download_restart(self) -> None:
        """The server is killed and started again during a download: the client sees the
        transfer end in an error (never a short or mixed file), and downloads it again
        byte for byte."""
        d = self.datasets["punkte"]
        ext = STREAMS[self.tally["download restart"] % len(STREAMS)]  # each framing in turn
        url = f"{self.server.url}/downloads/{d.name}/latest.{ext}"
        reference = self.reference(d, ext)
        self.poller.down.set()
        cut: Cut = cut_download(url, self.server, self.rng.randrange(16_384,
                                                                    len(reference) // 4))
        if cut.error is None:  # everything was on its way before the kill
            expect(cut.body == reference, f"{url}: a complete transfer differs")
            self.tally["download finished before the kill"] += 1
        else:
            expect(len(cut.body) < len(reference) and reference.startswith(cut.body),
                   f"{url}: the cut transfer is not a prefix of the file")
            if cut.framing == "length":
                expect(int(cut.headers["content-length"]) == len(reference), url)
            self.tally[f"download cut: {cut.framing}"] += 1
        self.restart()
        again = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=300)
        expect(again.status_code == 200 and again.content == reference,
               f"{url}: the download after the restart differs")
        self.tally["download restart"] += 1
        self.tally["server SIGKILL"] += 1
        self.tally["server SIGKILL during a download"] += 1
        self.verify()

    # -- checks ----------------------------------------------------------------------------------

    def verify(self) -> None:
        """Store, server and `hub check` agree with what is known to be committed."""
        store = self.store()
        for d in self.datasets.values():
            current = store.current(d.name)
            assert current is not None
            expect((current.version, current.rows) == d.committed[-1],
                   f"{d.name}: v{current.version} ({current.rows} rows) is current, "
                   f"v{d.committed[-1][0]} ({d.committed[-1][1]} rows) was the last good one")
            body = httpx.get(f"{self.server.url}/api/datasets/{d.name}", timeout=60).json()
            expect((body["version"], body["rows"], body["checksum"]) ==
                   (current.version, current.rows, current.checksum), f"{d.name} served: {body}")
            self.checksums[(d.name, current.version)] = current.checksum
            self.tally["server answers checked"] += 1
        checked = self.cli("check")
        expect(checked.exit_code == 0, f"hub check: {checked.output}")
        self.tally["hub check"] += 1
        self.tally["versions verified"] += sum(
            not v.purged for d in self.datasets for v in store.versions(d))
        answers, errors = self.poller.take()
        expect(not errors, f"readers: {errors[:5]}")
        for name, version, rows, checksum in answers:
            expect((version, rows) in self.datasets[name].committed and checksum ==
                   self.checksums.get((name, version), checksum), f"a reader saw {name} "
                   f"v{version} with {rows} rows (checksum {checksum[:12]}), never committed")
        self.tally["reader answers checked"] += len(answers)

    # -- helpers ---------------------------------------------------------------------------------

    def store(self) -> Store:
        return Store(self.store_dir)

    def cli(self, *args: str):
        from hub.cli import app

        return CliRunner().invoke(app, [*args, "--root", str(self.root),
                                        "--store", str(self.store_dir)],
                                  env={"COLUMNS": "400"})

    def hub(self, *args: str, **env: str):
        return hub_process(self.root, self.store_dir, *args, **{"COLUMNS": "300", **env})

    def new_source(self, d: project.Dataset, rows: int | None = None) -> int:
        rows = rows or self.rng.randrange(d.rows // 2, d.rows * 3 // 2)
        project.source(self.root, d, rows, self.rng.randrange(2**31))
        return rows

    def ingest(self, d: project.Dataset, rows: int) -> None:
        """An ordinary run on the current source file (written before): it must commit."""
        started = time.monotonic()
        run = self.hub("ingest", d.name)
        text = output(run)
        expect(run.returncode == 0 and "committed" in text, f"ingest {d.name}: {text}")
        if d.name == "punkte":
            seconds = (time.monotonic() - started) * 60_000 / rows
            self.ingest_seconds = 0.5 * self.ingest_seconds + 0.5 * seconds
        self.committed(d, rows)
        expect(not list((self.store_dir / "staging").glob(f"{d.name}.*")),
               f"{d.name}: a staging folder is left after a good run")

    def committed(self, d: project.Dataset, rows: int) -> None:
        current = self.store().current(d.name)
        assert current is not None
        expect(current.rows == rows and (not d.committed or current.version > max(
            v for v, _ in d.committed)), f"{d.name}: v{current.version} with {current.rows} "
               f"rows after a run of {rows} rows")
        d.committed.append((current.version, current.rows))
        self.tally["versions committed"] += 1

    def export_built(self, name: str, fmt: str) -> bool:
        current = self.store().current(name)
        assert current is not None
        return any(not p.name.startswith(".") for p in
                   (current.path / "exports").glob(f"*.{fmt}"))

    def restart(self, **env: str) -> None:
        self.poller.down.set()
        self.server.kill()
        self.server.start(**env)
        self.poller.down.clear()

    def background(self, path: str) -> threading.Thread:
        """GET `path` in a thread of its own, its failure expected (the server is killed)."""
        def fetch() -> None:
            try:
                with httpx.stream("GET", self.server.url + path, timeout=300) as response:
                    for _ in response.iter_raw():
                        pass
            except httpx.TransportError:
                pass

        thread = threading.Thread(target=fetch, daemon=True)
        thread.start()
        return thread

    def reference(self, d: project.Dataset, ext: str) -> bytes:
        """The whole download of `d`'s current version in format `ext` (kept per version)."""
        key = (d.name, d.committed[-1][0], ext)
        if key not in self.references:
            self.references.clear()
            response = httpx.get(f"{self.server.url}/downloads/{d.name}/latest.{ext}",
                                 headers={"Accept-Encoding": "identity"}, timeout=300)
            expect(response.status_code == 200, f"{d.name}.{ext}: {response.status_code}")
            self.references[key] = response.content
        return self.references[key]
