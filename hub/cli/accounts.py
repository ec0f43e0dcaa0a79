"""`hub user` and `hub token`: the people who write through the API, and their tokens."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hub.cli.common import RootOpt, StoreOpt, console, escape, fail, new_table, settings_for
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.accounts import Accounts

users = typer.Typer(help="Users: organisation and role (viewer, editor, publisher, admin), "
                    "password and second factor.",
                    no_args_is_help=True)
tokens = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)


def _accounts(root: Path | None, store: Path | None) -> Accounts:
    from hub.accounts import Accounts
    from hub.catalog import open_catalog

    try:
        settings = settings_for(root, store)
        catalog, vocab, _ = open_catalog(settings)
        return Accounts(catalog.store, vocab, settings.totp_roles)
    except HubError as exc:
        fail(str(exc))


@users.command("add")
def user_add(name: Annotated[str, typer.Argument(help="Login name, e.g. m.schulze")],
             org: Annotated[str, typer.Option("--org", help="Organisation id or name")],
             role: Annotated[str, typer.Option(  # checked by Accounts.add_user (ROLES)
                 help="One of viewer, editor, publisher, admin")] = "editor",
             email: Annotated[str, typer.Option(help="E-mail address")] = "",
             fullname: Annotated[str, typer.Option(help="Full name")] = "",
             root: RootOpt = None, store: StoreOpt = None) -> None:
    """Add a user to an organisation."""
    try:
        user = _accounts(root, store).add_user(name, org, role, email, fullname)
    except HubError as exc:
        fail(str(exc))
    console.print(f"Added {escape(user.name)} ({user.role} of {escape(user.organization)}). "
                  f"Next: hub token create {escape(user.name)}")


@users.command("list")
def user_list(root: RootOpt = None, store: StoreOpt = None) -> None:
    """List users."""
    table = new_table("user", "name", "organisation", "role", "state", "created")
    for u in _accounts(root, store).users():
        table.add_row(escape(u.name), escape(u.fullname), escape(u.organization), u.role,
                      u.state, u.created[:10])
    console.print(table)


@users.command("disable")
def user_disable(name: str, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Disable a user: their tokens stop working at once."""
    _set_state(name, "disabled", root, store)


@users.command("enable")
def user_enable(name: str, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Enable a disabled user again."""
    _set_state(name, "active", root, store)


def _set_state(name: str, state: str, root: Path | None, store: Path | None) -> None:
    try:
        user = _accounts(root, store).set_state(name, state)
    except HubError as exc:
        fail(str(exc))
    console.print(f"{escape(user.name)} is {user.state}.")


@users.command("passwd")
def user_passwd(name: str, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Set or reset a user's password (an admin's reset): asked for twice at a terminal,
    otherwise read from the first line of standard input."""
    accounts = _accounts(root, store)
    try:
        accounts.user(name)
    except HubError as exc:
        fail(str(exc))
    if sys.stdin.isatty():
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = accounts.set_password(name, password)
    except HubError as exc:
        fail(str(exc))
    console.print(f"The password of {escape(user.name)} is set.")


@users.command("role")
def user_role(name: str,
              role: Annotated[str, typer.Argument(help="viewer, editor, publisher or admin")],
              root: RootOpt = None, store: StoreOpt = None) -> None:
    """Change a user's role."""
    try:
        user = _accounts(root, store).set_role(name, role)
    except HubError as exc:
        fail(str(exc))
    console.print(f"{escape(user.name)} is {user.role} of {escape(user.organization)}.")


@users.command("reset-totp")
def user_reset_totp(name: str, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Remove a user's second factor and recovery codes (they set it up again on /konto)."""
    try:
        user = _accounts(root, store).reset_totp(name)
    except HubError as exc:
        fail(str(exc))
    console.print(f"The second factor of {escape(user.name)} is removed.")


@tokens.command("create")
def token_create(user: str,
                 name: Annotated[str, typer.Option(help="What the token is for")] = "api",
                 days: Annotated[int, typer.Option(help="Days until it expires")] = 365,
                 no_expiry: Annotated[bool, typer.Option(help="Never expires")] = False,
                 root: RootOpt = None, store: StoreOpt = None) -> None:
    """Make an API token; it is printed once and cannot be shown again."""
    try:
        token, secret = _accounts(root, store).create_token(
            user, name, None if no_expiry else days, by="cli")
    except HubError as exc:
        fail(str(exc))
    console.print(f"Token {token.id} for {escape(token.user)}, expires "
                  f"{(token.expires or 'never')[:10]}. Keep it secret; it is not shown again:",
                  highlight=False)
    print(secret)


@tokens.command("list")
def token_list(user: Annotated[str | None, typer.Argument(help="Only this user's")] = None,
               root: RootOpt = None, store: StoreOpt = None) -> None:
    """List tokens (never their secrets)."""
    from hub.store.versions import now

    table = new_table("id", "user", "name", "created", "expires", "last used", "status")
    moment = now()
    for t in _accounts(root, store).tokens(user):
        status = "revoked" if t.revoked else "valid" if t.usable(moment) else "expired"
        table.add_row(t.id, escape(t.user), escape(t.name), t.created[:10],
                      (t.expires or "never")[:10], (t.last_used or "")[:16], status)
    console.print(table)


@tokens.command("revoke")
def token_revoke(token_id: str, root: RootOpt = None, store: StoreOpt = None) -> None:
    """Revoke a token at once."""
    try:
        token = _accounts(root, store).revoke(token_id, by="cli")
    except HubError as exc:
        fail(str(exc))
    console.print(f"Token {token.id} of {escape(token.user)} is revoked.")
