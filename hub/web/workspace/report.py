"""/arbeitsbereich/bericht: the quarterly report for the district's leadership — datasets
added, updated (metadata or data), published and stale, how many are open, internal or
restricted, and their usage per theme — as a printable page and as CSV
(/arbeitsbereich/bericht.csv). Admins only (`Viewer.may_audit`): it covers every dataset.
A report is made once per change of the data (`hub.web.workspace.kept`: per viewer, quarter and
day), shared by the page and the CSV, and the page's body rendered once per language."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from hub import audit
from hub import usage as counts
from hub.access import Viewer
from hub.catalog.index import Query
from hub.catalog.quality import assess
from hub.db.schema import versions
from hub.spreadsheet import safe_row
from hub.web.workspace.desk import ROOT, Desk
from hub.web.workspace.problem import Problem, denied, problem_page

QUARTER = re.compile(r"(\d{4})-Q([1-4])")
STATES = ("active", "draft")
PUBLISHING = ("record.create", "record.update", "publication.approve")


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, text: str) -> Quarter:
        found = QUARTER.fullmatch(text.strip())
        if not found:
            raise Problem(400, "quarter", example="2026-Q4")
        return cls(int(found[1]), int(found[2]))

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"

    @property
    def first(self) -> dt.date:
        return dt.date(self.year, 3 * self.number - 2, 1)

    @property
    def last(self) -> dt.date:
        following = (dt.date(self.year + 1, 1, 1) if self.number == 4
                     else dt.date(self.year, 3 * self.number + 1, 1))
        return following - dt.timedelta(days=1)

    @property
    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year,
                                                                          self.number - 1)


@dataclass
class Report:
    quarter: Quarter
    until: str  # the last day counted (today for the running quarter)
    added: list[Any] = field(default_factory=list)  # records
    updated: list[Any] = field(default_factory=list)
    published: list[str] = field(default_factory=list)  # titles (names of records gone)
    stale: list[Any] = field(default_factory=list)
    by_access: dict[str, int] = field(default_factory=dict)
    new_versions: int = 0
    themes: list[tuple[str, str, dict[str, int], int]] = field(default_factory=list)
    # code, label, totals per kind, datasets

    def rows(self) -> list[tuple[str, str, str, int]]:
        """The report as (section, key, label, value) rows, for the CSV."""
        found = [("datasets", "added", "Neu registriert", len(self.added)),
                 ("datasets", "updated", "Aktualisiert", len(self.updated)),
                 ("datasets", "published", "Veröffentlicht", len(self.published)),
                 ("datasets", "stale", "Veraltet", len(self.stale)),
                 ("datasets", "new_versions", "Neue Datenstände", self.new_versions)]
        found += [("access", level, level, n) for level, n in self.by_access.items()]
        for code, label, totals, datasets in self.themes:
            found.append(("theme_datasets", code, label, datasets))
            found += [(f"theme_{kind}", code, label, totals[kind]) for kind in counts.KINDS]
        return found


def kept(desk: Desk, viewer: Viewer, quarter: Quarter, today: dt.date) -> Report:
    """`build`'s report, kept while the data and the day are the same (call it off the event
    loop; the report is shared: read it, do not change it)."""
    return desk.kept("quarterly reports", _weight).get(
        desk.hub.catalog.db, (viewer, quarter, today), lambda: build(desk, viewer, quarter,
                                                                     today))


def _weight(report: Report) -> int:
    """Bytes of a kept report, estimated: its lists (records are shared with the catalog's
    parsed texts) and theme rows."""
    listed = len(report.added) + len(report.updated) + len(report.stale) + len(report.published)
    return 100 * listed + 400 * len(report.themes)


def build(desk: Desk, viewer: Viewer, quarter: Quarter, today: dt.date) -> Report:
    hub = desk.hub
    db = hub.catalog.store.db
    first, last = quarter.first.isoformat(), min(quarter.last, today).isoformat()
    report = Report(quarter, last)
    records = hub.catalog.search(Query(rows=1 << 30, facets=(), states=STATES),
                                 viewer).records
    orgs = hub.vocab.organizations
    for record in records:
        created, changed = (record.created or "")[:10], (record.changed or "")[:10]
        if first <= created <= last:
            report.added.append(record)
        elif created < first and first <= changed <= last:
            report.updated.append(record)
        if record.state == "active":
            report.by_access[record.access] = report.by_access.get(record.access, 0) + 1
            if assess(record, hub.vocab, today, orgs).stale:
                report.stale.append(record)
    titles = {r.name: r.title for r in records}
    report.published = [titles.get(name, name) for name in _published(db, first, last)]
    with db.connection() as conn:
        report.new_versions = conn.execute(select(func.count()).select_from(versions).where(
            versions.c.finished >= first, versions.c.finished < last + "~")).scalar_one()
    used = counts.of(db, {r.name: [r.id] for r in records}, first, last)
    per_theme: dict[str, tuple[dict[str, int], int]] = {}
    for record in records:
        for theme in record.themes or ["—"]:
            totals, n = per_theme.get(theme, (dict.fromkeys(counts.KINDS, 0), 0))
            for kind, value in used[record.name].totals.items():
                totals[kind] += value
            per_theme[theme] = (totals, n + 1)
    report.themes = sorted(((code, _theme_label(hub.vocab, code), totals, n)
                            for code, (totals, n) in per_theme.items()),
                           key=lambda t: (-sum(t[2].values()), t[1]))
    return report


def _published(db: Any, first: str, last: str) -> list[str]:
    """Datasets that became public in the quarter, by the audit trail."""
    names: set[str] = set()
    for action in PUBLISHING:
        for entry in audit.entries(db, audit.Filter(action=action, since=first, until=last),
                                   limit=None):
            after = entry.after_value or {}
            if action == "publication.approve" or after.get("access") == "public":
                names.add(entry.subject)
    return sorted(names)


def _theme_label(vocab: Any, code: str) -> str:
    try:
        term = vocab.themes.get(code)
    except KeyError:
        return code
    return term.extra.get("de") or term.label


def router(desk: Desk) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def report_of(request: Request) -> tuple[Any, Report | Response]:
        session = await desk.session(request)
        viewer = session.user.viewer
        if not viewer.may_audit:
            return session, denied(desk, request, session, "report")
        today = dt.datetime.now(dt.UTC).date()
        given = request.query_params.get("quartal")
        try:
            quarter = Quarter.parse(given) if given else Quarter.of(today)
        except Problem as problem:
            return session, problem_page(desk, request, session, problem)
        return session, await run_in_threadpool(kept, desk, viewer, quarter, today)

    @router.get(ROOT + "/bericht", response_class=HTMLResponse)
    async def report(request: Request) -> Response:
        session, found = await report_of(request)
        if isinstance(found, Response):
            return found
        today = dt.datetime.now(dt.UTC).date()
        choices = [Quarter.of(today)]
        while len(choices) < 8:
            choices.append(choices[-1].previous)
        body = await run_in_threadpool(
            desk.kept_fragment, request, "workspace/report_body.html",
            (session.user.viewer, found.quarter, today),
            lambda: {"report": found, "choices": choices, "kinds": counts.KINDS})
        return desk.page(request, session, "workspace/report.html", report=found, body=body)

    @router.get(ROOT + "/bericht.csv")
    async def report_csv(request: Request) -> Response:
        _, found = await report_of(request)
        if isinstance(found, Response):
            return found
        buffer = io.StringIO()
        out = csv.writer(buffer, lineterminator="\n")
        out.writerow(["quarter", "section", "key", "label", "value"])
        for row in found.rows():
            out.writerow(safe_row([str(found.quarter), *row]))  # titles: no formulas
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="bericht-{found.quarter}.csv"',
            "Cache-Control": "no-store"})

    return router
