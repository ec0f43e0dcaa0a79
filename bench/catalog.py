"""Catalog: search and DCAT-AP.de export over a seeded catalog of 10,000 datasets.

`catalog-search`  p50/p95 per query, in-process, over a mix of free-text, facet, bbox and
                  sorted queries for an anonymous visitor and a member of staff; the baseline is
                  a naive scan (fold every record's text, test every filter) of the same records.
`catalog-export`  a full Turtle export of 10,000 public datasets (the hub's streamed writer);
                  the baseline is rdflib's Turtle serializer, timed on the first 1,000 datasets
                  because it needs minutes for all of them, and compared per dataset.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import ROOT, Result, judge

CASES = {
    "catalog-search": "10k datasets: p50/p95 of mixed search queries; hub vs naive scan",
    "catalog-export": "10k public datasets → Turtle; hub's streamed writer vs rdflib",
}
LARGE: frozenset[str] = frozenset()
WORDS = ("Pflege", "Schule", "Radweg", "Ladesäule", "Bebauungsplan", "Friedhof", "Spielplatz",
         "Badestelle", "Wahl", "Haushalt", "Baum", "Straße", "Denkmal", "Gewerbe", "Feuerwehr",
         "Abfall", "Einwohner", "Kita", "Jugend", "Sport")


def run(cases: list[str], args: argparse.Namespace) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    try:
        results: list[Result] = []
        if "catalog-search" in cases:
            results += _search(work / "search")
        if "catalog-export" in cases:
            results += _export(work / "export")
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _catalog(root: Path, n: int, public_share: float) -> tuple[Any, Any, Any, list[Any]]:
    from hub.catalog import open_catalog
    from hub.catalog.model import validate
    from hub.config import load_settings

    shutil.copytree(ROOT / "catalog", root / "catalog")
    catalog, vocab, district = open_catalog(load_settings(root, root / "store"))
    rng = random.Random(20261123)
    orgs = sorted(vocab.organizations)
    records = []
    for i in range(n):
        w = rng.sample(WORDS, 3)
        minx, miny = rng.uniform(13.0, 13.8), rng.uniform(51.3, 51.8)
        access = "public" if rng.random() < public_share else rng.choice(["internal",
                                                                          "restricted"])
        records.append(validate({
            "name": f"ds-{i}", "title": f"{w[0]}einrichtungen {w[1]} {i}",
            "description": f"Daten zu {w[0]}, {w[1]} und {w[2]} im Landkreis. " * 3,
            "publisher": rng.choice(orgs), "access": access, "restricted_to": [rng.choice(orgs)],
            "license": rng.choice(["dl-by-de/2.0", "dl-zero-de/2.0", "cc-by/4.0"]),
            "themes": [rng.choice(vocab.themes.codes())],
            "frequency": rng.choice(["MONTHLY", "ANNUAL", "IRREG"]), "keywords": w,
            "spatial_ags": ["12062"], "bbox": [minx, miny, minx + 0.05, miny + 0.05],
            "modified": f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}",
            "distributions": [{"url": f"https://example.org/{i}.csv", "format": "CSV"}]},
            vocab))
    catalog.upsert_many(records)
    return catalog, vocab, district, records


def _percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95)]


def _search(root: Path) -> list[Result]:
    from hub.access import ANONYMOUS, Viewer
    from hub.catalog.index import Query, stem, words

    catalog, vocab, _, records = _catalog(root, 10_000, 0.6)
    staff = Viewer(staff=True, organization=sorted(vocab.organizations)[3])
    queries = [Query(q="pflege"), Query(q="Ladesaeule"), Query(filters={"theme": ["TRAN"]}),
               Query(bbox=(13.2, 51.4, 13.3, 51.5)), Query(q="schule",
                                                           filters={"license": ["cc-by/4.0"]}),
               Query(q="friedhof", sort="modified"), Query(), Query(q="bebauungsplan spielplatz")]

    def naive(query: Query, viewer: Any) -> int:
        tokens = [stem(t) for t in words(query.q)]
        hits = []
        for r in records:
            if not r.visible_to(viewer):
                continue
            text = words(" ".join([r.title, r.description, *r.keywords]))
            if tokens and not all(any(w.startswith(t) for w in text) for t in tokens):
                continue
            if any((f == "theme" and not set(v) & set(r.themes))
                   or (f == "license" and r.license not in v)
                   for f, v in query.filters.items()):
                continue
            if query.bbox and not (r.bbox[2] >= query.bbox[0] and r.bbox[0] <= query.bbox[2]
                                   and r.bbox[3] >= query.bbox[1] and r.bbox[1] <= query.bbox[3]):
                continue
            hits.append(r)
        counts: dict[tuple[str, str], int] = {}
        for r in hits:
            for key in [("organization", r.publisher), ("license", r.license), *(
                    ("theme", t) for t in r.themes)]:
                counts[key] = counts.get(key, 0) + 1
        return len(hits)

    hub_times, naive_times = [], []
    for _ in range(15):
        for query in queries:
            for viewer in (ANONYMOUS, staff):
                start = time.perf_counter()
                catalog.search(query, viewer)
                hub_times.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                naive(query, viewer)
                naive_times.append((time.perf_counter() - start) * 1000)
    (h50, h95), (n50, n95) = _percentiles(hub_times), _percentiles(naive_times)
    target50, ok50 = judge(("hub p50 ≤ 5 ms", h50 <= 5))
    target95, ok95 = judge(("hub p95 ≤ 15 ms", h95 <= 15))
    note = f"{len(hub_times)} queries, 10,000 datasets, anonymous and staff"
    return [Result("catalog-search", "p50 per query", "ms", h50, n50, n50 / h50,
                   "baseline/hub", target50, ok50, note=note),
            Result("catalog-search", "p95 per query", "ms", h95, n95, n95 / h95,
                   "baseline/hub", target95, ok95, note=note)]


def _export(root: Path) -> list[Result]:
    from hub.catalog.dcat import Context, catalog_page, catalog_triples, serialize, turtle

    catalog, vocab, district, _ = _catalog(root, 10_000, 1.0)
    ctx = Context("https://daten.example.org", vocab, district.name, district.ags,
                  district.org, district.contributor_id)
    start = time.perf_counter()
    size = sum(len(chunk) for chunk in turtle(catalog_triples(catalog, ctx, 1, 10_000)))
    hub_s = time.perf_counter() - start
    start = time.perf_counter()
    hub_1k = sum(len(c) for c in turtle(catalog_triples(catalog, ctx, 1, 1_000)))
    hub_1k_s = time.perf_counter() - start
    start = time.perf_counter()
    serialize(catalog_page(catalog, ctx, 1, 1_000), "ttl")
    rdflib_1k_s = time.perf_counter() - start
    target, ok = judge(("hub ≤ 5 s for 10,000 datasets", hub_s <= 5))
    return [Result("catalog-export", "Turtle, 10,000 datasets", "s", hub_s, None, None, "",
                   target, ok, note=f"{size / 2**20:.0f} MiB"),
            Result("catalog-export", "Turtle, 1,000 datasets", "s", hub_1k_s, rdflib_1k_s,
                   rdflib_1k_s / hub_1k_s, "baseline/hub", "", None,
                   note=f"baseline: rdflib Graph.serialize; {hub_1k / 2**20:.1f} MiB")]
