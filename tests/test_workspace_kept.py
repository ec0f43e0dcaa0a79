"""What the workspace keeps between requests (`hub/web/workspace/kept.py`: the dashboard's rows
and tables, the to-do list, usage and the quarterly report, kept per database mark and viewer)
on a real `hub serve` with a real HTTP client (tests/ckan_project.py: admin ann, editors sam
(sozialamt) and kat (kataster-vermessung)): each viewer sees only the own rows however the
pages are asked for in turn, and a change of a record, of a dataset's version, of the audit
trail or of the usage counts shows on the very next request."""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ckan_project import build, run_hub
from conftest import hub_server
from test_workspace_audit import PASSWORD, signed_in

from hub import audit, usage
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.config import load_settings

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
YESTERDAY = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
SOZIAL = "Zuckerwatte Verkaufsstände (intern)"  # sozialamt's, internal
KATASTER = "Stadtplan Finsterwalde"  # kataster-vermessung's, public
ELSEWHERE = "Zuckerwatte Hilfeempfänger"  # umweltamt's, restricted to sozialamt


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("ws-kept")
    tokens = build(root)
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    for user in ("ann", "sam", "kat"):
        accounts.set_password(user, PASSWORD)
    usage.save(catalog.store.db, collections.Counter({  # so the usage CSV has their rows
        (YESTERDAY, "zuckerwatte-intern", "view"): 7, (YESTERDAY, "zuckerwatte-sozial", "api"): 11,
        (YESTERDAY, "stadtplan-finsterwalde", "tile"): 40}))
    with hub_server(root) as server, contextlib.ExitStack() as clients:
        yield {"root": root, "url": server.url, "tokens": tokens, "db": catalog.store.db,
               "as": {user: clients.enter_context(signed_in(server.url, user))
                      for user in ("ann", "sam", "kat")}}


def page(client: httpx.Client, path: str, **params: str) -> str:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return answer.text


def report(client: httpx.Client) -> dict[tuple[str, str], int]:
    rows = csv.DictReader(io.StringIO(page(client, "/arbeitsbereich/bericht.csv")))
    return {(r["section"], r["key"]): int(r["value"]) for r in rows}


def test_each_viewer_sees_the_own_rows_asked_in_any_order(site: dict) -> None:
    """The same pages, asked by three viewers in turn (so each is answered from what was
    kept for another just before): never a row of another organisation."""
    ann, sam, kat = (site["as"][u] for u in ("ann", "sam", "kat"))
    for _ in range(2):
        for who, shown, hidden in ((ann, (SOZIAL, KATASTER, ELSEWHERE), ()),
                                   (sam, (SOZIAL,), (KATASTER, ELSEWHERE)),
                                   (kat, (KATASTER,), (SOZIAL, ELSEWHERE))):
            for path in ("/arbeitsbereich", "/arbeitsbereich/nutzung",
                         "/arbeitsbereich/nutzung.csv"):
                text = page(who, path)
                assert all(title in text for title in shown), (path, shown)
                assert not any(title in text for title in hidden), (path, hidden)
    assert sam.get("/arbeitsbereich/bericht").status_code == 403  # admins only, kept or not
    assert sam.get("/arbeitsbereich/nutzung", params={"datensatz": "stadtplan-finsterwalde"}
                   ).status_code == 404
    assert KATASTER in page(kat, "/arbeitsbereich/nutzung", datensatz="stadtplan-finsterwalde")


def test_a_changed_record_shows_on_the_next_request(site: dict) -> None:
    ann, kat = site["as"]["ann"], site["as"]["kat"]
    before = report(ann)
    for who in (ann, kat):  # kept now
        assert KATASTER in page(who, "/arbeitsbereich")
    ckan = httpx.post(site["url"] + "/api/3/action/package_patch",
                      headers={"Authorization": site["tokens"]["kat"]},
                      json={"id": "stadtplan-finsterwalde", "title": "Stadtplan Finsterwalde neu"})
    assert ckan.status_code == 200, ckan.text[:300]
    for who in (ann, kat):
        text = page(who, "/arbeitsbereich")
        assert "Stadtplan Finsterwalde neu" in text
        assert "Stadtplan Finsterwalde neu" in page(who, "/arbeitsbereich/nutzung")
    after = report(ann)  # a record changed this quarter: counted as updated (or added)
    assert "Stadtplan Finsterwalde neu" in page(ann, "/arbeitsbereich/bericht")
    assert after[("datasets", "updated")] + after[("datasets", "added")] >= \
        before[("datasets", "updated")] + before[("datasets", "added")]


def test_a_new_version_shows_on_the_next_request(site: dict) -> None:
    ann = site["as"]["ann"]
    root = site["root"]

    def version() -> str:
        found = re.search(r'datensaetze/gemeinden">[^<]*</a></td>\s*<td>[^<]*</td>\s*'
                          r'<td>Version (\d+)', page(ann, "/arbeitsbereich"))
        assert found, "no version on the dashboard's row of gemeinden"
        return found.group(1)

    first, versions = version(), report(ann)[("datasets", "new_versions")]
    source = root / "pipelines" / "data" / "real" / "bkg-vg5000-2021" / \
        "vg5000_gemeinden_bb.geojson"
    data = json.loads(source.read_text(encoding="utf-8"))
    district = [f for f in data["features"] if f["properties"]["AGS"].startswith("12062")]
    data["features"] = [f for f in data["features"] if f is not district[0]]
    source.write_text(json.dumps(data), encoding="utf-8")  # one municipality less
    run_hub(root, "ingest", "gemeinden")
    assert version() == str(int(first) + 1)
    assert report(ann)[("datasets", "new_versions")] == versions + 1
    run_hub(root, "rollback", "gemeinden", first)
    assert version() == first


def test_a_new_audit_entry_and_new_counts_show_on_the_next_request(site: dict) -> None:
    ann, sam = site["as"]["ann"], site["as"]["sam"]
    db = site["db"]
    before = report(ann)  # kept now
    audit.record(db, actor="ann", action="publication.approve",
                 subject="zuckerwatte-kataster", after={"access": "public"})
    assert report(ann)[("datasets", "published")] == before[("datasets", "published")] + 1

    def views(client: httpx.Client) -> int:
        rows = csv.DictReader(io.StringIO(page(client, "/arbeitsbereich/nutzung.csv")))
        return sum(int(r["view"]) for r in rows if r["dataset"] == "zuckerwatte-intern"
                   and r["day"] == TODAY)

    counted, themes = views(sam), before[("theme_view", "SOCI")]
    page(sam, "/arbeitsbereich/nutzung")  # kept
    usage.save(db, collections.Counter({(TODAY, "zuckerwatte-intern", "view"): 5}))
    assert views(sam) == counted + 5
    assert report(ann)[("theme_view", "SOCI")] == themes + 5
