"""Answers per place (hub.places) through the JSON API of a real `hub serve`: the 33
municipalities of the real BKG boundaries with their slugs, place search, answers for a place
and for a point (checked against distances and nearest items worked out here, with the
haversine formula, not with the hub's code), sources, access, a new version, bad input.

The project: the repository's `gemeinden` pipeline (real VG5000 polygons), a small care
dataset (internal: staff only), mobility stations and the per-municipality broadband aggregate
in the schema agreed with the derived-datasets work (made here by a test pipeline from CSV
with WKT polygons).
"""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
import yaml
from conftest import DISTRICT_BBOX, REPO, Project, hub_server

STAFF_ORG = "sozialamt"
CARE_TYPES = ("Tagespflege", "Hospiz", "ambulanter Pflegedienst", "Pflegestützpunkt")
FAR_CHARGER = (13.83, 51.83)  # north-east corner of the district: > 30 km from Bad Liebenwerda


@dataclass
class PlacesSite:
    url: str
    project: Project
    staff: str  # a viewer's token (organisation sozialamt)
    municipalities: dict[str, tuple[str, Any]]  # ags -> (name, polygon)

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": token} if token else {}
        return httpx.get(self.url + path, params=params, headers=headers, timeout=60)


def haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Metres on a sphere of the earth's mean radius (within 0.5 % of the geodesic)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def close(metres: float, expected: float) -> bool:
    return abs(metres - expected) <= 0.005 * expected + 1


# -- the project ---------------------------------------------------------------------------

def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def care_rows(municipalities: dict[str, tuple[str, Any]], shift: float = 0.0
              ) -> list[dict[str, Any]]:
    """Services around each municipality's surface point; postcodes 04900 + n (Bad
    Liebenwerda: 04924); `shift` moves every service (a new version)."""
    rows = []
    for n, (ags, (name, polygon)) in enumerate(sorted(municipalities.items())):
        point = shapely.point_on_surface(polygon)
        plz = "04924" if name == "Bad Liebenwerda" else f"049{n + 30:02d}"
        for k in range(2):
            rows.append({
                "name": f"{CARE_TYPES[(n + k) % 4]} {name} {k}", "art": CARE_TYPES[(n + k) % 4],
                "traeger": "Träger e. V.", "strasse": "Dorfstraße", "hausnummer": str(n + 1),
                "plz": plz, "ort": name, "ags": ags, "plaetze": 10 + n,
                "telefon": f"03531 {n:04d}", "email": "", "website": f"https://pflege-{n}.example",
                "rollstuhlgerecht": "ja" if k else "nein",
                "lon": f"{point.x + 0.004 * (k + 1) + shift:.6f}",
                "lat": f"{point.y - 0.003 * k:.6f}"})
    return rows


def mobility_rows(municipalities: dict[str, tuple[str, Any]]) -> list[dict[str, Any]]:
    kinds = ("Ladesäule", "Mitfahrbank", "Rufbus-Haltestelle", "Mobilitätsstation")
    rows = []
    for n, (_, (name, polygon)) in enumerate(sorted(municipalities.items())):
        point = shapely.point_on_surface(polygon)
        kind = kinds[n % 4]
        rows.append({"name": f"{kind} {name}", "typ": kind, "betreiber": "Betrieb",
                     "ladepunkte": 2 if kind == "Ladesäule" else "",
                     "leistung_kw": "22.5" if kind == "Ladesäule" else "",
                     "steckertypen": "Typ 2" if kind == "Ladesäule" else "",
                     "lon": f"{point.x - 0.01:.6f}", "lat": f"{point.y + 0.01:.6f}"})
    rows.append({"name": "Ladesäule Fernab", "typ": "Ladesäule", "betreiber": "Fern",
                 "ladepunkte": 4, "leistung_kw": "150", "steckertypen": "CCS",
                 "lon": FAR_CHARGER[0], "lat": FAR_CHARGER[1]})
    return rows


