"""The demo's accounts (pipelines/demo_accounts.py, run by `make demo`): a demo admin and a
demo editor whose printed passwords sign in; a second run gives new ones."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, Project

from hub.accounts import Accounts
from hub.catalog import open_catalog


def test_the_demo_prints_an_admin_and_an_editor_whose_passwords_sign_in(
        ingest_project: Project) -> None:
    def run() -> dict[str, str]:
        done = subprocess.run(
            [sys.executable, str(REPO / "pipelines" / "demo_accounts.py"), "--root",
             str(ingest_project.root), "--url", "http://127.0.0.1:8123"],
            capture_output=True, text=True, check=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "HUB_TOTP_ROLES": ""})
        assert "Demo-Anmeldung: http://127.0.0.1:8123/anmelden" in done.stdout
        assert "HUB_TOTP_ROLES=admin" in done.stdout
        found = {}
        for line in done.stdout.splitlines():
            words = line.split()
            if "Passwort:" in words:
                found[words[1]] = words[words.index("Passwort:") + 1]
        return found

    first = run()
    assert set(first) == {"demo-admin", "demo-redaktion"}
    catalog, vocab, _ = open_catalog(ingest_project.settings())
    accounts = Accounts(catalog.store, vocab)
    admin = accounts.check_password("demo-admin", first["demo-admin"])
    editor = accounts.check_password("demo-redaktion", first["demo-redaktion"])
    assert admin is not None and (admin.role, admin.organization) == (
        "admin", "landkreis-elbe-elster")
    assert editor is not None and (editor.role, editor.organization) == ("editor", "sozialamt")
    second = run()  # the users stay, their passwords are new
    assert second["demo-admin"] != first["demo-admin"]
    assert accounts.check_password("demo-admin", first["demo-admin"]) is None
    assert accounts.check_password("demo-admin", second["demo-admin"]) is not None
