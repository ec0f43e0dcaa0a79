"""Linking identities of the district's OpenID Connect provider to users
(`Accounts.user_of_identity`), on SQLite and PostgreSQL: by a verified e-mail address once,
then by `sub`; everything else refused, nothing made."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from hub import audit
from hub.accounts import Accounts, IdentityRefused
from hub.catalog.vocab import Vocabularies
from hub.db import Database
from hub.store.versions import Store

ISSUER = "https://login.example-kreis.de/realms/verwaltung"


@pytest.fixture(params=["sqlite", "postgresql"])
def accounts(request: pytest.FixtureRequest, tmp_path: Path) -> Accounts:
    database = (Database.for_store(tmp_path / "store") if request.param == "sqlite"
                else Database(request.getfixturevalue("postgres").database()))
    found = Accounts(Store(tmp_path / "store", database=database), Vocabularies(REPO / "catalog"))
    found.add_user("a.schmidt", "sozialamt", "editor", "Anna.Schmidt@example.org")
    for twin in ("t.eins", "t.zwei"):
        found.add_user(twin, "sozialamt", "viewer", "team@example.org")
    return found


def test_linked_once_by_a_verified_address_then_by_sub(accounts: Accounts) -> None:
    user = accounts.user_of_identity(ISSUER, "sub-1", "anna.schmidt@example.org", True)
    assert user.name == "a.schmidt"
    assert accounts.identities_of("a.schmidt") == [(ISSUER, "sub-1")]
    assert accounts.user_of_identity(ISSUER, "sub-1", "", False).name == "a.schmidt"
    assert accounts.user_of_identity(ISSUER, "sub-1", "other@example.org").name == "a.schmidt"
    links = [e for e in audit.entries(accounts.db) if e.action == "user.identity_link"]
    assert len(links) == 1 and links[0].actor == "a.schmidt" and "sub-1" in links[0].after
    # a second identity with the same address does not take over the account
    with pytest.raises(IdentityRefused, match="linked to another identity") as refused:
        accounts.user_of_identity(ISSUER, "sub-2", "anna.schmidt@example.org", True)
    assert refused.value.reason == "unknown"
    # the same subject at another issuer is another identity
    with pytest.raises(IdentityRefused):
        accounts.user_of_identity("https://other.example", "sub-1", "x@example.org", True)


@pytest.mark.parametrize("email, verified, reason", [
    ("anna.schmidt@example.org", False, "unverified"),
    ("anna.schmidt@example.org", "true", "unverified"),  # a string is not the JSON true
    ("", True, "unknown"),
    ("fremd@example.org", True, "unknown"),
    ("team@example.org", True, "unknown"),  # two users: no guess
])
def test_anything_else_is_refused_and_links_nothing(accounts: Accounts, email: str,
                                                    verified: object, reason: str) -> None:
    with pytest.raises(IdentityRefused) as refused:
        accounts.user_of_identity(ISSUER, "sub-x", email, verified)  # type: ignore[arg-type]
    assert refused.value.reason == reason
    assert all(accounts.identities_of(u.name) == [] for u in accounts.users())
    assert len(accounts.users()) == 3  # no account made


def test_a_disabled_user_is_not_signed_in_by_a_linked_identity(accounts: Accounts) -> None:
    accounts.user_of_identity(ISSUER, "sub-1", "anna.schmidt@example.org", True)
    accounts.set_state("a.schmidt", "disabled")
    with pytest.raises(IdentityRefused, match="disabled"):
        accounts.user_of_identity(ISSUER, "sub-1")
