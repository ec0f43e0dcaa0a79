"""Reading an HTML form of a page: bounded in size and fields before it is parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from hub.errors import Forbidden


async def read_form(request: Request, max_bytes: int = 4096,
                    max_fields: int = 10) -> dict[str, str]:
    """The form's text fields (files are refused: uploads have their own path). A body larger
    than `max_bytes` is refused before it is read."""
    if int(request.headers.get("content-length") or 0) > max_bytes:
        raise Forbidden("the form is too large")
    form = await request.form(max_files=0, max_fields=max_fields)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def counted_body(request: Request, limit: int,
                       too_large: Exception) -> AsyncIterator[bytes]:
    """The request body as it arrives; `too_large` is raised as soon as more than `limit`
    bytes are announced or have come, chunked or not."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        yield chunk
