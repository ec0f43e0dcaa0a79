"""/arbeitsbereich/nutzung: how much each dataset is used — page views, downloads, API and
tile requests per day (hub.usage) — as an SVG bar chart drawn on the server with a table
beside it, and as CSV (/arbeitsbereich/nutzung.csv). Editors and publishers see their
organisation's datasets, admins all; nobody sees the counts of a dataset they may not see
(`Viewer.may_see_usage`). A page's figures are made once per change of the data
(`hub.web.workspace.kept`: per viewer, period and chosen dataset) and shared by the page and
the CSV."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from hub import usage as counts
from hub.access import Viewer
from hub.catalog.index import Query
from hub.catalog.model import Record
from hub.web.session import Session
from hub.web.workspace.desk import ROOT, Desk
from hub.web.workspace.problem import Problem, denied, problem_page

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_DATASETS = 5000
STATES = ("active", "draft")


@dataclass(frozen=True)
class Period:
    since: str
    until: str

    @property
    def days(self) -> list[str]:
        return counts.days(self.since, self.until)


def period_of(request: Request, today: dt.date | None = None) -> Period:
    """`von` and `bis` (YYYY-MM-DD; default: the last 30 days), at most a year apart."""
    today = today or dt.datetime.now(dt.UTC).date()
    try:
        until = dt.date.fromisoformat(request.query_params.get("bis") or today.isoformat())
        since = dt.date.fromisoformat(request.query_params.get("von") or (
            until - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat())
    except ValueError:
        raise Problem(400, "date") from None
    if since > until:
        raise Problem(400, "order")
    if (until - since).days >= MAX_DAYS:
        raise Problem(400, "too_long", days=MAX_DAYS)
    return Period(since.isoformat(), until.isoformat())


def may_see_any(viewer: Viewer) -> bool:
    return viewer.admin or viewer.editor


def datasets_of(desk: Desk, viewer: Viewer) -> list[Record]:
    """The records whose usage the viewer may see (`Viewer.may_see_usage`)."""
    filters = {} if viewer.admin else {"organization": [viewer.organization or ""]}
    found = desk.hub.catalog.search(Query(filters=filters, sort="title", rows=MAX_DATASETS,
                                          facets=(), states=STATES), viewer)
    return [r for r in found.records
            if viewer.may_see_usage(r.publisher, r.visible_to(viewer))]


def usage_of(desk: Desk, records: list[Record], period: Period) -> dict[str, counts.Usage]:
    return counts.of(desk.hub.catalog.store.db, {r.name: [r.id] for r in records},
                     period.since, period.until)


# -- the chart --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    kind: str
    y: float
    height: float
    count: int


@dataclass(frozen=True)
class Bar:
    day: str
    x: float
    total: int
    segments: list[Segment]
    label: bool  # whether the day is written under the axis


@dataclass(frozen=True)
class Chart:
    """A stacked bar per day (one colour per kind), in SVG user units."""

    width: float
    height: float
    top: float  # the y of the highest tick
    base: float  # the y of the axis
    left: float
    bar_width: float
    ticks: list[tuple[float, int]]  # y, value
    bars: list[Bar]
    maximum: int


WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720.0, 260.0, 60.0, 32.0, 14.0, 40.0


def chart(per_day: dict[str, dict[str, int]], days: list[str]) -> Chart:
    totals = [sum(per_day.get(day, {}).values()) for day in days]
    maximum = max(totals, default=0)
    step = _nice_step(maximum)
    top_value = step * max(1, -(-maximum // step))
    base, plot = HEIGHT - BOTTOM, HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    every = max(1, -(-len(days) // 8))  # at most about 8 dates under the axis
    bars = []
    for index, day in enumerate(days):
        y, segments = base, []
        for kind in counts.KINDS:
            n = per_day.get(day, {}).get(kind, 0)
            if n:
                height = plot * n / top_value
                y -= height
                segments.append(Segment(kind, round(y, 2), round(height, 2), n))
        bars.append(Bar(day, round(LEFT + index * slot + slot * 0.15, 2), totals[index],
                        segments, index % every == 0))
    ticks = [(round(base - plot * v / top_value, 2), v)
             for v in range(0, top_value + 1, step)]
    return Chart(WIDTH, HEIGHT, TOP, base, LEFT, round(slot * 0.7, 2), ticks, bars, maximum)


def _nice_step(maximum: int) -> int:
    """A round step for four or five gridlines up to `maximum`."""
    raw = max(1, -(-maximum // 4))
    magnitude = 10 ** (len(str(raw)) - 1)
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def summed(found: list[counts.Usage]) -> dict[str, dict[str, int]]:
    per_day: dict[str, dict[str, int]] = {}
    for one in found:
        for day, kinds in one.days.items():
            target = per_day.setdefault(day, dict.fromkeys(counts.KINDS, 0))
            for kind, n in kinds.items():
                target[kind] = target.get(kind, 0) + n
    return per_day


# -- the routes -------------------------------------------------------------------------------

def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def asked(request: Request) -> tuple[Session, Period, str, dict[str, Any]] | Response:
        """The session, period, chosen dataset and counts a usage request asks for, or the
        page that refuses it."""
        session = await desk.session(request)
        viewer = session.user.viewer
        if not may_see_any(viewer):
            return denied(desk, request, session, "usage")
        chosen = request.query_params.get("datensatz", "")
        try:
            period = period_of(request)
            page = await run_in_threadpool(_kept_page, desk, viewer, period, chosen)
        except Problem as problem:
            return problem_page(desk, request, session, problem)
        return session, period, chosen, page

    @router.get(ROOT + "/nutzung", response_class=HTMLResponse)
    async def usage(request: Request) -> Response:
        found = await asked(request)
        if isinstance(found, Response):
            return found
        session, period, chosen, page = found
        params = {"von": period.since, "bis": period.until}
        body = await run_in_threadpool(
            desk.kept_fragment, request, "workspace/usage_body.html",
            (session.user.viewer, period, chosen), lambda: {
                "period": period, "query": urlencode(params), "kinds": counts.KINDS,
                "chosen_query": urlencode({**params, **({"datensatz": chosen} if chosen
                                                        else {})}), **page})
        return desk.page(request, session, "workspace/usage.html", body=body)

    @router.get(ROOT + "/nutzung.csv")
    async def usage_csv(request: Request) -> Response:
        found = await asked(request)
        if isinstance(found, Response):
            return found
        page = found[3]
        shown = [page["selected"]] if page["selected"] else page["rows"]
        titles = {row["record"].name: row["record"].title for row in shown}
        body = "".join(counts.csv_lines([row["usage"] for row in shown], titles))
        return Response(body, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="nutzung.csv"',
            "Cache-Control": "no-store"})

    return router


def _kept_page(desk: Desk, viewer: Viewer, period: Period, chosen: str) -> dict[str, Any]:
    """`_page`, kept while the data is the same (a refusal is not kept)."""
    return desk.kept("usage pages", _weight).get(
        desk.hub.catalog.db, (viewer, period, chosen), lambda: _page(desk, viewer, period,
                                                                     chosen))


def _weight(page: dict[str, Any]) -> int:
    """Bytes of a kept page's figures, estimated: a row per dataset (its record shared with
    the catalog's parsed texts, its counts per day) and a bar per day."""
    counted = sum(len(row["usage"].days) for row in page["rows"])
    return 300 * len(page["rows"]) + 200 * counted + 600 * len(page["per_day"])


def _page(desk: Desk, viewer: Viewer, period: Period, chosen: str) -> dict[str, Any]:
    records = datasets_of(desk, viewer)
    found = usage_of(desk, records, period)
    rows = sorted(({"record": r, "usage": found[r.name]} for r in records),
                  key=lambda row: (-row["usage"].total, row["record"].title))
    selected = None
    if chosen:
        selected = next((row for row in rows if row["record"].name == chosen), None)
        if selected is None:  # unknown and not the viewer's alike
            raise Problem(404, "no_usage", name=chosen[:100])
    per_day = selected["usage"].days if selected else summed([row["usage"] for row in rows])
    days = period.days
    return {"rows": rows, "selected": selected, "chart": chart(per_day, days),
            "per_day": [(day, per_day.get(day, {})) for day in days]}
