"""Downloads against a running hub (tests/downloads_site.py): every format opens with real
readers and matches the store; versions, caching, gzip, attribution, CSV safety, access levels,
concurrent first requests, bounded memory while streaming, and the catalog's distributions."""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from conftest import hub_server
from downloads_site import BIG_ROWS, FORMATS, Site, serve

from hub.catalog.model import HUB_DOWNLOADS, hub_download_id, stable_id

LICENCE = "http://dcat-ap.de/def/licenses/dl-by-de/2.0"
EXPORTS = {"gpkg", "fgb", "parquet"}
HIDDEN = ("intern", "vertraulich")
KEYS = {"pflege": "id", "flaechen": "name"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from serve(tmp_path_factory.mktemp("downloads") / "project")


def fetch(site: Site, path: str, tmp: Path, **headers: str) -> Path:
    response = site.get(path, headers=headers)
    assert response.status_code == 200, (path, response.text)
    target = tmp / path.rsplit("/", 1)[1].split("?")[0]
    target.write_bytes(response.content)
    return target


def store_table(site: Site, name: str, version: int | None = None) -> tuple[list[dict], np.ndarray]:
    """Attribute rows and geometries of a version as the store holds them."""
    store = site.project.store
    v = store.version(name, version) if version else store.current(name)
    table = pq.read_table(v.data_file)
    rows = table.drop_columns(["geometry", "bbox"]).to_pylist()
    return rows, shapely.from_wkb(table.column("geometry").to_pylist())


def same_value(got: Any, want: Any) -> bool:
    """A value read back (typed, or text from CSV) equals the stored one."""
    if want is None:
        return got is None or got == "" or (isinstance(got, float) and np.isnan(got))
    if isinstance(want, bool):
        return got in (want, str(want).lower(), int(want))
    if isinstance(want, float):
        return abs(float(got) - want) < 1e-9
    if isinstance(want, int):
        return got == want or str(got) == str(want)
    if isinstance(want, dt.date):
        return str(got)[:10] == want.isoformat()
    return got == want


def assert_same(rows: list[dict], got_rows: list[dict], geoms: np.ndarray,
                got_geoms: np.ndarray, key: str | None = None) -> None:
    """Rows and geometries alike, in order, or matched by `key` when the format reorders
    them (FlatGeobuf sorts features along its spatial index)."""
    assert len(got_rows) == len(rows) == len(got_geoms)
    if key is not None:
        want_order = sorted(range(len(rows)), key=lambda i: rows[i][key])
        got_order = sorted(range(len(got_rows)), key=lambda i: got_rows[i][key])
        rows, geoms = [rows[i] for i in want_order], geoms[want_order]
        got_rows, got_geoms = [got_rows[i] for i in got_order], got_geoms[got_order]
    for want, got in zip(rows, got_rows, strict=True):
        for field, value in want.items():
            assert same_value(got[field], value), (field, got[field], value)
    for want, got in zip(geoms, got_geoms, strict=True):
        assert shapely.equals_exact(got, want, tolerance=1e-7), (got, want)


# -- every format opens and round-trips ------------------------------------------------------

@pytest.mark.parametrize("name", ["pflege", "flaechen"])
@pytest.mark.parametrize("ext", ["gpkg", "fgb"])
def test_gdal_formats_round_trip(site: Site, tmp_path: Path, name: str, ext: str) -> None:
    path = fetch(site, f"/downloads/{name}/v1.{ext}", tmp_path)
    rows, geoms = store_table(site, name)
    frame = pyogrio.read_dataframe(path)
    assert frame.crs.to_string() in ("OGC:CRS84", "EPSG:4326")
    got = frame.drop(columns="geometry").to_dict("records")
    for row in got:  # pandas' missing values and timestamps as plain values
        for k, v in row.items():
            if v is not None and not isinstance(v, str) and np.ndim(v) == 0 and \
                    v != v:
                row[k] = None
            elif hasattr(v, "date") and not isinstance(v, dt.date):
                row[k] = v.date()
            elif isinstance(v, np.generic):
                row[k] = v.item()
    assert_same(rows, got, geoms, np.array(frame.geometry), KEYS[name] if ext == "fgb" else None)


@pytest.mark.parametrize("name", ["pflege", "flaechen"])
def test_geoparquet_round_trips(site: Site, tmp_path: Path, name: str) -> None:
    import geopandas

    path = fetch(site, f"/downloads/{name}/latest.parquet", tmp_path)
    rows, geoms = store_table(site, name)
    table = pq.read_table(path)
    assert_same(rows, table.drop_columns(["geometry", "bbox"]).to_pylist(), geoms,
                shapely.from_wkb(table.column("geometry").to_pylist()))
    assert json.loads(table.schema.metadata[b"geo"])["version"] == "1.1.0"
    frame = geopandas.read_parquet(path)  # a valid GeoParquet file for geopandas, too
    assert len(frame) == len(rows) and frame.crs.to_string() in ("OGC:CRS84", "EPSG:4326")


@pytest.mark.parametrize("name", ["pflege", "flaechen"])
def test_geojson_round_trips(site: Site, tmp_path: Path, name: str) -> None:
    path = fetch(site, f"/downloads/{name}/v1.geojson", tmp_path)
    rows, geoms = store_table(site, name)
    doc = json.loads(path.read_bytes())
    features = doc["features"]
    assert doc["type"] == "FeatureCollection" and doc["name"] == name and doc["version"] == 1
    assert_same(rows, [f["properties"] for f in features], geoms,
                np.array([shapely.geometry.shape(f["geometry"]) for f in features]))
    if name == "pflege":  # ids as the OGC API has them: the primary key
        assert [f["id"] for f in features] == [r["id"] for r in rows]
    else:
        assert [f["id"] for f in features] == list(range(1, len(rows) + 1))
    frame = pyogrio.read_dataframe(path)  # GDAL's GeoJSON driver reads it
    assert len(frame) == len(rows)


@pytest.mark.parametrize("name", ["pflege", "flaechen"])
def test_csv_round_trips(site: Site, tmp_path: Path, name: str) -> None:
    path = fetch(site, f"/downloads/{name}/v1.csv", tmp_path)
    rows, geoms = store_table(site, name)
    text = path.read_bytes()
    assert not text.startswith(b"\xef\xbb\xbf") and b"\r\n" in text
    parsed = list(csv.DictReader(io.StringIO(text.decode("utf-8"), newline="")))
    unformula = [{k: v[1:] if v.startswith("'") and v[1:2] in "=+-@\t\r" and v[1:] else v
                  for k, v in r.items()} for r in parsed]
    got_geoms = shapely.from_wkt([r["wkt"] for r in parsed])
    assert_same(rows, unformula, geoms, got_geoms)
    if name == "pflege":  # point layers also have lon/lat
        xy = np.array([[float(r["lon"]), float(r["lat"])] for r in parsed])
        assert np.abs(xy - shapely.get_coordinates(geoms)).max() < 1e-7
    else:
        assert "lon" not in parsed[0]
    frame = pyogrio.read_dataframe(path)  # GDAL's CSV driver takes the WKT column
    assert len(frame) == len(rows)
    assert shapely.equals_exact(np.array(frame.geometry), geoms, tolerance=1e-7).all()


def test_csv_neutralises_formulas_but_keeps_numbers(site: Site) -> None:
    rows, _ = store_table(site, "pflege")
    body = site.get("/downloads/pflege/latest.csv").content.decode()
    parsed = list(csv.DictReader(io.StringIO(body, newline="")))
    by_id = {r["id"]: r for r in parsed}
    risky = [r for r in rows if r["name"] and r["name"][0] in "=+-@\t\r"]
    assert {r["name"][0] for r in risky} >= {"=", "+", "-", "@"}
    for r in risky:
        assert by_id[r["id"]]["name"] == "'" + r["name"]
    hyperlink = next(r for r in parsed if "HYPERLINK" in r["name"])
    assert hyperlink["name"].startswith("'=HYPERLINK(")
    assert next(r for r in parsed if r["name"].startswith("'schon"))["name"] == \
        "'schon ein Apostroph"  # not a formula: left as it is
    negative = [r for r in rows if (r["anteil"] or 0) < 0 and (r["plaetze"] or 0) < 0]
    assert negative
    for r in negative:  # numbers stay numbers, minus and all
        assert float(by_id[r["id"]]["anteil"]) == r["anteil"]
        assert by_id[r["id"]]["plaetze"] == str(r["plaetze"])
    assert any(r["name"] == "Zeile 1\nZeile 2" for r in parsed)  # quoted, line break kept
    tabs = [r for r in rows if r["name"] and r["name"][0] in "\t\r"]
    for r in tabs:
        assert by_id[r["id"]]["name"] == "'" + r["name"]


def test_csv_for_german_excel(site: Site) -> None:
    rows, geoms = store_table(site, "pflege")
    response = site.get("/downloads/pflege/v1.csv", params={"dialect": "excel"})
    assert response.status_code == 200
    assert response.headers["content-location"] == "/downloads/pflege/v1.csv?dialect=excel"
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.DictReader(io.StringIO(raw[3:].decode(), newline=""), delimiter=";"))
    assert len(parsed) == len(rows)
    for want, got in zip(rows, parsed, strict=True):
        if want["anteil"] is not None:
            assert "." not in got["anteil"]
            assert float(got["anteil"].replace(",", ".")) == want["anteil"]
    lon = float(parsed[0]["lon"].replace(",", "."))
    assert abs(lon - shapely.get_x(geoms[0])) < 1e-7
    plain = site.get("/downloads/pflege/v1.csv").headers["etag"]
    assert response.headers["etag"] != plain  # another representation, another tag


