"""The hot reads of the database seam (hub/db): what every data request and every token
check asks the store, through `hub.db` and, as the baseline, as the hub asked before the seam
(the same SQL on a plain sqlite3 connection kept per thread).

`db-reads`  microseconds per call of `Store.current` (the current version), `Store.dataset`
            and `Accounts.authenticate` (a token check) on a store with 20 datasets of 5
            versions each and 50 users with a token each; the same objects come back on both
            sides (the rows go through the hub's own `Version`/`Dataset`/`User` building).
            Target: the seam costs at most 1.25× the plain connection.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench._harness import Result, judge, measure_calm, median

CASES = {"db-reads": "Store.current, Store.dataset, token check per call: hub.db vs plain "
                     "sqlite3 (before the seam)"}
LARGE: frozenset[str] = frozenset()
CALLS = 20_000
LOOKUPS = ("current", "dataset", "authenticate")
LIMIT = 1.25

# The SQL of the hub before the seam (commit 8881f52), for the baseline.
BEFORE = {
    "current": "SELECT v.* FROM versions v JOIN datasets d ON d.name = v.dataset "
               "AND d.current_version = v.version WHERE d.name = ?",
    "dataset": "SELECT * FROM datasets WHERE name = ?",
    "authenticate": "SELECT t.id, t.last_used, t.expires, t.revoked, u.* FROM tokens t "
                    "JOIN users u ON u.name = t.user WHERE t.hash = ?",
}


def _store(folder: Any) -> tuple[Any, Any, list[str]]:
    """A store with 20 datasets (5 versions each) and 50 users with a token each."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from hub.accounts import Accounts
    from hub.catalog.vocab import Vocabularies
    from hub.store.versions import Draft, Store, now

    root = Path(__file__).resolve().parents[1]
    store = Store(Path(folder) / "store")
    meta = {"title": "Bench", "organization": "hauptamt", "access": "public",
            "update_frequency": "daily", "pipeline": "bench.yaml"}
    for i in range(20):
        for _ in range(5):
            with store.writing(f"ds{i:02}") as staging:
                pq.write_table(pa.table({"n": [1, 2, 3]}), staging / "data.parquet")
                draft = Draft(3, 0, {"fields": [{"name": "n", "type": "integer"}]},
                              [13.0, 51.3, 13.9, 51.9], ["Point"], ["EPSG:25833"], "f",
                              {"etag": "x"}, "p", now(), "bench", {"rows": 3})
                store.commit(staging, f"ds{i:02}", meta, draft)
    accounts = Accounts(store, Vocabularies(root / "catalog"))
    secrets = []
    for i in range(50):
        accounts.add_user(f"user{i:02}", "hauptamt")
        secrets.append(accounts.create_token(f"user{i:02}")[1])
    for secret in secrets:
        accounts.authenticate(secret)  # last_used recorded: later checks only read
    return store, accounts, secrets


def child(side: str) -> dict[str, Any]:
    """Microseconds per call of each lookup (best of 5 rounds of CALLS calls)."""
    import sqlite3
    import tempfile

    from hub.accounts import User, _digest
    from hub.store.versions import Dataset

    with tempfile.TemporaryDirectory() as folder:
        store, accounts, secrets = _store(folder)
        names = [f"ds{i:02}" for i in range(20)]
        if side == "hub":
            calls = {"current": store.current, "dataset": store.dataset,
                     "authenticate": accounts.authenticate}
        else:
            db = sqlite3.connect(store.root / "hub.sqlite", timeout=30, isolation_level=None,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")

            def current(name: str) -> Any:
                row = db.execute(BEFORE["current"], (name,)).fetchone()
                return store._version(dict(row)) if row else None

            def dataset(name: str) -> Any:
                return Dataset(**dict(db.execute(BEFORE["dataset"], (name,)).fetchone()))

            def authenticate(secret: str) -> Any:
                row = db.execute(BEFORE["authenticate"], (_digest(secret),)).fetchone()
                return User(**{k: row[k] for k in User.__dataclass_fields__})

            calls = {"current": current, "dataset": dataset, "authenticate": authenticate}
        assert calls["current"]("ds00") == store.current("ds00")
        # (before the seam, `u.*` beside `t.id` gave the user the token's id: names compare)
        assert calls["authenticate"](secrets[0]).name == accounts.authenticate(secrets[0]).name
        micros, total = {}, 0.0
        for lookup in LOOKUPS:
            keys = secrets if lookup == "authenticate" else names
            call, best = calls[lookup], float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for i in range(CALLS):
                    call(keys[i % len(keys)])
                elapsed = time.perf_counter() - started
                best, total = min(best, elapsed), total + elapsed
            micros[lookup] = best / CALLS * 1e6
    return {"seconds": total, "micros": micros}


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    hub, base = [], []
    for _ in range(args.repeat):  # the sides alternate
        hub.append(measure_calm("bench.db:child", 600, side="hub"))
        base.append(measure_calm("bench.db:child", 600, side="sqlite3"))
    results = []
    for lookup in LOOKUPS:
        h = median([r["micros"][lookup] for r in hub])
        b = median([r["micros"][lookup] for r in base])
        target, ok = judge((f"hub/baseline ≤ {LIMIT}", h / b <= LIMIT))
        results.append(Result(
            "db-reads", f"{lookup} per call", "µs", h, b, h / b, "hub/baseline", target, ok,
            hub_runs=[r["micros"][lookup] for r in hub],
            baseline_runs=[r["micros"][lookup] for r in base],
            note="baseline: the same SQL on a plain sqlite3 connection (before hub.db)",
            details={"noisy": [r.get("noisy") for r in hub + base]}))
    return results
