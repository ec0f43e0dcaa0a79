"""/arbeitsbereich/benutzer: admins manage users — list, add (with a first password shown
once), change a role, disable and enable, reset a password (the new one shown once) and reset
the second factor — through `hub.accounts`, the functions of `hub user …`.

`hub.access.check_manage_users` decides who may (admins); others get 403, anonymous visitors
the sign-in page. Messages are keys of templates/workspace/messages.html.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from hub.access import ROLES, check_manage_users
from hub.accounts import AccountError, Accounts, User
from hub.web.services import Services
from hub.web.session import Session
from hub.web.workspace.datasets import refused, refusing
from hub.web.workspace.desk import ROOT, Desk, see_other

USERS = f"{ROOT}/benutzer"
DONE = ("role", "disable", "enable", "totp")  # what was done: keys of messages.html


@dataclass
class Outcome:
    """What an action shows: a one-time password (only now), a message, an error."""

    password: str = ""
    user: str = ""
    done: str = ""
    error: str = ""
    values: dict[str, str] = field(default_factory=dict)


def add(accounts: Accounts, actor: str, fields: dict[str, str]) -> Outcome:
    """A new user with a first password (shown once)."""
    values = {k: fields.get(k, "").strip() for k in ("name", "organization", "role",
                                                      "fullname", "email")}
    try:
        user = accounts.add_user(values["name"], values["organization"], values["role"],
                                 values["email"], values["fullname"], by=actor)
    except AccountError as exc:
        return Outcome(error=str(exc), values=values)
    password = accounts.reset_password(user.name, by=actor)
    return Outcome(password=password, user=user.name)


def change(accounts: Accounts, actor: str, name: str, fields: dict[str, str]) -> Outcome:
    """One action on an existing user."""
    action = fields.get("action", "")
    try:
        user = accounts.user(name)
        if action == "role":
            accounts.set_role(user.name, fields.get("role", ""), by=actor)
        elif action in ("disable", "enable"):
            accounts.set_state(user.name, "disabled" if action == "disable" else "active",
                               by=actor)
        elif action == "password":
            password = accounts.reset_password(user.name, by=actor)
            return Outcome(password=password, user=user.name)
        elif action == "totp":
            accounts.reset_totp(user.name, by=actor)
        else:
            return Outcome(error=f"unknown action {action!r}")
    except AccountError as exc:
        return Outcome(error=str(exc))
    return Outcome(done=action, user=user.name)


def listed(hub: Services) -> dict[str, Any]:
    accounts = hub.accounts
    users: list[User] = accounts.users()
    orgs = sorted(hub.vocab.organizations.values(), key=lambda o: o.name)
    return {"users": users, "totp": {u.name: accounts.totp_enabled(u.name) for u in users},
            "organizations": orgs, "org_names": {o.id: o.name for o in orgs}, "roles": ROLES}


def _done(request: Request) -> str:
    done = request.query_params.get("erledigt", "")
    return done if done in DONE else ""


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def page(request: Request, session: Session, outcome: Outcome | None = None,
                   status: int = 200) -> Response:
        facts = await run_in_threadpool(listed, desk.hub)
        return desk.page(request, session, "workspace/users.html", status, **facts,
                         outcome=outcome or Outcome(done=_done(request)))

    @router.get(USERS, response_class=HTMLResponse)
    async def users(request: Request) -> Response:
        session = await desk.session(request)
        with refusing() as refusal:
            check_manage_users(session.user.viewer)
            return await page(request, session)
        return refused(desk, request, session, refusal.status)

    @router.post(USERS, response_class=HTMLResponse)
    async def add_user(request: Request) -> Response:
        session = await desk.session(request)
        with refusing() as refusal:
            check_manage_users(session.user.viewer)
            fields = await desk.form(request, session)
            outcome = await run_in_threadpool(add, desk.hub.accounts, session.user.name,
                                              fields)
            return await page(request, session, outcome, 400 if outcome.error else 200)
        return refused(desk, request, session, refusal.status)

    @router.post(USERS + "/{name}", response_class=HTMLResponse)
    async def change_user(request: Request, name: str) -> Response:
        session = await desk.session(request)
        with refusing() as refusal:
            check_manage_users(session.user.viewer)
            fields = await desk.form(request, session)
            outcome = await run_in_threadpool(change, desk.hub.accounts, session.user.name,
                                              name, fields)
            if outcome.error:
                return await page(request, session, outcome, 400)
            if outcome.password:  # shown once, on this answer only
                return await page(request, session, outcome)
            return see_other(f"{USERS}?erledigt={quote(fields.get('action', ''))}"
                             f"#u-{quote(name)}")
        return refused(desk, request, session, refusal.status)

    return router