def broadband_rows(municipalities: dict[str, tuple[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for n, (ags, (name, polygon)) in enumerate(sorted(municipalities.items())):
        households = 1000 + 37 * n
        g1000, g100 = households * (n % 10) // 10, households * (5 + n % 5) // 10
        rows.append({"ags": ags, "gemeinde": name, "haushalte": households,
                     "haushalte_1000": g1000, "haushalte_100": g100,
                     "anteil_1000": round(100 * g1000 / households, 1),
                     "anteil_100": round(100 * g100 / households, 1),
                     "haushalte_im_bau": 10 * n, "haushalte_geplant": 5 * n,
                     "fertigstellung_bis": f"2028-{n % 12 + 1:02d}-01",
                     "stand": "2026-11-01", "wkt": polygon.wkt})
    return rows


CARE_FIELDS = [{"name": n, "type": "string"} for n in (
    "name", "art", "traeger", "strasse", "hausnummer", "plz", "ort", "ags", "telefon", "email",
    "website")] + [{"name": "plaetze", "type": "integer"},
                   {"name": "rollstuhlgerecht", "type": "boolean", "trueValues": ["ja"],
                    "falseValues": ["nein"]},
                   {"name": "geometry", "type": "geojson"}]
MOBILITY_FIELDS = [{"name": n, "type": "string"} for n in (
    "name", "typ", "betreiber", "steckertypen")] + [
    {"name": "ladepunkte", "type": "integer"}, {"name": "leistung_kw", "type": "number"},
    {"name": "geometry", "type": "geojson"}]
BROADBAND_FIELDS = [{"name": "ags", "type": "string"}, {"name": "gemeinde", "type": "string"},
                    *({"name": n, "type": "integer"} for n in (
                        "haushalte", "haushalte_1000", "haushalte_100", "haushalte_im_bau",
                        "haushalte_geplant")),
                    {"name": "anteil_1000", "type": "number"},
                    {"name": "anteil_100", "type": "number"},
                    {"name": "fertigstellung_bis", "type": "date"},
                    {"name": "stand", "type": "date"}, {"name": "geometry", "type": "geojson"}]


def build(root: Path) -> tuple[Project, str, dict[str, tuple[str, Any]]]:
    project = Project(root)
    (root / "catalog" / "district.yaml").write_text(yaml.safe_dump({
        "name": "Testkreis", "ags": "12062", "bbox": DISTRICT_BBOX, "extent_buffer_km": 5,
        "default_license": "dl-by-de/2.0",
        "answers": {"boundaries": "gemeinden", "broadband": "breitband-gemeinden",
                    "care": "pflege", "mobility": "mobilitaet"}}), encoding="utf-8")
    shutil.copy(REPO / "pipelines" / "gemeinden.yaml", root / "pipelines")
    shutil.copy(REPO / "schemas" / "gemeinden.json", root / "schemas")
    shutil.copytree(REPO / "pipelines" / "data" / "real" / "bkg-vg5000-2021",
                    project.data / "real" / "bkg-vg5000-2021")
    assert project.ingest("gemeinden").status == "committed"
    municipalities = {row["ags"]: (row["name"], shape) for row, shape in
                      zip(project.rows("gemeinden"), project.geometries("gemeinden"),
                          strict=True)}
    for name, fields, rows, access, org, geometry in (
            ("pflege", CARE_FIELDS, care_rows(municipalities), "internal", STAFF_ORG,
             {"lon": "lon", "lat": "lat"}),
            ("mobilitaet", MOBILITY_FIELDS, mobility_rows(municipalities), "public",
             "kreisentwicklung-oepnv", {"lon": "lon", "lat": "lat"}),
            ("breitband-gemeinden", BROADBAND_FIELDS, broadband_rows(municipalities),
             "public", "breitbandkoordination", {"wkt": "wkt"})):
        write_csv(project.data / f"{name}.csv", rows)
        project.pipeline(name, project.schema(name, fields),
                         {"path": f"data/{name}.csv", "crs": "EPSG:4326",
                          "geometry": geometry},
                         title=f"Test {name}", organization=org, access=access)
        assert project.ingest(name).status == "committed", name
    assert project.cli("catalog", "load").exit_code == 0
    assert project.cli("user", "add", "vera", "--org", STAFF_ORG, "--role",
                       "viewer").exit_code == 0
    token = project.cli("token", "create", "vera").output.strip().splitlines()[-1]
    return project, token, municipalities


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlacesSite]:
    project, token, municipalities = build(tmp_path_factory.mktemp("places") / "project")
    with hub_server(project.root, project.store_dir) as server:
        yield PlacesSite(server.url, project, token, municipalities)


# -- places and search ---------------------------------------------------------------------

def test_every_municipality_is_a_place_with_a_unique_slug(site: PlacesSite) -> None:
    listed = site.get("/api/orte").json()
    assert sorted(p["ags"] for p in listed) == sorted(site.municipalities)
    assert len(listed) == 33
    slugs = [p["slug"] for p in listed]
    assert len(set(slugs)) == 33 and all(s.replace("-", "").isalnum() and s.isascii()
                                         for s in slugs)
    by_slug = {p["slug"]: p for p in listed}
    assert by_slug["bad-liebenwerda"]["name"] == "Bad Liebenwerda"
    assert by_slug["muehlberg-elbe"]["name"] == "Mühlberg/Elbe"
    assert by_slug["herzberg-elster"]["name"] == "Herzberg (Elster)"
    assert by_slug["grossthiemig"]["designation"] == "Gemeinde"
    assert {p["kind"] for p in listed} == {"municipality"}
    assert site.get("/api/orte").json() == listed  # stable


@pytest.mark.parametrize(("q", "expected"), [
    ("Mühlberg", "muehlberg-elbe"), ("Muehlberg", "muehlberg-elbe"),
    ("muhlberg", "muehlberg-elbe"), ("MÜHL", "muehlberg-elbe"),
    ("Röderland", "roederland"), ("Roderland", "roederland"), ("Roederland", "roederland"),
    ("Großthiemig", "grossthiemig"), ("Grossthiemig", "grossthiemig"),
    ("bad lieb", "bad-liebenwerda"), ("bad-liebenwerda", "bad-liebenwerda"),
    ("Herzberg (Elster)", "herzberg-elster"), ("Uebigau", "uebigau-wahrenbrueck"),
    ("wahrenbruck", "uebigau-wahrenbrueck"),
])
def test_places_are_found_with_and_without_diacritics(site: PlacesSite, q: str,
                                                      expected: str) -> None:
    found = site.get("/api/orte/suche", q=q).json()
    assert found["matches"][0]["slug"] == expected, found
    assert found["suggestions"] == []


def test_a_word_of_a_name_finds_every_place_with_it(site: PlacesSite) -> None:
    found = [m["slug"] for m in site.get("/api/orte/suche", q="Elster").json()["matches"]]
    assert found[0] == "elsterwerda"  # the name starts with it
    assert {"herzberg-elster", "falkenberg-elster"} <= set(found)


def test_postcodes_of_the_data_the_caller_may_see(site: PlacesSite) -> None:
    """The care dataset (internal) holds the postcodes: staff find Bad Liebenwerda by 04924,
    an anonymous caller finds nothing by it (and gets suggestions instead)."""
    staff = site.get("/api/orte/suche", site.staff, q="04924").json()
    assert [(m["slug"], m["matched"], m["postcode"]) for m in staff["matches"]] == [
        ("bad-liebenwerda", "postcode", "04924")]
    anonymous = site.get("/api/orte/suche", q="04924").json()
    assert anonymous["matches"] == [] and len(anonymous["suggestions"]) == 5


def test_an_unknown_place_gets_suggestions(site: PlacesSite) -> None:
    missing = site.get("/api/orte/finsterwlade")
    assert missing.status_code == 404
    assert missing.json()["suggestions"][0]["slug"] == "finsterwalde"
    assert "finsterwlade" in missing.json()["detail"]
    found = site.get("/api/orte/suche", q="Finsterwlade").json()
    assert found["matches"] == [] and found["suggestions"][0]["slug"] == "finsterwalde"
    assert site.get("/api/orte/suche", q="qqqq").json()["suggestions"]  # never empty


# -- answers -------------------------------------------------------------------------------

def origin_of(site: PlacesSite, answer: dict[str, Any]) -> tuple[float, float]:
    origin = answer["place"]["origin"]
    polygon = site.municipalities[answer["place"]["ags"]][1]
    assert polygon.contains(shapely.Point(origin["lon"], origin["lat"]))
    if origin["kind"] == "centroid":
        assert shapely.centroid(polygon).distance(
            shapely.Point(origin["lon"], origin["lat"])) < 1e-5
    return origin["lon"], origin["lat"]


def test_care_answers_the_nearest_service_of_each_type(site: PlacesSite) -> None:
    answer = site.get("/api/orte/bad-liebenwerda", site.staff).json()
    lon, lat = origin_of(site, answer)
    care = answer["answers"]["care"]
    rows = care_rows(site.municipalities)
    expected = {}
    for row in rows:  # the nearest of each type, by the haversine formula
        d = haversine(lon, lat, float(row["lon"]), float(row["lat"]))
        if row["art"] not in expected or d < expected[row["art"]][0]:
            expected[row["art"]] = (d, row)
    assert [i["type"] for i in care["nearest"]] == sorted(expected, key=lambda t: expected[t][0])
    for item in care["nearest"]:
        metres, row = expected[item["type"]]
        assert item["name"] == row["name"] and close(item["distance_m"], metres)
        assert item["distance_kind"] == care["distance_kind"] == "straight-line"
        assert item["address"] == {"street": f"Dorfstraße {row['hausnummer']}",
                                   "postcode": row["plz"], "town": row["ort"]}
        assert (item["phone"], item["website"], item["places"]) == (
            row["telefon"], row["website"], row["plaetze"])
        assert item["wheelchair_accessible"] is (row["rollstuhlgerecht"] == "ja")
    assert care["units"]["distance_m"] == "m"


def test_mobility_answers_the_nearest_stations_within_30_km(site: PlacesSite) -> None:
    answer = site.get("/api/orte/bad-liebenwerda").json()
    lon, lat = origin_of(site, answer)
    mobility = answer["answers"]["mobility"]
    assert mobility["within_m"] == 30_000
    rows = mobility_rows(site.municipalities)
    names = {"charging": "Ladesäule", "ride_share_bench": "Mitfahrbank",
             "on_demand_bus": "Rufbus-Haltestelle", "mobility_hub": "Mobilitätsstation"}
    for category, typ in names.items():
        near = sorted((haversine(lon, lat, float(r["lon"]), float(r["lat"])), r["name"])
                      for r in rows if r["typ"] == typ)
        near = [n for n in near if n[0] <= 30_000][:3]
        items = mobility["categories"][category]["nearest"]
        assert [i["name"] for i in items] == [n for _, n in near], category
        assert all(close(i["distance_m"], d) for i, (d, _) in zip(items, near, strict=True))
    charging = mobility["categories"]["charging"]["nearest"]
    assert charging and charging[0]["power_kw"] == 22.5 and charging[0]["connectors"] == "Typ 2"
    assert "Ladesäule Fernab" not in [i["name"] for i in charging]
    assert haversine(lon, lat, *FAR_CHARGER) > 30_000


def test_broadband_answers_the_municipality_row(site: PlacesSite) -> None:
    answer = site.get("/api/orte/muehlberg-elbe").json()
    row = next(r for r in broadband_rows(site.municipalities) if r["gemeinde"] ==
               "Mühlberg/Elbe")
    figures = answer["answers"]["broadband"]["figures"]
    assert figures == {
        "ags": row["ags"], "municipality": "Mühlberg/Elbe", "households": row["haushalte"],
        "households_1000": row["haushalte_1000"], "households_100": row["haushalte_100"],
        "share_1000": row["anteil_1000"], "share_100": row["anteil_100"],
        "households_under_construction": row["haushalte_im_bau"],
        "households_planned": row["haushalte_geplant"],
        "completion_by": row["fertigstellung_bis"], "as_of": "2026-11-01"}
    assert answer["answers"]["broadband"]["units"]["share_1000"] == "percent"


def test_every_answer_names_its_source(site: PlacesSite) -> None:
    answer = site.get("/api/orte/elsterwerda", site.staff).json()
    assert set(answer["answers"]) == {"broadband", "care", "mobility"}
    for topic, name in (("broadband", "breitband-gemeinden"), ("care", "pflege"),
                        ("mobility", "mobilitaet")):
        source = answer["answers"][topic]["source"]
        version = site.project.current(name)
        assert (source["dataset"], source["version"], source["title"]) == (
            name, version.version, f"Test {name}")
        assert source["date"] == version.finished[:10]
        assert source["links"]["collection"] == f"/ogc/collections/{name}"
        assert site.get(source["links"]["collection"], site.staff).status_code == 200
    public = answer["answers"]["mobility"]["source"]["links"]["dataset"]
    assert site.get(public).status_code == 200  # the public record's page


def test_a_point_is_answered_with_its_municipality(site: PlacesSite) -> None:
    name, polygon = next(v for v in site.municipalities.values() if v[0] == "Finsterwalde")
    point = shapely.point_on_surface(polygon)
    answer = site.get("/api/orte/punkt", lon=point.x, lat=point.y).json()
    assert answer["place"]["slug"] == "finsterwalde"
    assert answer["answers"]["broadband"]["figures"]["municipality"] == name
    bench = answer["answers"]["mobility"]["categories"]["ride_share_bench"]["nearest"][0]
    row = next(r for r in mobility_rows(site.municipalities) if r["name"] == bench["name"])
    assert close(bench["distance_m"], haversine(round(point.x, 5), round(point.y, 5),
                                                float(row["lon"]), float(row["lat"])))


# -- access --------------------------------------------------------------------------------

def test_a_topic_the_caller_may_not_see_is_absent(site: PlacesSite) -> None:
    anonymous = site.get("/api/orte/bad-liebenwerda")
    assert set(anonymous.json()["answers"]) == {"broadband", "mobility"}
    assert "pflege" not in anonymous.text and "Pflegest" not in anonymous.text
    point = site.get("/api/orte/punkt", lon=13.4, lat=51.5)
    assert "care" not in point.json()["answers"] and "pflege" not in point.text
    assert anonymous.headers["cache-control"] == "no-cache"
    staff = site.get("/api/orte/bad-liebenwerda", site.staff)
    assert "care" in staff.json()["answers"]
    assert staff.headers["cache-control"] == "private, no-store"  # internal data in it


def test_an_unchanged_answer_is_revalidated_with_its_etag(site: PlacesSite) -> None:
    first = site.get("/api/orte/crinitz")
    again = httpx.get(site.url + "/api/orte/crinitz",
                      headers={"If-None-Match": first.headers["etag"]}, timeout=30)
    assert again.status_code == 304


def test_a_new_version_changes_the_answer(site: PlacesSite) -> None:
    """Answers are kept per version: a new version of the care data is answered at once, on
    the portal's (kept) place page too."""
    before = site.get("/api/orte/schraden", site.staff).json()["answers"]["care"]
    page_before = site.get("/orte/schraden", site.staff).text
    assert site.get("/orte/schraden", site.staff).text == page_before  # kept
    write_csv(site.project.data / "pflege.csv", care_rows(site.municipalities, shift=0.01))
    assert site.project.ingest("pflege").status == "committed"
    after = site.get("/api/orte/schraden", site.staff).json()["answers"]["care"]
    assert after["source"]["version"] == before["source"]["version"] + 1
    assert [i["lon"] for i in after["nearest"]] != [i["lon"] for i in before["nearest"]]
    page_after = site.get("/orte/schraden", site.staff).text

    def care(page: str) -> str:
        start = page.index('id="care-h"')
        return page[start:page.index("provenance", start)]

    assert care(page_after) != care(page_before)


@pytest.mark.parametrize("path", ["/", "/orte/bad-liebenwerda", "/orte/crinitz?lang=en"])
def test_a_kept_portal_page_is_never_shown_to_a_viewer_who_may_see_less(
        site: PlacesSite, path: str) -> None:
    """The start and place pages are kept per viewer: staff see the internal care data, and
    anonymous visitors asking right before and after them never do."""
    for _ in range(2):
        anonymous = site.get(path)
        staff = site.get(path, site.staff)
        assert anonymous.status_code == staff.status_code == 200
        marker = 'href="/datasets/pflege"' if path == "/" else 'id="care-h"'
        assert marker in staff.text
        assert marker not in anonymous.text, path
        assert site.get(path).text == anonymous.text


# -- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "params", "status", "names"), [
    ("/api/orte/suche", {}, 400, "q:"),
    ("/api/orte/suche", {"q": "   "}, 400, "q:"),
    ("/api/orte/suche", {"q": "x" * 201}, 400, "q: at most 200"),
    ("/api/orte/suche", {"q": "Bad\x00Liebenwerda"}, 400, "q: control"),
    ("/api/orte/suche", {"q": "a\nb"}, 400, "q: control"),
    ("/api/orte/punkt", {"lat": "51.5"}, 400, "lon:"),
    ("/api/orte/punkt", {"lon": "abc", "lat": "51.5"}, 400, "lon: 'abc' is not a number"),
    ("/api/orte/punkt", {"lon": "13.5", "lat": "nan"}, 400, "lat:"),
    ("/api/orte/punkt", {"lon": "13.5", "lat": "inf"}, 400, "lat:"),
    ("/api/orte/punkt", {"lon": "200", "lat": "51.5"}, 400, "lon: must be"),
    ("/api/orte/punkt", {"lon": "1" * 5000, "lat": "51.5"}, 400, "lon:"),
    ("/api/orte/punkt", {"lon": "10.0", "lat": "51.5"}, 404, "outside the district"),
    ("/api/orte/" + "a" * 300, {}, 400, "slug:"),
    ("/api/orte/%01", {}, 400, "slug:"),
])
def test_hostile_input_gets_a_4xx_naming_the_parameter(site: PlacesSite, path: str,
                                                       params: dict[str, str], status: int,
                                                       names: str) -> None:
    response = site.get(path, **params)
    assert response.status_code == status, response.text
    assert names in response.json()["detail"], response.text
