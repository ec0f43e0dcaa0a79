"""What every workspace page shares: the signed-in user (from the session cookie, looked up
off the event loop), forms checked against the session's CSRF token, and pages rendered in
the portal's layout with the workspace's navigation, never cached.

Who may do what is not decided here: pages ask `hub.access` through the core functions they
call (an editor only of the own organisation's datasets, a publisher approves, an admin all).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from hub.errors import HubError
from hub.web.forms import read_form
from hub.web.portal.routes import Renderer
from hub.web.services import Services
from hub.web.session import CSRF_FIELD, Session, check_csrf
from hub.web.workspace.kept import Kept

ROOT = "/arbeitsbereich"


class SignInFirst(HubError):
    """A workspace page was asked for without a signed-in session: the answer is a redirect
    to the sign-in page (see `redirect_to_sign_in`)."""

    def __init__(self) -> None:
        super().__init__("sign in first")


def wants_json(request: Request) -> bool:
    """Does the client ask for JSON: a JSON twin (a path ending in `.json`) or an `Accept`
    header that names application/json and not text/html (a browser names text/html)?"""
    accept = request.headers.get("accept", "")
    return request.url.path.endswith(".json") or (
        "application/json" in accept and "text/html" not in accept)


async def redirect_to_sign_in(request: Request, exc: Exception) -> Response:
    """A browser goes to the sign-in page; a client that asks for JSON gets a 401."""
    if wants_json(request):
        return JSONResponse({"detail": "sign in first (the workspace needs a session)"}, 401,
                            headers={"Cache-Control": "no-store"})
    return RedirectResponse("/anmelden", 303, headers={"Cache-Control": "no-store"})


@dataclass
class Desk:
    """The services and the renderer the workspace's pages work with."""

    services: Callable[[], Services]
    render: Renderer
    _kept: dict[str, Kept] = field(default_factory=dict)
    _making: threading.Lock = field(default_factory=threading.Lock)

    @property
    def hub(self) -> Services:
        return self.services()

    def kept(self, name: str, weigh: Callable[[Any], int]) -> Kept:
        """This workspace's cache `name` of answers derived from its database
        (`hub.web.workspace.kept`): one per app, so two hubs in one process never share."""
        found = self._kept.get(name)
        if found is None:
            with self._making:  # one per name, even when two threads ask first at once
                found = self._kept.get(name)
                if found is None:
                    found = self._kept[name] = Kept(name, weigh)
        return found

    async def session(self, request: Request) -> Session:
        """The request's signed-in session; `SignInFirst` without one (also halfway through
        the second factor)."""
        found = await run_in_threadpool(self.hub.session, request)
        if found is None or not found.signed_in:
            raise SignInFirst()
        return found

    async def form(self, request: Request, session: Session, max_bytes: int = 16384,
                   max_fields: int = 40) -> dict[str, str]:
        """A posted form of the signed-in user, its CSRF token checked (`Forbidden` when it
        is missing or wrong)."""
        fields = await read_form(request, max_bytes, max_fields)
        check_csrf(request, session, fields.get(CSRF_FIELD))
        return fields

    def fragment(self, request: Request, template: str, **context: Any) -> Markup:
        """A part of a page (templates/workspace/…) in the request's language, to be kept
        and placed into a page."""
        return Markup(self.render.env.get_template(template).render(
            lang=self.render.language(request), **context))

    def kept_fragment(self, request: Request, template: str, key: tuple[Any, ...],
                      context: Callable[[], dict[str, Any]]) -> Markup:
        """`fragment` of `template` with `context()`, kept (`kept`) under `key` — which names
        the viewer and all else the context is made from — and the language (call it off the
        event loop)."""
        lang = self.render.language(request)
        return self.kept(template, len).get(self.hub.catalog.db, (*key, lang.code),
                                            lambda: self.fragment(request, template,
                                                                  **context()))

    def page(self, request: Request, session: Session, template: str, status: int = 200,
             **context: Any) -> Response:
        """A workspace page (templates/workspace/…), with the user and the CSRF token for
        its forms."""
        response = self.render(request, template, status, secret=True, account=session.user,
                               csrf=session.csrf, signed_in_as=session.user.name, **context)
        response.headers["Cache-Control"] = "no-store"
        return response


def see_other(path: str) -> RedirectResponse:
    """After a successful POST: the page to show next (303, so a reload does not resend)."""
    return RedirectResponse(path, 303)
