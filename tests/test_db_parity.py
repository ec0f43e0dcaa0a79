"""The version store and the accounts on both backends of hub.db: SQLite (the single-machine
default) and PostgreSQL (a real server, deploy/postgres.py). Every test runs on each and
expects the same answers."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from hub.accounts import AccountError, Accounts
from hub.catalog.vocab import Vocabularies
from hub.db import Database
from hub.errors import StoreError
from hub.store.integrity import CorruptVersion
from hub.store.versions import Draft, Store, Version, now

META = {"title": "Pflegeeinrichtungen", "organization": "sozialamt", "access": "public",
        "update_frequency": "monthly", "pipeline": "pipelines/pflege.yaml",
        "attribution": "© Landkreis"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return Database.for_store(tmp_path / "store")
    return Database(request.getfixturevalue("postgres").database())


@pytest.fixture
def store(database: Database, tmp_path: Path) -> Store:
    return Store(tmp_path / "store", database=database)


@pytest.fixture
def accounts(store: Store) -> Accounts:
    return Accounts(store, Vocabularies(REPO / "catalog"))


def commit(store: Store, name: str, rows: int = 3, meta: dict[str, str] | None = None,
           who: str = "pytest") -> Version:
    """A run of `name` that stages a small Parquet file and commits it."""
    with store.writing(name) as staging:
        pq.write_table(pa.table({"n": list(range(rows))}), staging / "data.parquet")
        draft = Draft(rows=rows, quarantined=1, schema={"fields": [{"name": "n"}]},
                      bbox=[13.05, 51.368, 13.89, 51.884], geometry_types=["Point"],
                      source_crs=["EPSG:25833"], source_fingerprint=f"sha256:{rows}",
                      source_state={"etag": "W/1", "size": rows}, pipeline_hash="p1",
                      started=now(), run_by=who, report={"rows": rows, "note": "Straße"})
        return store.commit(staging, name, meta or META, draft)


# -- the version store -------------------------------------------------------------------------

def test_a_commit_becomes_current_with_every_fact_of_the_run(store: Store) -> None:
    assert store.current("pflege") is None
    first = commit(store, "pflege", rows=3)
    second = commit(store, "pflege", rows=5, meta={**META, "title": "Pflege (neu)"})
    assert (first.version, second.version) == (1, 2)
    assert store.current("pflege") == second
    assert second.rows == 5 and second.quarantined == 1
    assert second.schema == {"fields": [{"name": "n"}]}
    assert second.bbox == [13.05, 51.368, 13.89, 51.884]
    assert (second.geometry_types, second.source_crs) == (["Point"], ["EPSG:25833"])
    assert second.source_state == {"etag": "W/1", "size": 5}
    assert second.report == {"rows": 5, "note": "Straße"}
    assert second.checksum == hashlib.sha256(second.data_file.read_bytes()).hexdigest()
    assert second.path == store.root / "data" / "pflege" / "v2" and not second.purged
    dataset = store.dataset("pflege")
    assert (dataset.title, dataset.current_version, dataset.attribution) == (
        "Pflege (neu)", 2, "© Landkreis")
    assert dataset.created == store.datasets()[0].created <= dataset.updated
    assert [v.version for v in store.versions("pflege")] == [2, 1]
    assert store.version("pflege", 1) == first


def test_history_lists_commits_rollbacks_and_runs_without_a_version(store: Store) -> None:
    commit(store, "pflege")
    commit(store, "pflege")
    store.log("pflege", "unchanged", "cron", "same source")
    store.log("pflege", "failed", "cron", "x" * 5000)
    store.rollback("pflege", 1, "anna")
    events = store.events("pflege")
    assert [(e["kind"], e["version"], e["who"]) for e in events] == [
        ("rollback", 1, "anna"), ("failed", None, "cron"), ("unchanged", None, "cron"),
        ("commit", 2, "pytest"), ("commit", 1, "pytest")]
    assert len(events[1]["detail"]) == 4000 and events[2]["detail"] == "same source"
    assert events[0]["id"] > events[1]["id"] > events[4]["id"]
    assert store.events("other") == []


def test_rollback_serves_an_earlier_version_and_keeps_the_later_ones(store: Store) -> None:
    commit(store, "pflege")
    commit(store, "pflege")
    assert store.rollback("pflege", 1, "anna").version == 1
    assert store.current("pflege").version == 1
    assert [v.version for v in store.versions("pflege")] == [2, 1]
    assert commit(store, "pflege").version == 3  # numbering goes on after the newest
    with pytest.raises(StoreError, match="has no version 9"):
        store.rollback("pflege", 9, "anna")


def test_retention_removes_old_files_never_the_current_version(store: Store) -> None:
    for _ in range(5):
        commit(store, "pflege")
    store.rollback("pflege", 2, "anna")
    assert store.apply_retention("pflege", keep=2) == [3, 1]
    assert [(v.version, v.purged, v.path.exists()) for v in store.versions("pflege")] == [
        (5, False, True), (4, False, True), (3, True, False), (2, False, True),
        (1, True, False)]
    assert [e["version"] for e in store.events("pflege") if e["kind"] == "purge"] == [1, 3]
    with pytest.raises(StoreError, match="removed by the retention policy"):
        store.rollback("pflege", 3, "anna")
    assert store.apply_retention("pflege", keep=2) == []
    with pytest.raises(StoreError, match="at least one"):
        store.apply_retention("pflege", keep=0)


def test_a_damaged_version_is_marked_broken_once_and_repaired(store: Store) -> None:
    commit(store, "pflege")
    good = commit(store, "pflege")
    store.ensure_sound(good)
    damaged = good.data_file.read_bytes()
    good.data_file.write_bytes(damaged[:-8] + b"garbage!")
    assert "checksum" in (store.check(good, "check") or "")
    assert store.check(store.version("pflege", 2), "check") is not None
    broken = store.version("pflege", 2)
    assert broken.broken and store.current("pflege").broken == broken.broken
    with pytest.raises(CorruptVersion):
        store.ensure_sound(broken)
    with pytest.raises(StoreError, match="is broken"):
        store.rollback("pflege", 2, "anna")
    good.data_file.write_bytes(damaged)
    assert store.check(broken, "check") is None
    assert store.version("pflege", 2).broken is None
    store.mark_sound("pflege", 2, "check")  # already sound: nothing recorded
    kinds = [e["kind"] for e in store.events("pflege")]
    assert kinds == ["repaired", "broken", "commit", "commit"]


def test_concurrent_commits_of_different_datasets_all_land(store: Store) -> None:
    names = [f"ds-{i}" for i in range(4)]
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            for _ in range(4):
                commit(store, name, who=name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [d.name for d in store.datasets()] == names
    for name in names:
        assert [v.version for v in store.versions(name)] == [4, 3, 2, 1]
        assert [e["version"] for e in store.events(name)] == [4, 3, 2, 1]
        assert store.current(name).run_by == name


def test_a_failed_commit_changes_nothing(store: Store) -> None:
    commit(store, "pflege")
    with pytest.raises(KeyError), store.writing("pflege") as staging:
        pq.write_table(pa.table({"n": [1]}), staging / "data.parquet")
        draft = Draft(1, 0, {}, None, [], [], "f", {}, "p", now(), "pytest", {})
        store.commit(staging, "pflege", {"title": "only a title"}, draft)
    assert store.current("pflege").version == 1
    assert [v.version for v in store.versions("pflege")] == [1]
    assert not store.version_dir("pflege", 2).exists()
    assert commit(store, "pflege").version == 2


def test_names_sort_alike_and_unknown_ones_are_errors(store: Store) -> None:
    names = ["b", "a_b", "a-b", "a.b", "ab", "A", "ä"]
    for name in names:
        commit(store, name)
    assert [d.name for d in store.datasets()] == sorted(names)  # byte-wise on both
    with pytest.raises(StoreError, match="unknown dataset 'nope'"):
        store.dataset("nope")
    with pytest.raises(StoreError, match="unknown dataset"):
        store.versions("nope")
    with pytest.raises(StoreError, match="has no version 7"):
        store.version("b", 7)
    assert store.current("nope") is None


# -- accounts ----------------------------------------------------------------------------------

def test_users_are_added_listed_and_refused_twice(accounts: Accounts) -> None:
    anna = accounts.add_user("a.schmidt", "sozialamt", "editor", "anna@example.org", "Anna")
    accounts.add_user("admin", "hauptamt", "admin")
    assert (anna.organization, anna.role, anna.state, anna.email) == (
        "sozialamt", "editor", "active", "anna@example.org")
    assert accounts.user(anna.id) == anna == accounts.user("a.schmidt")
    assert [u.name for u in accounts.users()] == ["a.schmidt", "admin"]
    with pytest.raises(AccountError, match="exists already"):
        accounts.add_user("a.schmidt", "hauptamt")
    with pytest.raises(AccountError, match="no user named 'nobody'"):
        accounts.user("nobody")
    with pytest.raises(AccountError, match="organisation 'nirgendwo' is unknown"):
        accounts.add_user("b.meier", "nirgendwo")
    with pytest.raises(AccountError, match="role 'chef'"):
        accounts.add_user("b.meier", "hauptamt", role="chef")


def test_a_token_authenticates_its_user_until_revoked(accounts: Accounts) -> None:
    accounts.add_user("a.schmidt", "sozialamt")
    token, secret = accounts.create_token("a.schmidt", "laptop", days=30)
    assert secret.startswith("hub_") and token.user == "a.schmidt" and token.usable(now())
    user = accounts.authenticate(secret)
    assert user == accounts.user("a.schmidt") and user.viewer.editor  # its id, not the token's
    assert accounts.token(token.id).last_used is not None
    for wrong in (secret + "x", "hub_" + "a" * 43, secret[4:], "hub_" + "x" * 300):
        assert accounts.authenticate(wrong) is None
    revoked = accounts.revoke(token.id)
    assert revoked.revoked is not None and accounts.authenticate(secret) is None
    assert accounts.revoke(token.id).revoked == revoked.revoked  # once
    with pytest.raises(AccountError, match="no token with id 'nope'"):
        accounts.token("nope")


def test_a_disabled_user_and_an_expired_token_are_refused(accounts: Accounts,
                                                          store: Store) -> None:
    accounts.add_user("a.schmidt", "sozialamt")
    accounts.add_user("b.meier", "hauptamt", "viewer")
    _, anna = accounts.create_token("a.schmidt")
    old, bernd = accounts.create_token("b.meier", days=None)
    assert accounts.token(old.id).expires is None
    accounts.set_state("a.schmidt", "disabled")
    assert accounts.authenticate(anna) is None
    with pytest.raises(AccountError, match="is disabled"):
        accounts.create_token("a.schmidt")
    assert accounts.user("a.schmidt").viewer.staff is False
    accounts.set_state("a.schmidt", "active")
    assert accounts.authenticate(anna) is not None
    from sqlalchemy import update

    from hub.db.schema import tokens
    with store.db.connection() as db:  # as if a year had passed
        db.execute(update(tokens).where(tokens.c.id == old.id)
                   .values(expires="2000-01-01T00:00:00.000Z"))
    assert accounts.authenticate(bernd) is None
    with pytest.raises(AccountError, match="at least one day"):
        accounts.create_token("b.meier", days=0)


def test_tokens_are_listed_per_user_in_the_order_made(accounts: Accounts) -> None:
    accounts.add_user("a.schmidt", "sozialamt")
    accounts.add_user("b.meier", "hauptamt")
    made: list[Any] = [accounts.create_token(u, f"t{i}")[0]
                       for i, u in enumerate(["a.schmidt", "b.meier", "a.schmidt"])]
    assert [t.id for t in accounts.tokens()] == [t.id for t in made]
    assert [t.name for t in accounts.tokens("a.schmidt")] == ["t0", "t2"]
    assert accounts.tokens("nobody") == []
