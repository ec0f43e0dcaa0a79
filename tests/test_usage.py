"""Usage counting (hub.usage, hub.web.counting): which requests count for which dataset, the
daily counts on both database backends, the middleware on a real uvicorn server (counted only
when the answer succeeded, saved now and then and at shutdown), and who may see counts."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import httpx
import pytest
from conftest import serving_app
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from hub import usage
from hub.access import ANONYMOUS, Viewer
from hub.db import Database
from hub.store.versions import Store
from hub.web.counting import UsageCounter, classify


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    db = (Database.for_store(tmp_path / "store") if request.param == "sqlite"
          else Database(request.getfixturevalue("postgres").database()))
    Store(tmp_path / "store", database=db)  # migrated
    return db


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/datasets/pflege", b"", ("pflege", "view")),
    ("GET", "/datasets/pfl%C3%BCge", b"", ("pflüge", "view")),
    ("GET", "/karten/daten/pflege", b"", ("pflege", "view")),
    ("GET", "/downloads/pflege/latest.csv", b"", ("pflege", "download")),
    ("GET", "/dataset/0f1e/resource/ab12/download/liste.pdf", b"", ("0f1e", "download")),
    ("GET", "/ogc/collections/pflege/items", b"bbox=1,2,3,4", ("pflege", "api")),
    ("GET", "/ogc/collections/pflege/items/17", b"", ("pflege", "api")),
    ("GET", "/api/datasets/pflege", b"", ("pflege", "api")),
    ("GET", "/api/3/action/package_show", b"id=pflege", ("pflege", "api")),
    ("POST", "/api/action/package_show", b"id=pflege", ("pflege", "api")),
    ("GET", "/ogc/collections/pflege/tiles/WebMercatorQuad/9/170/274", b"",
     ("pflege", "tile")),
    # not a use of one dataset
    ("GET", "/datasets", b"", None),
    ("GET", "/datasets/pflege/extra", b"", None),
    ("GET", "/ogc/collections/pflege", b"", None),
    ("GET", "/ogc/collections/pflege/tiles/WebMercatorQuad", b"", None),
    ("GET", "/api/3/action/package_search", b"q=pflege", None),
    ("GET", "/api/3/action/package_show", b"", None),
    ("POST", "/datasets/pflege", b"", None),
    ("HEAD", "/datasets/pflege", b"", None),
    ("GET", "/downloads/pflege", b"", None),
])
def test_which_requests_count(method: str, path: str, query: bytes,
                              expected: tuple[str, str] | None) -> None:
    assert classify(method, path, query) == expected


def test_daily_counts_add_up(database: Database) -> None:
    usage.save(database, collections.Counter({("2026-11-30", "pflege", "view"): 3,
                                              ("2026-12-01", "pflege", "tile"): 5,
                                              ("2026-12-01", "0f1e", "download"): 1}))
    usage.save(database, collections.Counter({("2026-12-01", "pflege", "tile"): 2}))
    found = usage.of(database, {"pflege": ["0f1e"], "leer": []}, "2026-12-01", "2026-12-31")
    assert found["pflege"].days == {"2026-12-01": {"view": 0, "download": 1, "api": 0,
                                                   "tile": 7}}
    assert found["pflege"].totals == {"view": 0, "download": 1, "api": 0, "tile": 7}
    assert found["leer"].total == 0
    assert usage.of(database, {"pflege": []}, "2026-11-01", "2026-11-30")["pflege"].total == 3
    assert usage.first_day(database) == "2026-11-30"
    assert usage.days("2026-02-27", "2026-03-01") == ["2026-02-27", "2026-02-28", "2026-03-01"]
    lines = "".join(usage.csv_lines(found.values(), {"pflege": "Pflege"})).splitlines()
    assert lines == ["dataset,title,day,view,download,api,tile",
                     "pflege,Pflege,2026-12-01,0,1,0,7"]


def test_the_server_counts_successful_requests_and_saves_them(tmp_path: Path) -> None:
    db = Database.for_store(tmp_path / "store")
    Store(tmp_path / "store", database=db)
    inner = FastAPI()

    @inner.get("/datasets/{name}")
    def page(name: str) -> PlainTextResponse:
        if name == "geheim":  # what the caller may not see answers 404: not counted
            raise HTTPException(404)
        return PlainTextResponse(name)

    counter = UsageCounter(inner, db, flush_seconds=0.2)
    with serving_app(counter) as url:
        for name in ("pflege", "pflege", "geheim", "radwege"):
            httpx.get(f"{url}/datasets/{name}", headers={"User-Agent": "Privat/1.0"})
        deadline = time.monotonic() + 30  # a bound against a hang only
        while time.monotonic() < deadline and usage.first_day(db) is None:
            time.sleep(0.1)
        httpx.get(f"{url}/datasets/radwege")
    # the last count was saved when the server stopped
    today = usage.first_day(db)
    found = usage.of(db, {"pflege": [], "radwege": [], "geheim": []}, today, today)
    assert {name: u.totals["view"] for name, u in found.items()} == {
        "pflege": 2, "radwege": 2, "geheim": 0}
    with db.connection() as conn:  # nothing but day, dataset, kind and count is stored
        columns = [c[1] for c in conn.exec_driver_sql("PRAGMA table_info(usage)").all()]
    assert columns == ["day", "dataset", "kind", "count"]


def test_who_may_see_usage_counts() -> None:
    sam = Viewer.of_role("editor", "sozialamt", "sam")
    vic = Viewer.of_role("viewer", "sozialamt", "vic")
    kat = Viewer.of_role("editor", "kataster-vermessung", "kat")
    ann = Viewer.of_role("admin", "landkreis", "ann")
    assert sam.may_see_usage("sozialamt", visible=True)
    assert not sam.may_see_usage("sozialamt", visible=False)  # never what one may not see
    assert not vic.may_see_usage("sozialamt", visible=True)  # viewers: no counts
    assert not kat.may_see_usage("sozialamt", visible=True)  # another organisation's
    assert ann.may_see_usage("sozialamt", visible=True)
    assert not ANONYMOUS.may_see_usage("", visible=True)
    assert ann.may_audit and not sam.may_audit and not ANONYMOUS.may_audit
