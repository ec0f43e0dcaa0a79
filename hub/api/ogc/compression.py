"""gzip for the OGC API's JSON answers (items, collections, queryables, the API document …)
when the client accepts it: a page of 100 features shrinks about six-fold, which matters on a
slow rural line.

Only JSON media types, and only bodies of `MIN_BYTES` or more (below that the header and the
work cost more than they save). gzip level 1: most of the saving (level 6 saves another fifth)
at a third of the time; bodies of `OFF_LOOP_BYTES` or more are compressed in a worker thread
(zlib lets go of the GIL), so a large page never holds the event loop. Tiles (MVT) and HTML
stay as they are.

BREACH: compression leaks a secret in a body to whoever can reflect text into the same body.
The OGC API's answers carry no secret (no CSRF token, no session, no account data: the API is
read-only and authenticated by header), so they may be compressed; the portal's session pages
and forms are not compressed by this, nor the downloads (`hub.api.downloads` has its own gzip).
"""

from __future__ import annotations

import gzip

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool

MIN_BYTES = 1024
OFF_LOOP_BYTES = 256 * 1024
LEVEL = 1


def is_json(media_type: str) -> bool:
    kind = media_type.split(";", 1)[0].strip().lower()
    return kind.startswith("application/") and (kind.endswith("json") or "+json" in kind)


async def compressed(request: Request, response: Response) -> Response:
    """`response` gzip-compressed if it is JSON of `MIN_BYTES` or more and the client accepts
    gzip; always with `Vary: Accept-Encoding` on JSON (a cache must not mix the two)."""
    if (response.headers.get("content-encoding")
            or not is_json(response.headers.get("content-type", ""))):
        return response
    vary = response.headers.get("vary")
    response.headers["Vary"] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"
    from hub.api.downloads.http import accepts_gzip  # (it imports the OGC API's modules)

    body = bytes(response.body)
    if len(body) < MIN_BYTES or not accepts_gzip(request):
        return response
    if len(body) >= OFF_LOOP_BYTES:
        packed = await run_in_threadpool(gzip.compress, body, LEVEL, mtime=0)
    else:
        packed = gzip.compress(body, LEVEL, mtime=0)
    response.body = packed
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Content-Length"] = str(len(packed))
    return response
