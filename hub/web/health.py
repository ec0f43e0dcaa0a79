"""Health and readiness, for a load balancer or a process supervisor.

    GET /health   200 {"status": "ok"} while the process answers at all (no dependency asked)
    GET /ready    200 {"status": "ready"} when the database answers a cheap query and the
                  storage answers a cheap look-up, both within `CHECK_SECONDS`; otherwise 503
                  {"status": "not ready", "failed": ["database", …]} — what failed, never why
                  in detail (no stack trace, no URL, no credentials; the reason is logged).
                  While the server drains (after SIGTERM, see hub.web.server) 503
                  {"status": "draining"} at once, so a balancer stops sending it requests.

Both answer everyone (no access decision: they reveal nothing about the data) and are not
counted as usage (hub.web.counting counts dataset paths only). The checks run in worker
threads, never on the event loop; a check that hangs is abandoned after `CHECK_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hub.store.versions import Store

log = logging.getLogger("hub.health")
CHECK_SECONDS = 2.0
NO_STORE = {"Cache-Control": "no-store"}

_draining = threading.Event()


def begin_draining() -> None:
    """From now on /ready answers 503 (called on SIGTERM by hub.web.server)."""
    _draining.set()


def draining() -> bool:
    return _draining.is_set()


def database_check(store: Store) -> Callable[[], None]:
    def check() -> None:
        with store.db.connection() as conn:
            conn.exec_driver_sql("SELECT 1")
    return check


def storage_check(store: Store) -> Callable[[], None]:
    def check() -> None:
        store.files.reachable()  # one stat, or one HEAD of the bucket
    return check


async def _failed(name: str, check: Callable[[], None]) -> str | None:
    """`name` if the check raised or did not finish in time, else None."""
    try:
        await asyncio.wait_for(asyncio.to_thread(check), CHECK_SECONDS)
    except TimeoutError:
        log.warning("readiness: %s did not answer within %g s", name, CHECK_SECONDS)
        return name
    except Exception as exc:  # whatever the driver raises: logged here, named in the answer
        log.warning("readiness: %s failed: %s", name, exc)
        return name
    return None


def health_router(store: Store) -> APIRouter:
    router = APIRouter()
    checks = {"database": database_check(store), "storage": storage_check(store)}

    @router.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    @router.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        if draining():
            return JSONResponse({"status": "draining"}, 503, headers=NO_STORE)
        results = await asyncio.gather(*(_failed(n, c) for n, c in checks.items()))
        failed = [name for name in results if name]
        if failed or draining():
            return JSONResponse({"status": "draining" if draining() else "not ready",
                                 "failed": failed}, 503, headers=NO_STORE)
        return JSONResponse({"status": "ready"}, headers=NO_STORE)

    return router
