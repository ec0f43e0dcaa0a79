"""HTTP for the action layer: `/api/3/action/{name}` and `/api/action/{name}` (ckanapi uses
the latter), GET for read actions, POST with JSON, form or multipart for all; CKAN's envelope
(`help`, `success`, `result` | `error`) and status codes. API URLs never redirect."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser, parse_options_header

from hub.access import ANONYMOUS, Viewer, require_writer
from hub.api.ckan import get, search, write  # noqa: F401 - the actions register on import
from hub.api.ckan.core import ACTIONS, ActionError, Call, NotAuthorized, Upload, ValidationError
from hub.api.ckan.packages import Site
from hub.catalog.uploads import UploadTooLarge
from hub.errors import Forbidden
from hub.web.forms import counted_body as _counted
from hub.web.services import InvalidToken, Services, credentials_sent

MAX_BODY = 10 << 20  # bytes of a JSON or form body without files
MULTIPART_FIELDS = 1 << 20  # bytes of a multipart body besides its file
log = logging.getLogger("hub.api.ckan")


class BadRequest(Exception):
    pass


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type="application/json;charset=utf-8")


def _multi(items: Any) -> dict[str, Any]:
    """Key/value pairs as a data dict; a repeated key becomes a list (as CKAN's `mixed`)."""
    data: dict[str, Any] = {}
    for key, value in items:
        data[key] = [*data[key], value] if isinstance(data.get(key), list) else (
            [data[key], value] if key in data else value)
    return data


class _Multipart(MultiPartParser):
    """Starlette's multipart parser that refuses file parts where no file is taken, and knows
    whether the closing boundary came (the parser underneath accepts a truncated body)."""

    complete = False
    takes_files = True

    def on_headers_finished(self) -> None:
        if not self.takes_files and b"filename" in parse_options_header(
                self._current_part.content_disposition)[1]:
            raise MultiPartException("this action takes no files")
        super().on_headers_finished()

    def on_end(self) -> None:
        self.complete = True


async def _form(request: Request, read: bool, max_upload: int) -> FormData:
    """A multipart body, read only up to its limit: for a write, the upload limit plus room
    for the other fields (files past 1 MB are spooled to a temporary file, which
    `FormData.close` removes); for a read, MAX_BODY of fields and no file at all."""
    if read:
        stream = _counted(request, MAX_BODY, BadRequest(f"the request body is larger than "
                                                        f"{MAX_BODY:,} bytes"))
    else:
        stream = _counted(request, max_upload + MULTIPART_FIELDS, UploadTooLarge(max_upload))
    parser = _Multipart(request.headers, stream, max_files=10, max_fields=1000)
    parser.takes_files = not read
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(f"Error decoding multipart form data: {exc.message}") from None
    if not parser.complete:
        await form.close()
        raise BadRequest("Error decoding multipart form data: the body ends before the "
                         "closing boundary")
    return form


async def _decode(request: Request, form: FormData | None) -> dict[str, Any]:
    """The data dict of a call: query string for GET; the fields of a multipart `form`;
    or a JSON or url-encoded body (of at most MAX_BODY bytes)."""
    if request.method == "GET":
        return _multi(request.query_params.multi_items())
    if form is not None:
        return _multi((k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile))
    too_large = BadRequest(f"the request body is larger than {MAX_BODY:,} bytes")
    body = b"".join([chunk async for chunk in _counted(request, MAX_BODY, too_large)])
    if _content_type(request) == "application/x-www-form-urlencoded":
        try:
            return _multi(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Error decoding form data. Error: {exc}") from None
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # too deeply nested
        raise BadRequest(f"Error decoding JSON data. Error: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("Request data JSON decoded to " f"{type(data).__name__} but "
                         "it needs to be a dictionary.")
    return data


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _caller(hub: Services, request: Request) -> Viewer:
    """Who calls (`InvalidToken` for a bad token, `Forbidden` for a session's unsafe request
    without its CSRF token); a token or session is looked up (and its use noted) in the
    database: off the event loop."""
    return await run_in_threadpool(hub.viewer, request) if credentials_sent(request) else ANONYMOUS


def ckan_router(services: Callable[[], Services]) -> APIRouter:
    router = APIRouter()

    @router.get("/api", include_in_schema=False)
    @router.get("/api/", include_in_schema=False)
    @router.get("/api/3", include_in_schema=False)
    @router.get("/api/3/", include_in_schema=False)
    def version() -> Response:
        return _json({"version": 3})

    async def handle(request: Request, name: str) -> Response:
        hub = services()
        base = hub.base_url(request)
        help_url = f"{base}/api/3/action/help_show?name={name}"
        entry = ACTIONS.get(name)
        if entry is None:
            return _json(f"Bad request - Action name not known: {name}", 400)
        func, read = entry
        if request.method == "GET" and not read:
            return _json("Bad request - JSON Error: Invalid request. Please use POST method "
                         "for your request", 400)

        def failed(exc: ActionError) -> Response:
            return _json({"help": help_url, "success": False, "error": exc.error()},
                         exc.status)

        # who calls and whether they may send this body is settled before any of it is read
        try:
            viewer = await _caller(hub, request)
        except (InvalidToken, Forbidden) as exc:  # a bad token, a session without CSRF token
            return failed(NotAuthorized(str(exc)))
        if not read:  # every write action's first rule, before its body is read
            try:
                require_writer(viewer)
            except Forbidden as exc:
                return failed(NotAuthorized(f"{exc} (header Authorization)"))
        multipart = request.method == "POST" and _content_type(request) == "multipart/form-data"
        form = None
        try:
            form = await _form(request, read, hub.settings.max_upload) if multipart else None
            data = await _decode(request, form)
            files = {k: Upload(v.filename or k, v.file) for k, v in form.multi_items()
                     if isinstance(v, UploadFile)} if form is not None else {}
            call = Call(hub.catalog, hub.accounts, hub.uploads,
                        Site(base, hub.vocab, hub.district), viewer, files)
            # reads are short and CPU-bound: answered in turn on the event loop, which
            # keeps latency even under load; writes (files, locks) go to the thread pool
            result = func(call, data) if read else await run_in_threadpool(func, call, data)
        except BadRequest as exc:
            return _json(f"Bad request - JSON Error: {exc}", 400)
        except UploadTooLarge as exc:
            return failed(ValidationError({"upload": [str(exc)]}))
        except ActionError as exc:
            return failed(exc)
        except Exception:
            log.exception("action %s failed", name)
            return failed(ActionError("Internal Server Error"))
        finally:
            if form is not None:
                await form.close()
        return _json({"help": help_url, "success": True, "result": result})

    # with and without a trailing slash: API URLs are answered where they are, never
    # redirected (a client that does not follow a redirected POST loses its call)
    for prefix in ("/api/3/action", "/api/action"):
        for path in (prefix + "/{name}", prefix + "/{name}/"):
            router.add_api_route(path, handle, methods=["GET", "POST"], include_in_schema=False)
    return router
