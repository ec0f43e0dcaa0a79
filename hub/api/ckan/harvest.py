"""Harvesting: read the public datasets of another CKAN into the catalog, as CKAN's harvester
does — paging `package_search` by `metadata_modified`, only what changed since the last run
(with an hour's margin), and dropping records the source no longer lists.

Harvested records keep their source (`origin: harvest`, `source_url`) and are mapped with the
same rules as datasets sent to the hub's own API. A run fetches everything first and then
writes in one transaction: an unreachable source changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from hub.access import ADMIN
from hub.api.ckan import packages as dicts
from hub.api.ckan.client import Remote
from hub.catalog.editing import audited
from hub.catalog.expr import Match
from hub.catalog.index import Catalog, Query
from hub.catalog.model import ALL_STATES, Record, RecordInvalid, validate
from hub.db.schema import harvest_sources
from hub.store.versions import now

PAGE = 500
MARGIN = dt.timedelta(hours=1)
@dataclass
class HarvestReport:
    source: str
    since: str | None  # None: a full run
    outcomes: dict[str, list[str]] = field(default_factory=lambda: {
        "created": [], "updated": [], "unchanged": [], "deleted": []})
    failed: list[tuple[str, str]] = field(default_factory=list)


def harvest(catalog: Catalog, site: dicts.Site, remote: Remote, org: str | None = None,
            full: bool = False, progress: Callable[[int, int], None] | None = None
            ) -> HarvestReport:
    started = now()
    with catalog.db.connection() as db:
        last = db.execute(select(harvest_sources.c.last_started).where(
            harvest_sources.c.url == remote.url)).scalar()
    since = None if full or last is None else _minus_margin(last)
    report = HarvestReport(remote.url, since)
    if org is not None and site.vocab.organization(org) is None:
        raise RecordInvalid("harvest", {"org": f"unknown organisation {org!r}"})
    listed = set(remote.call("package_list") or [])
    prefix = f"{remote.url}/dataset/"
    ours = {r.name: r for r in catalog.search(Query(
        where=Match("origin", "harvest"), rows=1 << 30, facets=(), states=ALL_STATES),
        ADMIN).records if r.source_url.startswith(prefix)}
    records: list[Record] = []
    for pkg in _changed(remote, since, progress):
        name = str(pkg.get("name"))
        if pkg.get("private") or name not in listed:
            continue
        try:
            records.append(_record(pkg, site, org, catalog, ours.get(name), prefix))
        except (RecordInvalid, dicts.PackageInvalid, ValueError) as exc:
            report.failed.append((name, str(exc)))
    gone = sorted(n for n in ours if n not in listed)
    results = catalog.upsert_many(records, delete=gone,
                                  then=audited(catalog, ADMIN.user or "hub", records, gone))
    for record, result in zip(records, results, strict=True):
        report.outcomes[result].append(record.name)
    report.outcomes["deleted"] = gone
    source = {"organization": org, "last_started": started, "last_finished": now(),
              "datasets": len(listed)}
    with catalog.db.write() as db:
        db.execute(catalog.db.insert(harvest_sources).values(url=remote.url, **source)
                   .on_conflict_do_update(index_elements=["url"], set_=source))
    return report


def _minus_margin(stamp: str) -> str:
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) - MARGIN
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _changed(remote: Remote, since: str | None, progress: Callable[[int, int], None] | None):
    """Every public dataset changed since `since` (all without), oldest change first."""
    start = 0
    while True:
        page = remote.call("package_search", q="*:*", rows=PAGE, start=start,
                           sort="metadata_modified asc, id asc",
                           **({"fq": f"metadata_modified:[{since} TO *]"} if since else {}))
        results = (page or {}).get("results") or []
        yield from results
        start += len(results)
        if progress:
            progress(start, int((page or {}).get("count") or 0))
        if not results or start >= int(page.get("count") or 0):
            return


def _record(pkg: dict[str, Any], site: dicts.Site, org: str | None, catalog: Catalog,
            old: Record | None, prefix: str) -> Record:
    name = str(pkg["name"])
    local = catalog.get(name, ADMIN, ALL_STATES)
    if local is not None and local.id != pkg.get("id") and (
            local.origin != "harvest" or not local.source_url.startswith(prefix)):
        raise ValueError(f"the name {name!r} belongs to another record of this hub")
    old = old or local  # the same dataset (same id), e.g. one the source published here
    data = dicts.record_data(pkg, site, old)
    source_org = (pkg.get("organization") or {}).get("name") or ""
    publisher = site.vocab.organization(org or source_org)
    if publisher is None:
        raise ValueError(f"no local organisation {source_org!r}; harvest with --org")
    data.update(publisher=publisher.id, origin="harvest", source_url=prefix + name)
    data["id"] = old.id if old else str(pkg.get("id") or "") or None
    if data["id"] and local is None and catalog.get(data["id"], ADMIN, ALL_STATES):
        data.pop("id")  # the source's id is taken here: the record gets its own
    return validate(data, site.vocab, f"{prefix}{name}")
