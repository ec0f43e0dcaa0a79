"""Usage per dataset per day — page views, downloads, API and tile requests — without personal
data: the server counts requests in memory (`Tally`; no address, no user agent, nothing about
the person is kept, only the dataset, the kind and the day) and adds the counts to the `usage`
table now and then and when it stops. Hidden datasets are counted like any other; who may see
their counts is `hub.access`'s decision (`Viewer.may_see_usage`), made by the pages that show
them.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select

from hub.db import Database
from hub.db.schema import usage
from hub.spreadsheet import safe_row

log = logging.getLogger("hub.usage")
KINDS = ("view", "download", "api", "tile")
Key = tuple[str, str, str]  # day (YYYY-MM-DD, UTC), dataset, kind


class Tally:
    """Counts in memory, for one server process. `count` is called on the event loop (by
    `hub.web.counting`), `take` there too; only `save` touches the database (off the loop)."""

    def __init__(self) -> None:
        self._counts: collections.Counter[Key] = collections.Counter()
        self._day_number = -1
        self._day = ""

    def count(self, dataset: str, kind: str) -> None:
        number = int(time.time() // 86400)
        if number != self._day_number:
            self._day_number = number
            self._day = dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + number).isoformat()
        self._counts[(self._day, dataset, kind)] += 1

    def take(self) -> collections.Counter[Key]:
        """The counts so far; counting starts again from zero."""
        taken, self._counts = self._counts, collections.Counter()
        return taken

    def give_back(self, counts: collections.Counter[Key]) -> None:
        """Counts that could not be saved, to be saved with the next ones."""
        self._counts.update(counts)


def save(db: Database, counts: collections.Counter[Key]) -> None:
    """Add `counts` to the daily counts in the database (one transaction)."""
    if not counts:
        return
    insert = db.insert(usage)
    upsert = insert.on_conflict_do_update(
        index_elements=[usage.c.day, usage.c.dataset, usage.c.kind],
        set_={"count": usage.c.count + insert.excluded["count"]})
    with db.write() as conn:
        conn.execute(upsert, [{"day": day, "dataset": dataset, "kind": kind, "count": n}
                              for (day, dataset, kind), n in sorted(counts.items())])


# -- reading ----------------------------------------------------------------------------------

@dataclass
class Usage:
    """One dataset's counts: per day and kind, and the totals per kind."""

    dataset: str
    days: dict[str, dict[str, int]] = field(default_factory=dict)  # day -> kind -> count

    @property
    def totals(self) -> dict[str, int]:
        found = dict.fromkeys(KINDS, 0)
        for kinds in self.days.values():
            for kind, n in kinds.items():
                found[kind] = found.get(kind, 0) + n
        return found

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def of(db: Database, names: dict[str, Iterable[str]], since: str, until: str
       ) -> dict[str, Usage]:
    """The counts from `since` to `until` (days, both included) of the datasets `names` maps
    to the keys they were counted under (a record's name and its id: CKAN calls and uploaded
    files name a record by either)."""
    keys = {key: name for name, aliases in names.items() for key in (name, *aliases)}
    found = {name: Usage(name) for name in names}
    if not keys:
        return found
    query = (select(usage.c.day, usage.c.dataset, usage.c.kind, usage.c.count)
             .where(usage.c.day >= since, usage.c.day <= until))
    if len(keys) <= 500:
        query = query.where(usage.c.dataset.in_(sorted(keys)))
    with db.connection() as conn:
        rows = conn.execute(query).all()
    for day, key, kind, n in rows:
        name = keys.get(key)
        if name is None:
            continue
        per_kind = found[name].days.setdefault(day, dict.fromkeys(KINDS, 0))
        per_kind[kind] = per_kind.get(kind, 0) + n
    return found


def first_day(db: Database) -> str | None:
    with db.connection() as conn:
        return conn.execute(select(func.min(usage.c.day))).scalar_one()


def days(since: str, until: str) -> list[str]:
    """Every day from `since` to `until` (both included)."""
    start, end = dt.date.fromisoformat(since), dt.date.fromisoformat(until)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def csv_lines(found: Iterable[Usage], titles: dict[str, str]) -> Iterator[str]:
    """Day by day per dataset: dataset, title, day and a column per kind (titles with
    formulas neutralised: `hub.spreadsheet`)."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["dataset", "title", "day", *KINDS])
    for one in found:
        for day in sorted(one.days):
            out.writerow(safe_row([one.dataset, titles.get(one.dataset, ""), day,
                                   *(one.days[day].get(kind, 0) for kind in KINDS)]))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