# -- attribution ---------------------------------------------------------------------------

def test_licence_and_attribution_travel_with_the_files(site: Site, tmp_path: Path) -> None:
    want = {"license": LICENCE, "attribution": "Testdaten pflege", "title": "Test pflege"}
    gpkg = fetch(site, "/downloads/pflege/v1.gpkg", tmp_path)
    info = pyogrio.read_info(gpkg)
    assert want.items() <= info["layer_metadata"].items()
    with sqlite3.connect(gpkg) as db:
        description, identifier = db.execute(
            "SELECT description, identifier FROM gpkg_contents").fetchone()
        metadata = " ".join(r[0] for r in db.execute("SELECT metadata FROM gpkg_metadata"))
    db.close()
    assert "Testdaten pflege" in description and LICENCE in description
    assert identifier == "Test pflege" and LICENCE in metadata
    fgb = pyogrio.read_info(fetch(site, "/downloads/pflege/v1.fgb", tmp_path))
    meta = fgb["layer_metadata"]  # the title is FlatGeobuf's own header field
    assert meta["license"] == LICENCE and meta["attribution"] == "Testdaten pflege"
    assert meta["TITLE"] == "Test pflege" and "Testdaten pflege" in meta["DESCRIPTION"]
    parquet = pq.read_schema(fetch(site, "/downloads/pflege/v1.parquet", tmp_path)).metadata
    assert {k.encode(): v.encode() for k, v in want.items()}.items() <= parquet.items()
    doc = site.get("/downloads/pflege/v1.geojson").json()
    assert doc["license"] == LICENCE and doc["attribution"] == "Testdaten pflege"
    for ext in FORMATS:  # CSV cannot carry it: every response names the licence
        link = site.head(f"/downloads/pflege/v1.{ext}").headers["link"]
        assert link == f'<{LICENCE}>; rel="license"'


