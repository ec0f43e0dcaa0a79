"""Security headers on every response (a pure ASGI middleware: streamed bodies stay streamed).

Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy`, `X-Frame-Options: DENY`.
HTML pages also get a Content Security Policy that allows no inline script at all: scripts,
styles and images only from the hub itself, the one inline stylesheet of the OGC pages by its
hash, no plugins, no `<base>`, forms only to the hub, and no framing by other sites. Other
responses get a policy that allows nothing (a JSON or CSV opened in a browser runs nothing).
A header a route sets itself (e.g. `sandbox` on uploaded files) is kept.
"""

from __future__ import annotations

import base64
import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.ogc.html import CSS


def _hash(source: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()}'"


HTML_POLICY = ("default-src 'self'; script-src 'self'; "
               f"style-src 'self' {_hash(CSS)}; img-src 'self' data:; object-src 'none'; "
               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"
ALWAYS = {"x-content-type-options": "nosniff",
          "referrer-policy": "strict-origin-when-cross-origin",
          "x-frame-options": "DENY"}
_ADDED = {html: [(name.encode(), value.encode()) for name, value in {
    **ALWAYS, "content-security-policy": HTML_POLICY if html else OTHER_POLICY}.items()]
    for html in (False, True)}  # the headers as ASGI sends them, for HTML and the rest


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))  # names in lower case (ASGI)
                present = {name.lower() for name, _ in raw}
                html = any(name.lower() == b"content-type"
                           and value.lower().startswith(b"text/html") for name, value in raw)
                raw += [(name, value) for name, value in _ADDED[html] if name not in present]
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_secured)
