"""Accounts for sign-in (hub/accounts.py): Argon2 passwords, the publisher role, TOTP with
replay protection, recovery codes, TOTP per role — on SQLite and on a real PostgreSQL — and
`hub user passwd/role/reset-totp`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pyotp
import pytest
from conftest import REPO, add_catalog
from typer.testing import CliRunner

from hub.access import ANONYMOUS, Viewer
from hub.accounts import AccountError, Accounts
from hub.catalog.vocab import Vocabularies
from hub.cli import app
from hub.config import load_settings
from hub.db import Database
from hub.db.schema import recovery_codes, users
from hub.errors import PipelineError
from hub.store.versions import Store

PASSWORD = "Korrekt Pferd Batterie"
T0 = 1_800_000_000.0  # a fixed moment, so tests choose the time step


@pytest.fixture(params=["sqlite", "postgresql"])
def accounts(request: pytest.FixtureRequest, tmp_path: Path) -> Accounts:
    database = (Database.for_store(tmp_path / "store") if request.param == "sqlite"
                else Database(request.getfixturevalue("postgres").database()))
    store = Store(tmp_path / "store", database=database)
    found = Accounts(store, Vocabularies(REPO / "catalog"), frozenset({"admin", "publisher"}))
    found.add_user("a.schmidt", "sozialamt", "editor", "anna@example.org")
    return found


def enrolled(accounts: Accounts, name: str = "a.schmidt") -> tuple[pyotp.TOTP, list[str]]:
    pending = accounts.begin_totp(name)
    otp = pyotp.TOTP(pending.secret)
    return otp, accounts.confirm_totp(name, otp.at(T0), at=T0)


def test_passwords_are_argon2_hashes_and_checked(accounts: Accounts) -> None:
    assert accounts.check_password("a.schmidt", PASSWORD) is None  # none set: no sign-in
    accounts.set_password("a.schmidt", PASSWORD)
    with accounts.db.connection() as db:
        stored = db.execute(users.select().where(users.c.name == "a.schmidt")).one().password
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.check_password("a.schmidt", PASSWORD) == accounts.user("a.schmidt")
    for wrong in ("", PASSWORD + " ", PASSWORD.upper(), "x" * 5000):
        assert accounts.check_password("a.schmidt", wrong) is None
    assert accounts.check_password("nobody", PASSWORD) is None  # the same answer as wrong
    accounts.set_state("a.schmidt", "disabled")
    assert accounts.check_password("a.schmidt", PASSWORD) is None
    for bad, reason in (("kurz", "too short"), ("a.schmidt", "too short"),
                        ("anna@example.org", "e-mail"), (" " + PASSWORD, "space"),
                        ("x" * 2000, "too long")):
        with pytest.raises(AccountError, match=reason):
            accounts.set_password("a.schmidt", bad)


def test_the_publisher_role_and_what_each_role_may_do(accounts: Accounts) -> None:
    accounts.add_user("p.kunze", "sozialamt", "publisher")
    publisher = accounts.user("p.kunze").viewer
    editor = accounts.user("a.schmidt").viewer
    assert publisher.may_edit("sozialamt") and publisher.may_publish("sozialamt")
    assert not publisher.may_publish("umweltamt") and not publisher.may_edit("umweltamt")
    assert editor.may_edit("sozialamt") and not editor.may_publish("sozialamt")
    accounts.add_user("v.lehmann", "sozialamt", "viewer")
    viewer = accounts.user("v.lehmann").viewer
    assert viewer.staff and not viewer.may_edit("sozialamt") and not viewer.may_publish("")
    assert accounts.set_role("v.lehmann", "admin").viewer.may_publish("umweltamt")
    with pytest.raises(AccountError, match="role 'chef'"):
        accounts.set_role("v.lehmann", "chef")
    assert Viewer.of_role("chef", "sozialamt", "x") == ANONYMOUS  # unknown role: closed
    assert accounts.totp_required(accounts.user("p.kunze"))
    assert not accounts.totp_required(accounts.user("a.schmidt"))


def test_totp_is_enrolled_by_a_code_and_a_code_counts_once(accounts: Accounts) -> None:
    pending = accounts.begin_totp("a.schmidt")
    assert not accounts.totp_enabled("a.schmidt")
    assert pending.uri.startswith("otpauth://totp/") and pending.secret in pending.uri
    svg = ET.fromstring(pending.qr_svg)
    assert svg.tag.endswith("svg") and "http" not in pending.qr_svg.replace(
        "http://www.w3.org/2000/svg", "")  # drawn here, nothing fetched
    assert accounts.pending_totp("a.schmidt") == pending
    with pytest.raises(AccountError, match="does not match"):
        accounts.confirm_totp("a.schmidt", "000000" if pyotp.TOTP(pending.secret).at(T0)
                              != "000000" else "111111", at=T0)
    otp = pyotp.TOTP(pending.secret)
    codes = accounts.confirm_totp("a.schmidt", otp.at(T0), at=T0)
    assert accounts.totp_enabled("a.schmidt") and accounts.pending_totp("a.schmidt") is None
    assert len(codes) == 10 == len(set(codes)) == accounts.recovery_codes_left("a.schmidt")
    # the enrolment's code was used: it and earlier ones are refused, later ones count once
    assert not accounts.check_second_factor("a.schmidt", otp.at(T0), at=T0)
    assert not accounts.check_second_factor("a.schmidt", otp.at(T0 - 30), at=T0)
    assert accounts.check_second_factor("a.schmidt", otp.at(T0 + 30), at=T0 + 30)
    assert not accounts.check_second_factor("a.schmidt", otp.at(T0 + 30), at=T0 + 31)  # replay
    assert accounts.check_second_factor("a.schmidt", otp.at(T0 + 60), at=T0 + 75)  # drift
    assert not accounts.check_second_factor("a.schmidt", otp.at(T0 + 300), at=T0 + 90)  # far
    for junk in ("", "12345", "abcdef", "1234567", "١٢٣٤٥٦"):
        assert not accounts.check_second_factor("a.schmidt", junk, at=T0 + 120)
    assert not accounts.check_second_factor("nobody", otp.at(T0 + 120), at=T0 + 120)


def test_recovery_codes_are_hashed_and_work_once(accounts: Accounts) -> None:
    _, codes = enrolled(accounts)
    with accounts.db.connection() as db:
        stored = [r.hash for r in db.execute(recovery_codes.select()).all()]
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert accounts.check_second_factor("a.schmidt", codes[0].lower().replace("-", " "))
    assert not accounts.check_second_factor("a.schmidt", codes[0])  # used up
    assert accounts.recovery_codes_left("a.schmidt") == 9
    fresh = accounts.new_recovery_codes("a.schmidt")
    assert not accounts.check_second_factor("a.schmidt", codes[1])  # replaced
    assert accounts.check_second_factor("a.schmidt", fresh[1])
    accounts.add_user("b.meier", "umweltamt")
    enrolled(accounts, "b.meier")
    assert not accounts.check_second_factor("b.meier", fresh[2])  # another user's code


def test_a_disabled_or_reset_user_has_no_second_factor_to_pass(accounts: Accounts) -> None:
    otp, codes = enrolled(accounts)
    accounts.set_state("a.schmidt", "disabled")
    assert not accounts.check_second_factor("a.schmidt", otp.at(T0 + 30), at=T0 + 30)
    assert not accounts.check_second_factor("a.schmidt", codes[0])
    accounts.set_state("a.schmidt", "active")
    accounts.reset_totp("a.schmidt")
    assert not accounts.totp_enabled("a.schmidt") and accounts.recovery_codes_left(
        "a.schmidt") == 0
    assert not accounts.check_second_factor("a.schmidt", otp.at(T0 + 60), at=T0 + 60)


def test_totp_roles_come_from_the_environment(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TOTP_ROLES", "admin, publisher")
    assert load_settings(tmp_path).totp_roles == {"admin", "publisher"}
    monkeypatch.setenv("HUB_TOTP_ROLES", "admin,boss")
    with pytest.raises(PipelineError, match=r"HUB_TOTP_ROLES: unknown role.*boss"):
        load_settings(tmp_path)


def test_the_cli_resets_passwords_roles_and_second_factors(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    add_catalog(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HUB_ROOT", raising=False)
    monkeypatch.delenv("HUB_STORE", raising=False)
    runner = CliRunner()

    def hub(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(app, list(args), input=stdin, env={"COLUMNS": "300"})
        return f"{result.exit_code}: {result.output}"

    assert hub("user", "add", "p.kunze", "--org", "sozialamt", "--role", "publisher"
               ).startswith("0: Added p.kunze (publisher of sozialamt)")
    assert hub("user", "passwd", "p.kunze", stdin=PASSWORD + "\n").startswith(
        "0: The password of p.kunze is set.")
    assert "too short" in hub("user", "passwd", "p.kunze", stdin="kurz\n")
    assert hub("user", "passwd", "nobody", stdin=PASSWORD + "\n").startswith("1:")
    settings = load_settings(tmp_path)
    from hub.catalog import open_catalog

    catalog, vocab, _ = open_catalog(settings)
    accounts = Accounts(catalog.store, vocab)
    assert accounts.check_password("p.kunze", PASSWORD) == accounts.user("p.kunze")
    enrolled(accounts, "p.kunze")
    assert hub("user", "role", "p.kunze", "viewer").startswith("0: p.kunze is viewer")
    assert "must be one of" in hub("user", "role", "p.kunze", "chef")
    assert hub("user", "reset-totp", "p.kunze").startswith("0: The second factor of p.kunze")
    assert not accounts.totp_enabled("p.kunze")
