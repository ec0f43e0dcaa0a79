"""The audit trail (hub.audit) on both backends of hub.db: entries chained by their hashes,
appends serialised under concurrent writers, and every kind of tampering found and named —
also by `hub audit verify` on a store whose database was edited by hand."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyotp
import pytest
from conftest import REPO
from sqlalchemy import text

from bench._serve import HUB
from hub import audit
from hub.access import ADMIN, OPERATOR, Viewer
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.catalog.editing import Editing
from hub.catalog.vocab import Organization, Vocabularies
from hub.config import load_settings
from hub.db import Database
from hub.errors import Forbidden, HubError
from hub.store.versions import Draft, Store, now


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    db = (Database.for_store(tmp_path / "store") if request.param == "sqlite"
          else Database(request.getfixturevalue("postgres").database()))
    Store(tmp_path / "store", database=db)  # migrated
    return db


def fill(db: Database, n: int = 5) -> None:
    for i in range(1, n + 1):
        audit.record(db, actor="ann", action="record.update", subject=f"pflege-{i}",
                     before={"title": f"Alt {i}"}, after={"title": f"Neu {i}"})


def sql(db: Database, statement: str, **params: object) -> None:
    with db.write() as conn:
        conn.execute(text(statement), params)


def test_entries_are_chained_and_verify(database: Database) -> None:
    assert audit.verify(database) == audit.Verified(0, audit.GENESIS)
    fill(database, 3)
    audit.record(database, actor="cli", action="user.password", subject="ann",
                 before=None, after={"password": "geheim-geheim", "state": "active"})
    found = audit.entries(database)
    assert [e.id for e in found] == [4, 3, 2, 1]  # newest first
    first = found[-1]
    assert (first.actor, first.action, first.subject) == ("ann", "record.update", "pflege-1")
    assert (first.before_value, first.after_value) == ({"title": "Alt 1"}, {"title": "Neu 1"})
    assert first.prev_hash == audit.GENESIS
    assert [e.prev_hash for e in found[:-1]] == [e.hash for e in found[1:]]
    assert found[0].after_value == {"password": "***", "state": "active"}  # never a secret
    assert "geheim" not in found[0].after
    assert audit.verify(database) == audit.Verified(4, found[0].hash)


def test_an_entry_stands_or_falls_with_the_callers_transaction(database: Database) -> None:
    with pytest.raises(RuntimeError), database.write() as conn:
        audit.record(database, actor="ann", action="record.delete", subject="weg",
                     connection=conn)
        raise RuntimeError("the change failed")
    with database.write():  # this thread's open transaction is joined without `connection`
        audit.record(database, actor="ann", action="record.create", subject="da")
    assert [e.subject for e in audit.entries(database)] == ["da"]
    assert audit.verify(database).entries == 1


def test_concurrent_writers_never_fork_the_chain(database: Database) -> None:
    def write(who: str) -> None:
        for i in range(15):
            audit.record(database, actor=who, action="record.update", subject=f"{who}-{i}")

    threads = [threading.Thread(target=write, args=(f"user{t}",)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert audit.verify(database).entries == 90
    assert audit.count(database) == 90


def test_an_edited_entry_is_named(database: Database) -> None:
    fill(database)
    sql(database, "UPDATE audit SET subject = 'anderes' WHERE id = 3")
    with pytest.raises(audit.Tampered, match="audit entry 3 was edited") as found:
        audit.verify(database)
    assert found.value.entry == 3


def test_an_edited_and_rehashed_entry_is_named_by_its_successor(database: Database) -> None:
    fill(database)
    entry = audit.entries(database, audit.Filter(subject="pflege-2"))[0]
    forged = audit.Entry(**{**entry.__dict__, "after": '{"title":"Gefälscht"}'})
    sql(database, "UPDATE audit SET after = :after, hash = :hash WHERE id = 2",
        after=forged.after, hash=audit.digest(forged.canonical()))
    with pytest.raises(audit.Tampered, match="audit entry 3 is not chained to entry 2: "
                       "entry 2 was replaced") as found:
        audit.verify(database)
    assert found.value.entry == 2


def test_a_deleted_entry_is_named(database: Database) -> None:
    fill(database)
    sql(database, "DELETE FROM audit WHERE id = 2")
    with pytest.raises(audit.Tampered, match="entries 2–2 were deleted"):
        audit.verify(database)
    sql(database, "UPDATE audit SET id = id - 1 WHERE id > 2")  # renumbered to hide the gap
    with pytest.raises(audit.Tampered, match="entry 2 is not chained to entry 1") as found:
        audit.verify(database)
    assert found.value.entry == 1


def test_an_inserted_entry_is_named(database: Database) -> None:
    fill(database, 3)
    second = audit.entries(database, audit.Filter(subject="pflege-2"))[0]
    sql(database, "UPDATE audit SET id = 4 WHERE id = 3")  # make room after entry 2
    # A well-formed entry, though it cannot take entry 2's link (taken by the moved entry).
    inserted = audit.Entry(3, second.at, "mallory", "user.role", "mallory", None,
                           '{"role":"admin"}', "f" * 64, "")
    sql(database, "INSERT INTO audit VALUES (3, :at, 'mallory', 'user.role', 'mallory', NULL, "
        ":after, :prev, :hash)", at=inserted.at, after=inserted.after, prev=inserted.prev_hash,
        hash=audit.digest(inserted.canonical()))
    with pytest.raises(audit.Tampered, match="audit entry 3 was inserted: entry 4 is chained "
                       "to entry 2") as found:
        audit.verify(database)
    assert found.value.entry == 3


def test_a_cut_off_tail_is_found_against_a_noted_head(database: Database) -> None:
    fill(database, 4)
    head = audit.verify(database).head
    sql(database, "DELETE FROM audit WHERE id = 4")
    assert audit.verify(database).entries == 3  # the chain alone cannot tell
    with pytest.raises(audit.Tampered, match=f"no audit entry has the hash {head}"):
        audit.verify(database, head)


def test_filters_and_csv(database: Database) -> None:
    fill(database, 3)
    audit.record(database, actor="cli", action="user.role", subject="ann",
                 before={"role": "editor"}, after={"role": "admin"})
    assert [e.subject for e in audit.entries(database, audit.Filter(actor="cli"))] == ["ann"]
    assert audit.count(database, audit.Filter(action="record.")) == 3
    assert audit.count(database, audit.Filter(action="record")) == 0
    assert audit.count(database, audit.Filter(subject="flege-")) == 3
    assert audit.count(database, audit.Filter(subject="%")) == 0  # no wildcard
    today = audit.entries(database)[0].at[:10]
    assert audit.count(database, audit.Filter(since=today, until=today)) == 4
    assert audit.count(database, audit.Filter(until="2000-01-01")) == 0
    assert [e.id for e in audit.entries(database, limit=2, offset=1)] == [3, 2]
    assert audit.actions(database) == ["record.update", "user.role"]
    rows = list(csv.DictReader(io.StringIO("".join(audit.csv_lines(database)))))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[3]["before"] == '{"role":"editor"}' and rows[3]["hash"]
    with pytest.raises(HubError, match=r"since '1\.12\.2026': expected a day as YYYY-MM-DD"):
        audit.Filter(since="1.12.2026")


def test_hub_audit_verify_names_an_entry_edited_in_the_database(tmp_path: Path) -> None:
    store = tmp_path / "store"
    db = Store(store).db
    fill(db, 4)
    db.close()

    def hub(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", HUB, "audit", *args, "--root",
                               str(tmp_path), "--store", str(store)],
                              capture_output=True, text=True, timeout=120)

    intact = hub("verify")
    assert intact.returncode == 0, intact.stderr
    assert "The audit trail is intact: 4 entries" in intact.stdout
    exported = hub("export", "--csv", "--action", "record.update", "--since", "2000-01-01")
    assert exported.returncode == 0, exported.stderr
    assert len(list(csv.DictReader(io.StringIO(exported.stdout)))) == 4
    with sqlite3.connect(store / "hub.sqlite") as conn:
        conn.execute("""UPDATE audit SET actor = 'niemand' WHERE id = 2""")
    broken = hub("verify")
    assert broken.returncode == 1
    assert "audit entry 2 was edited" in broken.stderr
    assert "pflege-2" in broken.stderr
    bad = hub("export", "--csv", "--since", "gestern")
    assert bad.returncode == 1 and "since 'gestern'" in bad.stderr


# -- what the core functions record -------------------------------------------------------------

def test_account_changes_are_recorded_without_secrets(database: Database,
                                                      tmp_path: Path) -> None:
    accounts = Accounts(Store(tmp_path / "store", database=database),
                        Vocabularies(REPO / "catalog"))
    accounts.add_user("mia", "sozialamt", "editor", email="mia@example.org", by="ann")
    accounts.set_password("mia", "ein sehr geheimes Passwort", by="ann")
    accounts.set_role("mia", "publisher", by="ann")
    accounts.set_role("mia", "publisher", by="ann")  # no change: nothing recorded
    token, secret = accounts.create_token("mia", "skript")
    accounts.revoke(token.id, by="cli")
    enrolment = accounts.begin_totp("mia")
    accounts.confirm_totp("mia", pyotp.TOTP(enrolment.secret).now())
    accounts.reset_totp("mia", by="ann")
    accounts.set_state("mia", "disabled")
    found = [(e.actor, e.action, e.subject, e.before_value, e.after_value)
             for e in reversed(audit.entries(database))]
    assert found == [
        ("ann", "user.add", "mia", None, {"organization": "sozialamt", "role": "editor",
                                          "email": "mia@example.org", "fullname": ""}),
        ("ann", "user.password", "mia", None, None),
        ("ann", "user.role", "mia", {"role": "editor"}, {"role": "publisher"}),
        ("mia", "token.create", "mia", None, {"id": token.id, "name": "skript",
                                              "expires": token.expires}),
        ("cli", "token.revoke", "mia", {"id": token.id, "revoked": None},
         {"id": token.id, "revoked": accounts.token(token.id).revoked}),
        ("mia", "user.second_factor", "mia", {"second_factor": False},
         {"second_factor": True}),
        ("ann", "user.second_factor_reset", "mia", {"second_factor": True},
         {"second_factor": False}),
        ("cli", "user.state", "mia", {"state": "active"}, {"state": "disabled"}),
    ]
    trail = "".join(audit.csv_lines(database))
    for secret_text in (secret, secret[4:], "geheimes", enrolment.secret):
        assert secret_text not in trail
    assert audit.verify(database).entries == 8


def test_version_commits_and_rollbacks_are_recorded(database: Database, tmp_path: Path) -> None:
    store = Store(tmp_path / "store", database=database)
    meta = {"title": "Pflege", "organization": "sozialamt", "access": "internal",
            "update_frequency": "monthly", "pipeline": "pipelines/pflege.yaml"}
    for rows in (3, 5):
        with store.writing("pflege") as staging:
            pq.write_table(pa.table({"n": list(range(rows))}), staging / "data.parquet")
            store.commit(staging, "pflege", meta, Draft(
                rows=rows, quarantined=0, schema={}, bbox=None, geometry_types=[],
                source_crs=[], source_fingerprint="f", source_state={}, pipeline_hash="p",
                started=now(), run_by="sam", report={}))
    store.rollback("pflege", 1, who="cli")
    found = [(e.actor, e.action, e.subject, e.before_value, e.after_value)
             for e in reversed(audit.entries(database))]
    assert [f[:3] for f in found] == [("sam", "version.commit", "pflege")] * 2 + [
        ("cli", "version.rollback", "pflege")]
    assert found[1][3] == {"version": 1}
    assert {k: found[1][4][k] for k in ("version", "rows", "pipeline")} == {
        "version": 2, "rows": 5, "pipeline": "pipelines/pflege.yaml"}
    assert (found[2][3], found[2][4]) == ({"version": 2}, {"version": 1})


def test_catalog_writes_are_recorded_with_what_changed(tmp_path: Path) -> None:
    shutil.copytree(REPO / "catalog", tmp_path / "catalog")
    catalog, vocab, _ = open_catalog(load_settings(tmp_path, tmp_path / "store"))
    db = catalog.store.db
    sam = Editing(catalog, vocab, Viewer.of_role("editor", "kataster-vermessung", "sam"))
    draft = {"name": "radwege", "title": "Radwege", "description": "Alle Radwege.",
             "publisher": "kataster-vermessung", "license": "dl-by-de/2.0",
             "themes": ["TRAN"], "frequency": "ANNUAL", "access": "internal"}
    created = sam.create(draft)
    changed = sam.patch(created, {"title": "Radwege im Landkreis"}, created.revision)
    sam.patch(changed, {}, changed.revision)  # unchanged: nothing recorded
    sam.delete(catalog.get("radwege", ADMIN))
    Editing(catalog, vocab, OPERATOR).add_organization(Organization(
        id="heimatverein", name="Heimatverein Doberlug", kind="external"))
    with pytest.raises(Forbidden):  # refused: nothing recorded
        sam.create({**draft, "name": "fremd", "publisher": "sozialamt"})
    found = [(e.actor, e.action, e.subject, e.before_value, e.after_value)
             for e in reversed(audit.entries(db))]
    assert [f[:3] for f in found] == [
        ("sam", "record.create", "radwege"), ("sam", "record.update", "radwege"),
        ("sam", "record.delete", "radwege"), ("cli", "organization.create", "heimatverein")]
    assert found[0][3] is None and found[0][4]["access"] == "internal"  # a hidden one too
    assert (found[1][3], found[1][4]) == ({"title": "Radwege"},
                                         {"title": "Radwege im Landkreis"})
    assert (found[2][3], found[2][4]) == ({"state": "active"}, {"state": "deleted"})
    assert found[3][4]["name"] == "Heimatverein Doberlug"
    assert audit.verify(db).entries == 4
