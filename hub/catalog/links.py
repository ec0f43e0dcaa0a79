"""Links in the catalog: the one check for every URL that enters a record, an organisation
or a feed. Only absolute `http:`/`https:` URLs (and `mailto:` for contacts) are links; a path
on the hub itself only where the hub made it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

WEB = ("http", "https")  # the only schemes of links in the catalog (contacts: mailto too)
CONTACT = (*WEB, "mailto")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# characters that are never part of a link: whitespace, controls, and those a URI cannot hold
_NOT_IN_LINKS = re.compile(r'[\s\x00-\x1f\x7f-\x9f<>"{}|\\^`\u200b-\u200f\ufeff]')
EMAIL = re.compile(r"^[\w.!$&'*+/=~-]+@[\w-]+(\.[\w-]+)+$")


def link_problem(value: str, schemes: tuple[str, ...] = WEB, hub_path: str = "") -> str | None:
    """Why `value` cannot be a link in the catalog, or None when it can: an absolute URL with
    one of `schemes` (and a host, for http/https), or a path on this hub under `hub_path` (the
    hub's own upload links)."""
    allowed = f"allowed: absolute {' or '.join(f'{s}:' for s in schemes)} URLs"
    if _NOT_IN_LINKS.search(value):
        return f"{value!r}: spaces, control characters and <>\"{{}}|\\^` cannot be part of " \
               f"a link; {allowed}"
    if hub_path and value.startswith(hub_path):
        return None
    scheme = value[:value.index(":")].lower() if SCHEME.match(value) else ""
    if scheme not in schemes:
        return (f"{value!r}: {scheme}: links are not allowed; {allowed}" if scheme else
                f"{value!r} has no scheme; {allowed}")
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        return f"{value!r} is not a URL ({exc}); {allowed}"
    if scheme in WEB and not parts.hostname:
        return f"{value!r} has no host name; {allowed}"
    if scheme == "mailto" and not EMAIL.match(parts.path):
        return f"{value!r} is not a mailto: link with an e-mail address; {allowed}"
    return None


def hub_link(base_url: str, value: str, schemes: tuple[str, ...] = WEB) -> str | None:
    """A stored link for output: absolute as it is, a path (`/…`) on this hub joined to
    `base_url`; None for anything else (a store may hold links from before they were checked
    on the way in), so no output ever carries a link it must not, nor `base_url` + junk."""
    if not value or value.startswith("//") or link_problem(value, schemes, hub_path="/"):
        return None
    return base_url + value if value.startswith("/") else value


def email_problem(value: str) -> str | None:
    """Why `value` is not an e-mail address (None: it is; `mailto:` in front is allowed)."""
    address = value[len("mailto:"):] if value.lower().startswith("mailto:") else value
    return None if EMAIL.match(address) else f"{value!r} is not an e-mail address"
