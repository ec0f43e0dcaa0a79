"""The demo's accounts: a demo admin and a demo editor, each with a fresh password, printed
with how to sign in (run by `make demo` before the server and the worker start).

    python pipelines/demo_accounts.py [--root DIR] [--url http://127.0.0.1:8000]

The users are made once (`demo-admin` of the district, `demo-redaktion` of the Sozialamt);
each run gives them new random passwords, so a demo left running elsewhere keeps no old one.
The admin's second factor is not required in the demo unless HUB_TOTP_ROLES names `admin`
(then the first sign-in asks to set it up with an authenticator app).
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings
from hub.errors import HubError

DEMO_USERS = {"demo-admin": ("landkreis-elbe-elster", "admin", "Demo-Administration"),
              "demo-redaktion": ("sozialamt", "editor", "Demo-Redaktion Sozialamt")}


def set_up(root: Path | None = None) -> dict[str, str]:
    """Make the demo users (if missing) and give them new passwords: user -> password."""
    settings = load_settings(root)
    catalog, vocab, _ = open_catalog(settings)
    accounts = Accounts(catalog.store, vocab, settings.totp_roles)
    passwords = {}
    for name, (organization, role, fullname) in DEMO_USERS.items():
        try:
            accounts.user(name)
        except HubError:
            accounts.add_user(name, organization, role, fullname=fullname)
        passwords[name] = secrets.token_urlsafe(12)
        accounts.set_password(name, passwords[name])
    return passwords


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="project folder (default: .)")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="where the hub runs")
    args = parser.parse_args()
    passwords = set_up(args.root)
    totp = "admin" in load_settings(args.root).totp_roles
    print(f"\nDemo-Anmeldung: {args.url}/anmelden")
    for name, (organization, role, _) in DEMO_USERS.items():
        print(f"  {role:<7} {name:<15} Passwort: {passwords[name]}   ({organization})")
    print("  Zweiter Faktor (TOTP): " + (
        "für Admins Pflicht (HUB_TOTP_ROLES); die erste Anmeldung richtet ihn ein." if totp
        else "in der Demo nicht verlangt; einrichten unter /konto, Pflicht mit "
             "HUB_TOTP_ROLES=admin."))
    print("  Aufträge und Aufgaben: /arbeitsbereich/aufgaben (hub worker läuft mit)\n")


if __name__ == "__main__":
    main()