# -- versions, validators, caching --------------------------------------------------------

def test_versions_stay_downloadable_and_latest_follows(site: Site) -> None:
    project = site.project
    first = site.get("/downloads/wechsel/latest.csv")
    assert first.headers["content-location"] == "/downloads/wechsel/v1.csv"
    assert first.headers["cache-control"] == "no-cache"
    source = project.data / "wechsel.csv"
    lines = source.read_text(encoding="utf-8").splitlines()
    source.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")  # header + 3 rows
    assert project.ingest("wechsel").status == "committed"
    for ext in FORMATS:
        old = site.get(f"/downloads/wechsel/v1.{ext}")
        new = site.get(f"/downloads/wechsel/v2.{ext}")
        latest = site.get(f"/downloads/wechsel/latest.{ext}")
        assert old.status_code == new.status_code == latest.status_code == 200
        assert latest.content == new.content != old.content
        assert latest.headers["etag"] == new.headers["etag"] != old.headers["etag"]
        assert old.headers["content-disposition"] == \
            f'attachment; filename="wechsel-v1.{ext}"'
        assert latest.headers["content-disposition"] == \
            f'attachment; filename="wechsel-v2.{ext}"'
        assert old.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert latest.headers["cache-control"] == "no-cache"
    assert len(site.get("/downloads/wechsel/v1.geojson").json()["features"]) == 6
    assert len(site.get("/downloads/wechsel/latest.geojson").json()["features"]) == 3
    listing = site.get("/downloads/wechsel").json()
    assert listing["current"] == 2 and [v["version"] for v in listing["versions"]] == [2, 1]
    # the retention policy removes v1's files: its URLs say so (410), latest still works
    assert project.store.apply_retention("wechsel", 1) == [1]
    gone = site.get("/downloads/wechsel/v1.gpkg")
    assert gone.status_code == 410 and "retention" in gone.json()["detail"]
    assert site.get("/downloads/wechsel/latest.gpkg").status_code == 200


