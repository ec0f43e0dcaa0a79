"""Publishing: push the district's public, curated datasets into another CKAN (a state portal).

By name: a dataset missing there is created, one that differs is updated, one that matches is
left alone, so a second run changes nothing. Licences and groups are mapped onto what the
target offers (its `license_list` and `group_list`); distributions are linked to the hub's
URLs. Only records the public may see are ever sent; harvested ones are not re-published.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.access import ANONYMOUS
from hub.api.ckan import packages as dicts
from hub.api.ckan.client import Remote, RemoteError
from hub.catalog.index import Catalog, Query
from hub.catalog.model import Record
from hub.catalog.vocab import Vocabularies

_TAG_BAD = re.compile(r"[^\w \-.]+")  # CKAN's tag rule: letters, digits, space, - _ .
# extras the target derives or keeps for itself (provenance of its own harvests)
_THEIRS = (*dicts.DERIVED_EXTRAS, "metadata_original_html")


@dataclass
class Outcome:
    name: str
    result: str  # created | updated | unchanged | failed
    reason: str = ""


@dataclass
class Target:
    """What the other CKAN offers, read once per run."""

    remote: Remote
    licences: dict[str, str]  # our licence code -> their licence id
    groups: dict[str, str]  # our theme code -> their group name
    org: str | None  # their organisation for every dataset, or None: the publisher's name

    @classmethod
    def read(cls, remote: Remote, site: dicts.Site, org: str | None) -> Target:
        licences: dict[str, str] = {}
        offered = remote.call("license_list") or []
        # active ones first: GovData lists older spellings (…/dl-by-de/2_0) as "inactive"
        for lic in sorted(offered, key=lambda lic: lic.get("status", "active") != "active"):
            for key in (lic.get("id"), lic.get("url"), lic.get("title")):
                term = site.vocab.licenses.find(str(key or ""))
                if term is not None:
                    licences.setdefault(term.code, lic["id"])
                    break
        groups: dict[str, str] = {}
        for g in remote.call("group_list", all_fields=True, limit=1000) or []:
            for key in (g.get("name"), g.get("title"), g.get("display_name")):
                term = dicts.find_group(str(key or ""), site.vocab)
                if term is not None:
                    groups.setdefault(term.code, g["name"])
                    break
        if org is not None and remote.call("organization_show", id=org) is None:
            raise RemoteError(f"{remote.url} has no organization {org!r}")
        return cls(remote, licences, groups, org)


def desired(record: Record, site: dicts.Site, target: Target) -> dict[str, Any]:
    """The package the target should hold for a record (raises ValueError if it cannot)."""
    if record.access != "public" or record.state != "active":
        raise ValueError("only public, active datasets are published")
    ours = dicts.package(record, site)
    licence = target.licences.get(record.license)
    if licence is None:
        raise ValueError(f"the target offers no licence matching {record.license!r}")
    tags = {re.sub(r"\s+", " ", _TAG_BAD.sub(" ", t["name"])).strip() for t in ours["tags"]}
    return {  # the id too: CKAN keeps it when a sysadmin creates, so both sides share it
        **{k: ours[k] for k in ("id", "name", "title", "notes", "url", "version", "author",
                                "author_email", "maintainer", "maintainer_email")},
        "license_id": licence, "owner_org": target.org or record.publisher, "private": False,
        "tags": [{"name": t} for t in sorted(tags) if 2 <= len(t) <= 100],
        "groups": [{"name": g} for g in dict.fromkeys(  # CKAN keeps a group once
            target.groups[c] for c in record.themes if c in target.groups)],
        "extras": [e for e in ours["extras"] if e["key"] not in dicts.DERIVED_EXTRAS],
        "resources": [{k: r[k] for k in ("url", "name", "format", "description", "mimetype")}
                      for r in ours["resources"]],
    }


def _comparable(pkg: dict[str, Any], vocab: Vocabularies, org_name: str | None = None
                ) -> dict[str, Any]:
    """The fields publishing manages, in a form both sides can be compared in (CKAN rewrites
    resource formats to its own spelling, `GEOJSON` → `GeoJSON`: formats compare by the
    vocabulary's code)."""
    return {
        **{k: pkg.get(k) or None for k in ("name", "title", "notes", "url", "version",
                                           "author", "author_email", "maintainer",
                                           "maintainer_email", "license_id")},
        "org": org_name or (pkg.get("organization") or {}).get("name"),
        "private": bool(pkg.get("private")),
        "tags": sorted(t["name"] for t in pkg.get("tags") or []),
        "groups": sorted(g["name"] for g in pkg.get("groups") or []),
        "extras": {e["key"]: e["value"] for e in pkg.get("extras") or []
                   if e["key"] not in _THEIRS},
        "resources": [(r.get("url") or None, r.get("name") or None,
                       _format_code(str(r.get("format") or ""), vocab),
                       r.get("description") or None) for r in pkg.get("resources") or []],
    }


def _format_code(fmt: str, vocab: Vocabularies) -> str | None:
    term = vocab.formats.find(fmt)
    return term.code if term is not None else fmt.casefold() or None


def publish(catalog: Catalog, site: dicts.Site, remote: Remote, org: str | None = None,
            dry_run: bool = False, progress: Callable[[str], None] | None = None
            ) -> list[Outcome]:
    """Push every public, active record that was not harvested; one outcome per record."""
    target = Target.read(remote, site, org)
    records = [r for r in catalog.search(Query(sort="name", rows=1 << 30, facets=()),
                                         ANONYMOUS).records if r.origin != "harvest"]
    outcomes = []
    for record in records:
        outcomes.append(_push(record, site, target, dry_run))
        if progress:
            progress(record.name)
    return outcomes


def _push(record: Record, site: dicts.Site, target: Target, dry_run: bool) -> Outcome:
    try:
        want = desired(record, site, target)
    except ValueError as exc:
        return Outcome(record.name, "failed", str(exc))
    try:
        have = target.remote.call("package_show", id=record.name)
        if have is None:
            if not dry_run:
                target.remote.call("package_create", **want)
            return Outcome(record.name, "created")
        if _comparable(have, site.vocab) == _comparable(want, site.vocab, want["owner_org"]):
            return Outcome(record.name, "unchanged")
        ids = {r.get("url"): r.get("id") for r in have.get("resources") or []}
        want["resources"] = [{**r, **({"id": ids[r["url"]]} if r["url"] in ids else {})}
                             for r in want["resources"]]
        if not dry_run:
            target.remote.call("package_update", **{**want, "id": have["id"]})
        return Outcome(record.name, "updated")
    except RemoteError as exc:
        return Outcome(record.name, "failed", str(exc))
