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
from starlette.datastructures import UploadFile

from hub.access import ANONYMOUS
from hub.api.ckan import get, search, write  # noqa: F401 - the actions register on import
from hub.api.ckan.core import ACTIONS, ActionError, Call, NotAuthorized, Upload, ValidationError
from hub.api.ckan.packages import Site
from hub.catalog.uploads import UploadTooLarge
from hub.web.services import InvalidToken, Services, token_sent

MAX_BODY = 10 << 20  # bytes of a JSON or form body without files
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


async def _decode(request: Request, max_upload: int) -> tuple[dict[str, Any], dict[str, Upload]]:
    """The data dict (and files) of a call: query string for GET; JSON, form or multipart."""
    if request.method == "GET":
        return _multi(request.query_params.multi_items()), {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    size = int(request.headers.get("content-length") or 0)
    if kind == "multipart/form-data":
        if size > max_upload + (1 << 20):
            async for _ in request.stream():  # drain, keep nothing
                pass
            raise UploadTooLarge(max_upload)
        form = await request.form(max_files=10, max_fields=1000)
        files = {k: Upload(v.filename or k, v.file) for k, v in form.multi_items()
                 if isinstance(v, UploadFile)}
        return _multi((k, v) for k, v in form.multi_items()
                      if not isinstance(v, UploadFile)), files
    if size > MAX_BODY:
        raise BadRequest(f"the request body is larger than {MAX_BODY:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequest(f"the request body is larger than {MAX_BODY:,} bytes")
    if kind == "application/x-www-form-urlencoded":  # the body is read: parse it here
        try:
            return _multi(parse_qsl(bytes(body).decode("utf-8"), keep_blank_values=True)), {}
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Error decoding form data. Error: {exc}") from None
    if not body.strip():
        return {}, {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # too deeply nested
        raise BadRequest(f"Error decoding JSON data. Error: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("Request data JSON decoded to " f"{type(data).__name__} but "
                         "it needs to be a dictionary.")
    return data, {}


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

        try:
            data, files = await _decode(request, hub.settings.max_upload)
        except BadRequest as exc:
            return _json(f"Bad request - JSON Error: {exc}", 400)
        except UploadTooLarge as exc:
            return failed(ValidationError({"upload": [str(exc)]}))
        try:  # a token is looked up (and its use noted) in SQLite: off the event loop
            viewer = await run_in_threadpool(hub.viewer, request) if token_sent(request) \
                else ANONYMOUS
        except InvalidToken as exc:
            return failed(NotAuthorized(str(exc)))
        call = Call(hub.catalog, hub.accounts, hub.uploads,
                    Site(base, hub.vocab, hub.district), viewer, files)
        try:  # reads are short and CPU-bound: answered in turn on the event loop, which
            # keeps latency even under load; writes (files, locks) go to the thread pool
            result = func(call, data) if read else await run_in_threadpool(func, call, data)
        except ActionError as exc:
            return failed(exc)
        except Exception:
            log.exception("action %s failed", name)
            return failed(ActionError("Internal Server Error"))
        return _json({"help": help_url, "success": True, "result": result})

    # with and without a trailing slash: API URLs are answered where they are, never
    # redirected (a client that does not follow a redirected POST loses its call)
    for prefix in ("/api/3/action", "/api/action"):
        for path in (prefix + "/{name}", prefix + "/{name}/"):
            router.add_api_route(path, handle, methods=["GET", "POST"], include_in_schema=False)
    return router
