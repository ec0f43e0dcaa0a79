"""HTTP validators for the OGC API: ETag, Cache-Control, and 304 Not Modified.

No OGC URL names a version — `/collections/x/items` shows the current one — so every response
must be revalidated (`no-cache`), and revalidation is cheap:

- features (`/items`, `/items/{id}`): the ETag is derived from the dataset's current version
  and the full request (URL, Accept), so a 304 is answered before any feature is read or
  encoded; the bodies differ only in `timeStamp`, hence weak ETags;
- documents (landing page, collections, API, queryables): the ETag is a hash of the body,
  which saves the transfer.

Responses that depend on who asks (a token was sent) or show data that is not public are
`private`; non-public data is `no-store` as in the downloads.
"""

from __future__ import annotations

import hashlib
import os

from fastapi import Request
from fastapi.responses import Response

from hub.store.versions import Version

REVALIDATE = "no-cache"
PERSONAL = "private, no-cache"
PRIVATE = "private, no-store"
TOKEN_HEADERS = ("authorization", "x-ckan-api-key")


def _weak(text: bytes) -> str:
    return f'W/"{hashlib.blake2b(text, digest_size=12).hexdigest()}"'


def version_tag(request: Request, version: Version) -> str:
    """A weak ETag for features of one version, as this request asks for them."""
    key = "\n".join((version.dataset, str(version.version), version.checksum, str(request.url),
                     request.headers.get("accept", ""), os.environ.get("HUB_BASE_URL", "")))
    return _weak(key.encode())


def cache_control(request: Request, public: bool = True) -> str:
    if not public:
        return PRIVATE
    return PERSONAL if any(request.headers.get(h) for h in TOKEN_HEADERS) else REVALIDATE


def matches(request: Request, tag: str) -> bool:
    """If-None-Match holds `tag` or `*` (weak comparison, RFC 9110 §13.1.2)."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or tag.removeprefix("W/") in tags


def not_modified(tag: str, control: str) -> Response:
    return Response(status_code=304, headers={"ETag": tag, "Cache-Control": control,
                                              "Vary": "Accept"})


def validated(request: Request, response: Response) -> Response:
    """Add ETag (a body hash), Cache-Control and Vary (Accept) to a 200 where the route did
    not set them; 304 on a match."""
    if response.status_code != 200:
        return response
    headers = response.headers
    tag, control = headers.get("etag"), headers.get("cache-control")
    if tag is None:
        tag = headers["ETag"] = _weak(bytes(response.body))
    if control is None:
        control = headers["Cache-Control"] = cache_control(request)
    if matches(request, tag):
        return not_modified(tag, control)
    if "vary" not in headers:
        headers["Vary"] = "Accept"
    return response