@pytest.mark.parametrize("ext", FORMATS)
def test_conditional_requests_and_head(site: Site, ext: str) -> None:
    url = f"/downloads/pflege/v1.{ext}"
    full = site.get(url)
    tag, modified = full.headers["etag"], full.headers["last-modified"]
    assert full.headers["content-type"].startswith(
        {"geojson": "application/geo+json", "csv": "text/csv; charset=utf-8",
         "gpkg": "application/geopackage+sqlite3", "parquet": "application/vnd.apache.parquet",
         "fgb": "application/flatgeobuf"}[ext])
    version = site.project.store.version("pflege", 1)
    assert tag.startswith(f'"{version.checksum[:20]}.v1.{ext}.')
    finished = dt.datetime.fromisoformat(version.finished.replace("Z", "+00:00"))
    assert modified == finished.strftime("%a, %d %b %Y %H:%M:%S GMT")
    for method in (site.get, site.head):
        for headers in ({"If-None-Match": tag}, {"If-None-Match": f'"x", W/{tag}'},
                        {"If-None-Match": "*"}, {"If-Modified-Since": modified},
                        {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
            again = method(url, headers=headers)
            assert again.status_code == 304 and again.content == b"", headers
            assert again.headers["etag"] == tag
            assert again.headers["cache-control"] == "public, max-age=31536000, immutable"
        for headers in ({"If-None-Match": '"other"'},
                        {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
                        {"If-Modified-Since": "kein Datum"},
                        # If-None-Match wins over If-Modified-Since (RFC 9110)
                        {"If-None-Match": '"other"', "If-Modified-Since": modified}):
            assert method(url, headers=headers).status_code == 200, headers
    head = site.head(url)
    assert head.status_code == 200 and head.content == b""
    for key in ("etag", "last-modified", "cache-control", "content-disposition",
                "content-type"):
        assert head.headers[key] == full.headers[key]
    if ext in EXPORTS:  # files: length and byte ranges
        assert int(head.headers["content-length"]) == len(full.content)
        part = site.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == full.content[100:200]
        stale = site.get(url, headers={"Range": "bytes=100-199", "If-Range": '"old"'})
        assert stale.status_code == 200 and stale.content == full.content


@pytest.mark.parametrize("ext", ["geojson", "csv"])
def test_gzip_for_text_formats(site: Site, ext: str) -> None:
    url = f"/downloads/gross/v1.{ext}"
    plain = site.client.get(site.base + url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with site.client.stream("GET", site.base + url,
                            headers={"Accept-Encoding": "gzip"}) as packed:
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["vary"] == "Accept-Encoding"
        raw = b"".join(packed.iter_raw())
    assert len(raw) < len(plain.content) / 3
    assert gzip.decompress(raw) == plain.content
    assert packed.headers["etag"] != plain.headers["etag"]
    # compressed once per version (and dialect), kept beside the exports, served as a file
    exports = site.project.store.version("gross", 1).path / "exports"
    [kept] = exports.glob(f"*.{'default.' if ext == 'csv' else ''}{ext}.gz")
    assert kept.read_bytes() == raw and packed.headers["content-length"] == str(len(raw))
    assert packed.headers["accept-ranges"] == "bytes"
    if ext == "csv":
        excel = site.client.get(site.base + url + "?dialect=excel",
                                headers={"Accept-Encoding": "identity"})
        with site.client.stream("GET", site.base + url + "?dialect=excel",
                                headers={"Accept-Encoding": "gzip"}) as packed_excel:
            assert gzip.decompress(b"".join(packed_excel.iter_raw())) == excel.content
        assert excel.content != plain.content and len(list(exports.glob("*.excel.csv.gz"))) == 1
    refused = site.client.get(site.base + url, headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "content-encoding" not in refused.headers
    again = site.client.get(site.base + url, headers={"Accept-Encoding": "gzip",
                                                      "If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304


def test_files_are_not_gzipped(site: Site) -> None:
    for ext in EXPORTS:
        response = site.client.get(site.base + f"/downloads/pflege/v1.{ext}",
                                   headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in response.headers
        assert response.headers["accept-ranges"] == "bytes"


# -- access levels and bad input ----------------------------------------------------------

def _urls(name: str) -> list[str]:
    return [f"/downloads/{name}/{label}.{ext}" for ext in FORMATS for label in ("latest", "v1")
            ] + [f"/downloads/{name}", f"/downloads/{name}/", f"/downloads/{name}/v1.csv"
                 "?dialect=excel"]


def test_hidden_datasets_answer_like_unknown_ones(site: Site) -> None:
    staff = {"Authorization": site.tokens["staff"]}
    variants: list[dict[str, str]] = [{}, {"If-None-Match": "*"},
                                      {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
                                      {"Accept-Encoding": "gzip"}]
    for hidden in HIDDEN:
        for url in _urls(hidden):
            unknown_url = url.replace(f"/{hidden}", "/gibt-es-nicht")
            for headers in variants:
                for method in (site.get, site.head):
                    got = method(url, headers=headers)
                    unknown = method(unknown_url, headers=headers)
                    assert got.status_code == unknown.status_code == 404, (url, headers)
                    assert got.content.replace(hidden.encode(), b"X") == \
                        unknown.content.replace(b"gibt-es-nicht", b"X")
                    assert {k for k in got.headers if k != "content-length"} == \
                        {k for k in unknown.headers if k != "content-length"}
    # staff see internal data; restricted data only the named organisation's staff (and admins)
    other = {"Authorization": site.tokens["other"]}
    for url in _urls("vertraulich"):
        assert site.get(url, headers=other).status_code == 404, url
    assert site.get("/downloads/intern/latest.csv", headers=other).status_code == 200
    admin = {"Authorization": f"Bearer {site.tokens['admin']}"}
    for hidden in HIDDEN:
        for url in _urls(hidden):
            for who in (staff, admin):
                response = site.get(url, headers=who)
                assert response.status_code == 200, url
                if "latest" in url or "/v1." in url:
                    assert response.headers["cache-control"] == "private, no-store"
    assert site.get("/downloads/intern/v1.csv",
                    headers={"Authorization": "falsch"}).status_code == 403


@pytest.mark.parametrize("path", [
    "v0.csv", "v-1.csv", "vabc.csv", "v01.csv", "v.csv", "v1", "v1.", ".csv", "latest",
    "v1.CSV", "latest.xlsx", "v1.csv.gz", "v99999999999999999999999.csv", "v1e3.csv",
    "v123456789012345678.geojson", "v9223372036854775807.csv", "%00.csv", "v1.csv%00",
    "latest.geojson.", "v2.gpkg",
])
def test_bad_file_names_are_404_with_a_reason(site: Site, path: str) -> None:
    response = site.get(f"/downloads/pflege/{path}")
    assert response.status_code == 404, (path, response.text)
    assert response.json()["detail"]


@pytest.mark.parametrize("query", ["?dialect=fancy", "?dialect=excel&x=1", "?limit=5",
                                   "?f=json", "?dialect="])
def test_bad_parameters_are_400(site: Site, query: str) -> None:
    for ext in ("csv", "gpkg"):
        response = site.get(f"/downloads/pflege/v1.{ext}{query}")
        assert response.status_code == 400, (ext, query)
        assert response.json()["detail"]


# -- concurrency and memory -----------------------------------------------------------------

def test_concurrent_first_requests_get_one_complete_file(site: Site, tmp_path: Path) -> None:
    version = site.project.store.current("gleichzeitig")
    exports = version.path / "exports"
    assert not exports.exists() or not list(exports.glob("*.gpkg"))  # not built yet

    def download(i: int) -> bytes:
        return site.client.get(site.base + "/downloads/gleichzeitig/v1.gpkg").content

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(download, range(8)))
    digests = {hashlib.sha256(b).hexdigest() for b in bodies}
    assert len(digests) == 1
    path = tmp_path / "g.gpkg"
    path.write_bytes(bodies[0])
    assert pyogrio.read_info(path)["features"] == version.rows == 60_000
    [built] = [p.name for p in exports.iterdir() if p.suffix == ".gpkg"]
    assert sorted(p.name for p in exports.iterdir()) == [built, built + ".sha256"]  # no .tmp-*


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@contextlib.contextmanager
def _highest_rss(pid: int) -> Iterator[list[int]]:
    """The highest resident set size of `pid` seen while the block runs (sampled from /proc
    every millisecond), as the one item of the yielded list."""
    seen, stop = [_rss_kib(pid)], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen[0] = max(seen[0], _rss_kib(pid))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield seen
    finally:
        stop.set()
        sampler.join()


def _stream(client: httpx.Client, url: str) -> int:
    size = 0
    with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            size += len(chunk)
    return size


@pytest.mark.parametrize("ext", ["geojson", "csv"])
def test_streaming_keeps_server_memory_flat(site: Site, ext: str) -> None:
    """A 200,000-row layer streams through batches of a few MB. Measured in a fresh server
    process that has never sent it: warmed up with the 60,000-row layer in the same format
    (the allocator's arenas and one batch's buffers, about 30 MB once per process), then its
    resident memory, sampled from /proc while the big document is sent, stays within a few MB
    of the value before. A server holding the document grows by more than the difference of
    the two documents (13 MB of CSV, 23 MB of GeoJSON) plus the rows' table: +40 MiB for CSV
    when the chunks are joined before sending, +9 MiB streamed."""
    with hub_server(site.project.root, site.project.store_dir) as server, \
            httpx.Client(timeout=120) as client:
        warm = _stream(client, f"{server.url}/downloads/gleichzeitig/latest.{ext}")
        before = _rss_kib(server.pid)
        with _highest_rss(server.pid) as peak:
            size = _stream(client, f"{server.url}/downloads/gross/latest.{ext}")
    growth_mib = (peak[0] - before) / 1024
    assert size > 2 * warm and size - warm > (12 << 20)  # 19 MB of CSV, 38 MB of GeoJSON
    assert growth_mib < 15, f"server memory grew by {growth_mib:.0f} MiB for {size} bytes"
    assert BIG_ROWS == 200_000


# -- the catalog lists the downloads --------------------------------------------------------

def test_catalog_offers_every_format_and_the_ogc_api(site: Site) -> None:
    package = site.get("/api/3/action/package_show", params={"id": "pflege"}).json()["result"]
    record_id = stable_id("pflege")
    ours = {r["id"]: r for r in package["resources"]}
    assert set(ours) == {hub_download_id(record_id, kind) for kind in HUB_DOWNLOADS}
    for ext in FORMATS:
        resource = ours[hub_download_id(record_id, ext)]
        assert resource["url"] == f"{site.base}/downloads/pflege/latest.{ext}"
        response = site.head(resource["url"].removeprefix(site.base))
        assert response.status_code == 200
        if resource["mimetype"]:
            assert response.headers["content-type"].startswith(resource["mimetype"])
    api = ours[hub_download_id(record_id, "ogc")]
    assert api["url"] == f"{site.base}/ogc/collections/pflege" and api["resource_type"] == "api"
    assert site.get("/ogc/collections/pflege").status_code == 200
    turtle = site.get(f"/dataset/{record_id}.ttl").text
    for ext in FORMATS:
        assert f"<{site.base}/downloads/pflege/latest.{ext}>" in turtle
    page = site.get("/datasets/pflege").text
    assert "/downloads/pflege/latest.gpkg" in page and "dialect=excel" in page


# -- OGC API validators -------------------------------------------------------------------

def test_ogc_api_answers_304_while_the_version_holds(site: Site) -> None:
    items = site.get("/ogc/collections/pflege/items", params={"limit": 5})
    tag = items.headers["etag"]
    assert tag.startswith('W/"') and items.headers["cache-control"] == "no-cache"
    again = site.get("/ogc/collections/pflege/items", params={"limit": 5},
                     headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    other = site.get("/ogc/collections/pflege/items", params={"limit": 6},
                     headers={"If-None-Match": tag})
    assert other.status_code == 200  # another page, another tag
    feature = site.get("/ogc/collections/pflege/items/P0002")
    assert site.get("/ogc/collections/pflege/items/P0002",
                    headers={"If-None-Match": feature.headers["etag"]}).status_code == 304
    for path in ("/ogc/", "/ogc/collections", "/ogc/collections/pflege", "/ogc/conformance",
                 "/ogc/collections/pflege/queryables", "/ogc/api"):
        first = site.get(path)
        assert first.headers["cache-control"] == "no-cache" and first.headers["etag"], path
        assert site.get(path, headers={"If-None-Match": first.headers["etag"]}
                        ).status_code == 304, path
    staff = {"Authorization": site.tokens["staff"]}
    hidden = site.get("/ogc/collections/intern/items", headers=staff)
    assert hidden.status_code == 200 and hidden.headers["cache-control"] == "private, no-store"
    assert site.get("/ogc/collections", headers=staff).headers["cache-control"] == \
        "private, no-cache"
    assert site.get("/ogc/collections/intern/items",
                    headers={"If-None-Match": hidden.headers["etag"]}).status_code == 404


def test_ogc_items_change_tag_with_a_new_version(site: Site) -> None:
    before = site.get("/ogc/collections/flaechen/items")
    project = site.project
    assert project.ingest("flaechen", force=True).status == "committed"
    after = site.get("/ogc/collections/flaechen/items",
                     headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]


def test_the_stricter_of_pipeline_and_catalog_access_is_in_force(site: Site) -> None:
    """`zweifel` is public by its pipeline but internal by its catalog record."""
    staff = {"Authorization": site.tokens["staff"]}
    for url in ("/downloads/zweifel/latest.csv", "/ogc/collections/zweifel",
                "/ogc/collections/zweifel/items", "/api/datasets/zweifel"):
        assert site.get(url).status_code == 404, url
        if not url.startswith("/api/"):
            assert site.get(url, headers=staff).status_code == 200, url
    listed = site.get("/ogc/collections").json()["collections"]
    assert "zweifel" not in {c["id"] for c in listed}
    assert "zweifel" in {c["id"] for c in site.get("/ogc/collections",
                                                   headers=staff).json()["collections"]}
    assert site.get("/downloads/zweifel/latest.csv", headers=staff).headers[
        "cache-control"] == "private, no-store"
