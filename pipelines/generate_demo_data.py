"""Generate the demo district's synthetic source files (seeded, deterministic, a few seconds).

    python pipelines/generate_demo_data.py [--out DIR]

Writes, by default into pipelines/data/generated/ (not committed):

- breitband.zip          zipped ESRI Shapefile (EPSG:25833, UTF-8 .cpg) of broadband supply per
                         100 m grid cell (INSPIRE/EEA grid, EPSG:3035) in Landkreis Elbe-Elster
- pflege.xlsx            care services and homes, an office-style workbook with a title banner
                         (header on row 4), coordinates as Rechtswert/Hochwert in EPSG:25833
- mobilitaet_hubs.csv    mobility hubs, ride-share benches, bike and car sharing, P+R:
                         Windows-1252, ';', decimal commas, lon/lat in EPSG:4326
- rufbus_haltestellen.csv  stops of an on-demand bus (Rufbus) in the villages and towns:
                         UTF-8, ',', decimal points, lon/lat in EPSG:4326; named and operated
                         as generated ("Demo, generiert")

Everything is placed inside the real municipality polygons (BKG VG5000, AGS prefix 12062) of
pipelines/data/real/. All records are invented: names, addresses, phone numbers and e-mail
addresses (on the reserved top-level domain .example) belong to no real organisation or person.
Running the script twice gives byte-identical files: one seeded generator draws everything in a
fixed order, and zip/xlsx/dbf timestamps are pinned.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import re
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import shapely
from pyproj import Transformer

HERE = Path(__file__).resolve().parent
GEMEINDEN = HERE / "data" / "real" / "bkg-vg5000-2021" / "vg5000_gemeinden_bb.geojson"
DEFAULT_OUT = HERE / "data" / "generated"
KREIS = "12062"  # Landkreis Elbe-Elster
SEED = 2026
INHABITANTS = 100_000  # Elbe-Elster has about 100,000 inhabitants (DESIGN.md §4)
PERSONS_PER_HOUSEHOLD = 1.95
STAND_BREITBAND = dt.date(2026, 6, 30)
STAND_PFLEGE = dt.date(2026, 10, 1)
FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # timestamp of every member of the zips we write

WGS84_TO_UTM = Transformer.from_crs("OGC:CRS84", "EPSG:25833", always_xy=True)
UTM_TO_LAEA = Transformer.from_crs("EPSG:25833", "EPSG:3035", always_xy=True)
LAEA_TO_UTM = Transformer.from_crs("EPSG:3035", "EPSG:25833", always_xy=True)
UTM_TO_WGS84 = Transformer.from_crs("EPSG:25833", "OGC:CRS84", always_xy=True)

# --- name parts (records are generated from these, never typed in) -----------------------------

# Postleitzahl of each municipality's main place, by AGS, and the Vorwahl of each postcode area;
# demo accuracy (a municipality may span several postcodes and dialling codes in reality).
PLZ = {
    "12062024": "04924", "12062088": "03246", "12062092": "03253", "12062124": "04910",
    "12062128": "04895", "12062134": "04936", "12062140": "03238", "12062177": "03238",
    "12062196": "04932", "12062208": "04932", "12062219": "03238", "12062224": "04916",
    "12062232": "04932", "12062237": "04936", "12062240": "04934", "12062282": "04936",
    "12062289": "04936", "12062293": "03238", "12062333": "03238", "12062336": "04932",
    "12062341": "04931", "12062372": "04928", "12062410": "04932", "12062417": "03238",
    "12062425": "03238", "12062440": "03253", "12062445": "04936", "12062453": "03253",
    "12062461": "04916", "12062464": "04928", "12062469": "03249", "12062492": "03253",
    "12062500": "04938",
}
# Approximate inhabitants of the towns (Städte), rounded; only for the demo's plausibility (the
# biggest town gets the most cells, services and stops). Other places follow the area.
TOWN_INHABITANTS = {
    "12062140": 16000, "12062224": 9000, "12062024": 9000, "12062124": 8000,
    "12062092": 8000, "12062128": 6500, "12062500": 5000, "12062341": 3500,
    "12062469": 3000, "12062461": 3000, "12062445": 2500,
}
VORWAHL = {
    "03238": "03531", "03246": "035324", "03249": "035323", "03253": "035322",
    "04895": "035365", "04910": "03533", "04916": "03535", "04924": "035341", "04928": "03533",
    "04931": "035342", "04932": "03533", "04934": "03533", "04936": "035361", "04938": "035365",
}
STREETS = [
    "Hauptstraße", "Bahnhofstraße", "Dorfstraße", "Schulstraße", "Lindenstraße", "Gartenstraße",
    "Kirchstraße", "Am Markt", "Berliner Straße", "Dresdner Straße", "Lange Straße", "Poststraße",
    "Mühlenweg", "Waldstraße", "Feldstraße", "Friedensstraße", "Ernst-Thälmann-Straße",
    "Karl-Marx-Straße", "Goethestraße", "Schillerstraße", "Puschkinstraße", "Parkstraße",
    "Am Anger", "Elsterstraße", "Ringstraße", "Torgauer Straße", "Cottbuser Straße",
    "Rosa-Luxemburg-Straße", "Thomas-Müntzer-Straße", "Wiesenweg", "Am Sportplatz",
    "Straße der Jugend", "Birkenweg", "Kastanienallee", "Rosenstraße", "Burgstraße",
]
VERBAENDE = [  # (short name, long name) of welfare associations (freigemeinnützige Träger)
    ("AWO", "AWO"), ("DRK", "DRK"), ("Diakonie", "Diakonie"),
    ("Volkssolidarität", "Volkssolidarität"), ("Caritas", "Caritas"),
    ("Johanniter", "Johanniter"), ("ASB", "Arbeiter-Samariter-Bund"),
]
REGIONEN = ["Elbe-Elster", "Südbrandenburg", "Niederlausitz", "Elsterland", "Schradenland",
            "Elbe-Elster-Land"]
SURNAMES = ["Müller", "Schmidt", "Schulze", "Krüger", "Lehmann", "Richter", "Wagner", "Neumann",
            "Hoffmann", "Schröder", "Kühn", "Winkler", "Böhme", "Lange", "Hartmann", "Zimmermann",
            "Schreiber", "Fiedler", "Pohl", "Kaiser", "Seidel", "Jentsch", "Kretschmer", "Noack"]
PRIVATE_WORDS = ["Lausitzer", "Elbtal", "Elster", "Heide", "Sonnen", "Lebens", "Auen", "Schraden",
                 "Kurstadt", "Niederlausitzer", "Vital", "Herz"]
PRIVATE_KINDS = ["Pflegedienst", "Pflegeteam", "Seniorendienst", "Hauskrankenpflege",
                 "Pflege & Betreuung", "Seniorenpflege"]
LEGAL_FORMS = ["GmbH", "GmbH", "GmbH", "GmbH & Co. KG", "UG (haftungsbeschränkt)", "e.K."]
HOUSE_NAMES = ["Lindenhof", "Sonnenhof", "Abendrot", "Heideblick", "Am Stadtpark", "Rosengarten",
               "Elbaue", "Waldblick", "Am Kurpark", "Kastanienhof", "Birkenhain", "Fliederhof",
               "Am Mühlenteich", "Zur Linde", "Elstertal", "Am Schlosspark", "Abendsonne",
               "Eichenhof", "Am Wasserturm", "Lebensbaum", "Sonnenblick", "Am Rosarium"]
HOSPIZ_NAMES = ["Regenbogen", "Lichtblick", "Abendstern", "Sonnenweg"]
SPRACHEN = ["Deutsch", "Deutsch, Polnisch", "Deutsch, Russisch", "Deutsch, Englisch",
            "Deutsch, Polnisch, Russisch", "Deutsch, Ukrainisch"]
SPRACHEN_P = [0.70, 0.10, 0.08, 0.08, 0.02, 0.02]
CAR_SHARING_NAMES = ["Dorfauto", "Carsharing", "E-Mobil", "Teilauto"]
BIKE_SHARING_NAMES = ["Elster-Rad", "Heide-Rad", "Kreisrad", "Elbe-Elster-Rad"]
MOBILITY_LEGAL = ["eG", "e.V.", "GmbH"]
LOCATIONS = ["Bahnhof", "Markt", "Zentrum", "Busbahnhof", "Rathaus", "Schwimmhalle",
             "Einkaufszentrum", "Kirche"]

CLASSES = np.array(["<30", "30-100", "100-1000", ">=1000"])
# probabilities of each class for a rural (u = 0) and a town-centre (u = 1) cell
CLASS_RURAL = np.array([0.14, 0.45, 0.30, 0.11])
CLASS_URBAN = np.array([0.0, 0.08, 0.47, 0.45])
WHITE_SPOT_HOUSEHOLDS = 2_500  # white-spot fibre programme (DESIGN.md §4)
WHITE_SPOT_SCHOOLS = 35
OTHER_SCHOOLS = 27


# --- the district's geography ----------------------------------------------------------------


@dataclass
class Gemeinde:
    ags: str
    name: str
    bez: str
    poly: shapely.Geometry  # EPSG:25833
    inner: shapely.Geometry  # poly shrunk by 150 m: generated points keep off the border
    area_km2: float
    households: int = 0

    @property
    def is_town(self) -> bool:
        return self.bez == "Stadt"

    @property
    def plz(self) -> str:
        return PLZ.get(self.ags, "04916")

    @property
    def administration(self) -> str:
        return f"{'Stadt' if self.is_town else 'Gemeinde'} {self.name}"


@dataclass
class Settlement:
    gemeinde: int  # index into the list of municipalities
    x: float  # EPSG:25833
    y: float
    households: int
    core: bool  # the town centre of a Stadt
    urban: float  # 0 (small village) .. 1 (town centre)


def load_gemeinden(path: Path = GEMEINDEN) -> list[Gemeinde]:
    """The district's municipalities from the real VG5000 file, in EPSG:25833, sorted by AGS."""
    table = pyogrio.read_arrow(path, columns=["AGS", "GEN", "BEZ"])[1]
    geoms = shapely.from_wkb(np.asarray(table.column("wkb_geometry").to_pylist(), dtype=object))
    out = []
    for ags, name, bez, geom in zip(table.column("AGS").to_pylist(),
                                    table.column("GEN").to_pylist(),
                                    table.column("BEZ").to_pylist(), geoms, strict=True):
        if not ags.startswith(KREIS):
            continue
        poly = shapely.transform(geom, lambda xy: np.column_stack(
            WGS84_TO_UTM.transform(xy[:, 0], xy[:, 1])))
        out.append(Gemeinde(ags, name, bez, poly, poly.buffer(-150), poly.area / 1e6))
    if not out:
        raise SystemExit(f"{path}: no municipality with AGS prefix {KREIS}")
    return sorted(out, key=lambda g: g.ags)


def sample_in(rng: np.random.Generator, poly: shapely.Geometry, n: int) -> np.ndarray:
    """`n` uniformly random points (x, y) inside a polygon."""
    minx, miny, maxx, maxy = poly.bounds
    found = np.empty((0, 2))
    while len(found) < n:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(max(64, 4 * n), 2))
        found = np.vstack([found, xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1])]])
    return found[:n]


def near(rng: np.random.Generator, poly: shapely.Geometry, x: float, y: float,
         sigma: float) -> tuple[float, float]:
    """A random point about `sigma` metres from (x, y), inside the polygon."""
    for _ in range(200):
        px, py = x + rng.normal(0, sigma), y + rng.normal(0, sigma)
        if shapely.contains_xy(poly, px, py):
            return float(px), float(py)
        sigma *= 0.9
    return float(x), float(y)


def build_settlements(rng: np.random.Generator, gemeinden: list[Gemeinde]) -> list[Settlement]:
    """Town centres and villages with households, adding up to the district's population."""
    raw: list[tuple[int, float, float, float, bool]] = []  # gemeinde, x, y, weight, core
    for gi, g in enumerate(gemeinden):
        n_villages = max(1, round(g.area_km2 / 11 * rng.uniform(0.8, 1.2)))
        rural = g.area_km2 * 22 * rng.lognormal(0, 0.25)  # inhabitants outside a town centre
        if g.is_town:
            centre = g.poly.buffer(-1500).representative_point()
            if centre.is_empty:
                centre = g.inner.representative_point()
            target = TOWN_INHABITANTS.get(g.ags, 2500) * rng.lognormal(0, 0.05)
            raw.append((gi, centre.x, centre.y, max(1200.0, target - rural), True))
            taken = [(centre.x, centre.y)]
        else:
            taken = []
        shares = rng.lognormal(0, 0.8, n_villages)
        shares /= shares.sum()
        spacing = 1800.0
        points = sample_in(rng, g.inner, 40 * n_villages)
        for share in np.sort(shares)[::-1]:
            for px, py in points:
                if all((px - tx) ** 2 + (py - ty) ** 2 >= spacing**2 for tx, ty in taken):
                    break
            else:  # no free spot at this spacing: accept the next random point
                px, py = points[len(taken) % len(points)]
            taken.append((px, py))
            raw.append((gi, float(px), float(py), float(rural * share), False))
    total = sum(r[3] for r in raw)
    scale = INHABITANTS / PERSONS_PER_HOUSEHOLD / total
    out = []
    for gi, x, y, weight, core in raw:
        hh = max(12, round(weight * scale))
        urban = 1.0 if core else float(min(0.35, hh / 900))
        out.append(Settlement(gi, x, y, hh, core, urban))
        gemeinden[gi].households += hh
    return out


# --- broadband ---------------------------------------------------------------------------------


def broadband_cells(rng: np.random.Generator, gemeinden: list[Gemeinde],
                    settlements: list[Settlement]) -> dict[str, np.ndarray]:
    """One row per inhabited 100 m cell: households, businesses, schools and supply."""
    taken: set[tuple[int, int]] = set()
    cols: dict[str, list] = {k: [] for k in (
        "gx", "gy", "gemeinde", "settlement", "haushalte", "urban", "dist")}
    inner_laea = [shapely.transform(g.inner, lambda xy: np.column_stack(
        UTM_TO_LAEA.transform(xy[:, 0], xy[:, 1]))) for g in gemeinden]
    for si, s in enumerate(settlements):
        per_cell = 16 if s.core else rng.uniform(5.5, 8.5)
        n = max(1, int(np.ceil(s.households / per_cell)))
        cx, cy = UTM_TO_LAEA.transform(s.x, s.y)
        radius = 100 * np.sqrt(n / np.pi) * 3 + 300
        gx0, gy0 = int(cx // 100), int(cy // 100)
        k = int(radius // 100) + 1
        ix, iy = np.meshgrid(np.arange(gx0 - k, gx0 + k + 1), np.arange(gy0 - k, gy0 + k + 1))
        ix, iy = ix.ravel(), iy.ravel()
        px, py = ix * 100 + 50.0, iy * 100 + 50.0
        # villages stretch along a road: an elongated, irregular footprint
        angle, stretch = rng.uniform(0, np.pi), (1.0 if s.core else rng.uniform(1.2, 2.8))
        dx, dy = px - cx, py - cy
        along = dx * np.cos(angle) + dy * np.sin(angle)
        across = -dx * np.sin(angle) + dy * np.cos(angle)
        dist = np.hypot(along / stretch, across * stretch)
        score = dist * rng.lognormal(0, 0.25, dist.size)
        inside = shapely.contains_xy(inner_laea[s.gemeinde], px, py)
        free = np.array([(a, b) not in taken for a, b in zip(ix, iy, strict=True)])
        order = np.flatnonzero(inside & free)
        order = order[np.argsort(score[order], kind="stable")][:n]
        if order.size == 0:
            continue
        weights = np.exp(-dist[order] / (radius / 2)) * rng.gamma(2.0, 1.0, order.size)
        extra = max(0, s.households - order.size)
        hh = 1 + rng.multinomial(extra, weights / weights.sum())
        for j, h in zip(order, hh, strict=True):
            taken.add((int(ix[j]), int(iy[j])))
            cols["gx"].append(int(ix[j]))
            cols["gy"].append(int(iy[j]))
            cols["gemeinde"].append(s.gemeinde)
            cols["settlement"].append(si)
            cols["haushalte"].append(int(h))
            cols["urban"].append(s.urban * (1 - 0.4 * min(1.0, dist[j] / radius)))
            cols["dist"].append(float(dist[j]))
    cells = {k: np.asarray(v) for k, v in cols.items()}
    n = len(cells["gx"])
    u = cells["urban"]

    # supply class: a village mostly shares one (same street cabinet), towns are mixed
    probs = np.outer(1 - u, CLASS_RURAL) + np.outer(u, CLASS_URBAN)
    draw = _choice_rows(rng, probs)
    village = ~np.array([settlements[int(si)].core for si in cells["settlement"]])
    first = {}
    for i, si in enumerate(cells["settlement"]):
        first.setdefault(int(si), i)
    shared = draw[[first[int(si)] for si in cells["settlement"]]]
    klasse = np.where(village & (rng.random(n) < 0.8), shared, draw)

    tech = np.empty(n, dtype=object)
    r = rng.random(n)
    tech[klasse == 3] = np.where(r[klasse == 3] < 0.45 * u[klasse == 3], "HFC", "FTTH/B")
    tech[klasse == 2] = np.where(r[klasse == 2] < 0.4 * u[klasse == 2], "HFC", "VDSL")
    tech[klasse == 1] = np.where(r[klasse == 1] < 0.08, "Funk", "VDSL")
    tech[klasse == 0] = np.where(r[klasse == 0] < 0.4, "Funk", "VDSL")

    status = np.full(n, "verfügbar", dtype=object)
    programm = np.full(n, "eigenwirtschaftlich", dtype=object)
    # white spots (< 30 Mbit/s): the funded fibre rollout covers about 2,500 households
    low = rng.permutation(np.flatnonzero(klasse == 0))
    cum = np.cumsum(cells["haushalte"][low])
    white = low[: int(np.searchsorted(cum, WHITE_SPOT_HOUSEHOLDS)) + 1]
    programm[white] = "weiße Flecken"
    status[white] = np.where(rng.random(white.size) < 0.7, "im Bau", "geplant")
    rest = np.setdiff1d(low, white)
    programm[rest], status[rest] = "graue Flecken", "geplant"
    # grey spots (< 100 Mbit/s) are funded unless an operator builds on its own account
    mid = np.flatnonzero(klasse == 1)
    r = rng.random(mid.size)
    programm[mid] = np.where(r < 0.82, "graue Flecken", "eigenwirtschaftlich")
    status[mid] = np.select([r < 0.72, r < 0.82, r < 0.92], ["geplant", "im Bau", "im Bau"],
                            "geplant")
    fast = np.flatnonzero(klasse == 2)
    r = rng.random(fast.size)
    status[fast] = np.select([r < 0.85, r < 0.95], ["verfügbar", "im Bau"], "geplant")
    # rural fibre that a finished earlier white-spot round built
    done = np.flatnonzero((klasse == 3) & (tech == "FTTH/B") & (u < 0.3))
    programm[done[rng.random(done.size) < 0.35]] = "weiße Flecken"

    unternehmen = rng.poisson(0.1 + 1.5 * u**2)
    schulen = np.zeros(n, dtype=np.int64)
    _place_schools(rng, schulen, white, cells, WHITE_SPOT_SCHOOLS)
    others = np.setdiff1d(np.arange(n), white)
    _place_schools(rng, schulen, others, cells, OTHER_SCHOOLS, weight=u[others])

    cells.update(klasse=CLASSES[klasse], technologie=tech, status=status, programm=programm,
                 unternehmen=unternehmen, schulen=schulen)
    return cells


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a probability matrix."""
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    return np.minimum((rng.random((len(probs), 1)) > cum).sum(axis=1), probs.shape[1] - 1)


def _place_schools(rng: np.random.Generator, schulen: np.ndarray, candidates: np.ndarray,
                   cells: dict[str, np.ndarray], count: int,
                   weight: np.ndarray | None = None) -> None:
    """One school in `count` cells, at most one per settlement, weighted by households."""
    w = cells["haushalte"][candidates].astype(float) * (1 if weight is None else weight + 0.05)
    order = candidates[rng.choice(candidates.size, candidates.size, replace=False, p=w / w.sum())]
    seen: set[int] = set()
    for c in order:
        si = int(cells["settlement"][c])
        if si in seen:
            continue
        seen.add(si)
        schulen[c] += 1
        if len(seen) == count:
            return


def write_breitband(cells: dict[str, np.ndarray], gemeinden: list[Gemeinde], out: Path) -> int:
    """A zipped shapefile with 10-character field names, as operators deliver it."""
    gx, gy = cells["gx"], cells["gy"]
    x, y = LAEA_TO_UTM.transform(gx * 100 + 50.0, gy * 100 + 50.0)
    cell_id = np.array([f"100mN{b:05d}E{a:05d}" for a, b in zip(gx, gy, strict=True)])
    ags = np.array([gemeinden[i].ags for i in cells["gemeinde"]])
    order = np.lexsort((cell_id, ags))
    n = len(order)
    table = pa.table({
        "cell_id": pa.array(cell_id[order]),
        "ags": pa.array(ags[order]),
        "gemeinde": pa.array([gemeinden[i].name for i in cells["gemeinde"][order]]),
        "haushalte": pa.array(cells["haushalte"][order], pa.int32()),
        "unternehm": pa.array(cells["unternehmen"][order], pa.int32()),
        "schulen": pa.array(cells["schulen"][order], pa.int32()),
        "klasse": pa.array(cells["klasse"][order]),
        "technolog": pa.array(cells["technologie"][order].tolist(), pa.string()),
        "status": pa.array(cells["status"][order].tolist(), pa.string()),
        "programm": pa.array(cells["programm"][order].tolist(), pa.string()),
        "stand": pa.array([STAND_BREITBAND] * n, pa.date32()),
        "fertigstel": pa.array(completion_dates(cells)[order].tolist(), pa.date32()),
        "geometry": pa.array(shapely.to_wkb(shapely.points(
            np.round(np.asarray(x)[order], 2), np.round(np.asarray(y)[order], 2)))),
    })
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / "breitband.shp"
        pyogrio.write_arrow(table, shp, driver="ESRI Shapefile", geometry_name="geometry",
                            geometry_type="Point", crs="EPSG:25833", encoding="UTF-8",
                            layer_options={"DBF_DATE_LAST_UPDATE": STAND_BREITBAND.isoformat()})
        members = sorted(Path(tmp).iterdir())
        _write_zip(out, [(p.name, p.read_bytes()) for p in members])
    return n


COMPLETION_QUARTERS = {  # expected completion of the gigabit build-out, by status (quarters)
    "im Bau": (dt.date(2026, 9, 30), 6),  # from Q3 2026, over six quarters
    "geplant": (dt.date(2027, 6, 30), 11),  # from Q2 2027, over eleven quarters
}


def completion_dates(cells: dict[str, np.ndarray]) -> np.ndarray:
    """The expected completion date of each cell under construction or planned (None for the
    rest): one date per settlement and status, as a village is built in one go, at the end of
    a quarter. Drawn from a generator of its own, so the other files stay as they were."""
    rng = np.random.default_rng([SEED, 1])
    out = np.full(len(cells["status"]), None, dtype=object)
    projects: dict[tuple[int, str], dt.date] = {}
    for i, (si, status) in enumerate(zip(cells["settlement"], cells["status"], strict=True)):
        if status not in COMPLETION_QUARTERS:
            continue
        key = (int(si), str(status))
        if key not in projects:
            first, quarters = COMPLETION_QUARTERS[key[1]]
            projects[key] = _quarter_end(first, int(rng.integers(0, quarters)))
        out[i] = projects[key]
    return out


def _quarter_end(first: dt.date, quarters: int) -> dt.date:
    month = first.month + 3 * quarters
    year, month = first.year + (month - 1) // 12, (month - 1) % 12 + 1
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


def _write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A zip whose bytes depend only on the members' names and contents."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    path.write_bytes(buf.getvalue())


# --- care locations ------------------------------------------------------------------------------


def _slug(text: str) -> str:
    text = text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    text = unicodedata.normalize("NFKD", text.replace("ß", "ss")).encode("ascii", "ignore")
    return re.sub(r"[^a-z0-9]+", "-", text.decode()).strip("-")


def _pick(rng: np.random.Generator, items: list, p: list[float] | None = None):
    return items[int(rng.choice(len(items), p=p))]


def _phone(rng: np.random.Generator, plz: str) -> str:
    vorwahl = VORWAHL.get(plz, "03535")
    digits = 11 - len(vorwahl) - int(rng.integers(0, 2))
    number = str(int(rng.integers(2, 10))) + "".join(
        str(d) for d in rng.integers(0, 10, digits - 1))
    return f"{vorwahl} {number}"


def _house_number(rng: np.random.Generator) -> str:
    number = str(int(rng.integers(1, 90)))
    return number + ("abc"[int(rng.integers(0, 3))] if rng.random() < 0.1 else "")


@dataclass
class Traeger:
    name: str
    short: str
    art: str  # öffentlich | freigemeinnützig | privat
    domain: str


def _traeger_pool(rng: np.random.Generator) -> tuple[list[Traeger], list[Traeger]]:
    welfare = []
    for short, long in VERBAENDE:
        region = _pick(rng, REGIONEN)
        kind = _pick(rng, ["Sozialdienste", "Pflegedienste", "Soziale Dienste", "Sozialwerk"])
        name = f"{long} {kind} {region} gGmbH"
        welfare.append(Traeger(name, short, "freigemeinnützig", _slug(f"{short} {kind} {region}")))
    private = []
    names: set[str] = set()
    while len(private) < 26:
        if rng.random() < 0.5:
            base = f"{_pick(rng, PRIVATE_KINDS)} {_pick(rng, SURNAMES)}"
        else:
            base = f"{_pick(rng, PRIVATE_WORDS)} {_pick(rng, PRIVATE_KINDS)}"
        if base in names:
            continue
        names.add(base)
        private.append(Traeger(f"{base} {_pick(rng, LEGAL_FORMS)}", base, "privat", _slug(base)))
    return welfare, private


PFLEGE_COUNTS = {  # facilities per type in the district
    "ambulanter Pflegedienst": 46, "vollstationäre Pflege": 28, "Tagespflege": 34,
    "Kurzzeitpflege": 10, "Pflegestützpunkt": 3, "Hospiz": 2, "betreutes Wohnen": 32,
}
PFLEGE_HOURS = {
    "ambulanter Pflegedienst": ["Mo-Fr 07:00-16:00", "Mo-Fr 08:00-15:00", "Mo-Fr 07:30-15:30"],
    "vollstationäre Pflege": ["24/7"],
    "Tagespflege": ["Mo-Fr 07:30-16:00", "Mo-Fr 07:00-16:30", "Mo-Fr 08:00-16:00"],
    "Kurzzeitpflege": ["24/7"],
    "Pflegestützpunkt": ["Mo,We 09:00-12:00; Tu 09:00-12:00,13:00-18:00; Th 13:00-16:00",
                         "Tu 09:00-12:00,13:00-18:00; Th 09:00-12:00,13:00-16:00"],
    "Hospiz": ["24/7"],
    "betreutes Wohnen": ["Mo-Fr 08:00-12:00", "Mo-Th 09:00-15:00; Fr 09:00-12:00"],
}
PFLEGE_WHEELCHAIR = {  # share of wheelchair-accessible sites; homes and hospices always are
    "ambulanter Pflegedienst": 0.6, "betreutes Wohnen": 0.8, "Pflegestützpunkt": 0.9,
}
PFLEGE_COLUMNS = ["Nr.", "Name", "Art", "Träger", "Trägerart", "Straße", "Hausnummer", "PLZ",
                  "Ort", "AGS", "Plätze", "Telefon", "E-Mail", "Website", "Rollstuhlgerecht",
                  "Sprachen", "Öffnungszeiten", "Rechtswert", "Hochwert"]


def care_locations(rng: np.random.Generator, gemeinden: list[Gemeinde],
                   settlements: list[Settlement]) -> list[list]:
    welfare, private = _traeger_pool(rng)
    hh = np.array([g.households for g in gemeinden], dtype=float)
    towns = [i for i, g in enumerate(gemeinden) if g.is_town]
    by_size = sorted(towns, key=lambda i: -gemeinden[i].households)
    rows: list[dict] = []
    used_names: set[str] = set()
    homes: list[dict] = []
    for art, count in PFLEGE_COUNTS.items():
        for k in range(count):
            if art == "Pflegestützpunkt":
                gi = by_size[k]
            elif art == "Hospiz":
                gi = by_size[k * 2]  # two different, large towns
            elif art == "Kurzzeitpflege" and homes and rng.random() < 0.6:
                home = homes[int(rng.integers(0, len(homes)))]  # places inside a nursing home
                row = {**home, "Art": art, "Name": f"Kurzzeitpflege im {home['Name']}",
                       "Plätze": int(rng.integers(4, 13))}
                if row["Name"] not in used_names:
                    used_names.add(row["Name"])
                    rows.append(row)
                    continue
                gi = int(rng.choice(len(gemeinden), p=hh / hh.sum()))
            else:
                w = hh * np.array([1.6 if g.is_town else 1.0 for g in gemeinden])
                gi = int(rng.choice(len(gemeinden), p=w / w.sum()))
            row = _care_row(rng, art, gemeinden[gi], settlements, gi, welfare, private)
            if row["Name"] in used_names:
                row["Name"] = f"{row['Name']} {gemeinden[gi].name}"
            if row["Name"] in used_names:
                row["Name"] = f"{row['Name']} {row['Straße']}"
            used_names.add(row["Name"])
            rows.append(row)
            if art == "vollstationäre Pflege":
                homes.append(row)
    rows.sort(key=lambda r: (r["AGS"], r["Art"], r["Name"]))
    table = []
    for i, r in enumerate(rows, 1):
        r["Nr."] = f"EE-PF-{i:04d}"
        table.append([r.get(c) for c in PFLEGE_COLUMNS])
    return table


def _care_row(rng: np.random.Generator, art: str, g: Gemeinde, settlements: list[Settlement],
              gi: int, welfare: list[Traeger], private: list[Traeger]) -> dict:
    local = [s for s in settlements if s.gemeinde == gi]
    w = np.array([s.households * (3 if s.core else 1) for s in local], dtype=float)
    s = local[int(rng.choice(len(local), p=w / w.sum()))]
    x, y = near(rng, g.inner, s.x, s.y, 350 if s.core else 150)
    if art == "Pflegestützpunkt":
        tr = Traeger("Landkreis Elbe-Elster und Pflege- und Krankenkassen", "Landkreis",
                     "öffentlich", "pflegestuetzpunkt-elbe-elster")
    elif art == "betreutes Wohnen" and g.is_town and rng.random() < 0.3:
        tr = Traeger(f"Wohnungsgesellschaft {g.name} mbH", "Wohnungsgesellschaft", "öffentlich",
                     _slug(f"wg {g.name}"))
    else:
        share_private = {"ambulanter Pflegedienst": 0.6, "Hospiz": 0.0}.get(art, 0.4)
        pool = private if rng.random() < share_private else welfare
        tr = pool[int(rng.integers(0, len(pool)))]
    house = _pick(rng, HOUSE_NAMES)
    street = _pick(rng, STREETS)
    name = {
        "ambulanter Pflegedienst": (f"{tr.short} Sozialstation {g.name}"
                                    if tr.art != "privat" else tr.short),
        "vollstationäre Pflege": _pick(rng, [f"Seniorenzentrum {house}", f"Pflegeheim {house}",
                                             f"Seniorenheim {house}", f"Haus {house}"]),
        "Tagespflege": _pick(rng, [f"Tagespflege {house}", f"Tagespflege {g.name}",
                                   f"{tr.short} Tagespflege {house}"]),
        "Kurzzeitpflege": f"Kurzzeitpflege {house}",
        "Pflegestützpunkt": f"Pflegestützpunkt {g.name}",
        "Hospiz": f"Hospiz {_pick(rng, HOSPIZ_NAMES)}",
        "betreutes Wohnen": _pick(rng, [f"Betreutes Wohnen {street}",
                                        f"Seniorenwohnanlage {house}",
                                        f"Service-Wohnen {house}"]),
    }[art]
    places = {
        "vollstationäre Pflege": (40, 121), "Tagespflege": (12, 25), "Kurzzeitpflege": (8, 21),
        "Hospiz": (8, 13), "betreutes Wohnen": (12, 61),
    }.get(art)
    email = website = None
    if rng.random() > 0.08:
        box = _pick(rng, ["info", "kontakt", "pflege", "verwaltung", _slug(g.name)])
        email = f"{box}@{tr.domain}.example"
    if tr.art != "privat" or rng.random() > 0.25:
        website = f"https://www.{tr.domain}.example/"
        if tr.art != "privat":
            website += _slug(name)
    return {
        "Name": name, "Art": art, "Träger": tr.name, "Trägerart": tr.art,
        "Straße": street, "Hausnummer": _house_number(rng), "PLZ": g.plz, "Ort": g.name,
        "AGS": g.ags, "Plätze": int(rng.integers(*places)) if places else None,
        "Telefon": _phone(rng, g.plz), "E-Mail": email, "Website": website,
        "Rollstuhlgerecht": "ja" if rng.random() < PFLEGE_WHEELCHAIR.get(art, 1.0) else "nein",
        "Sprachen": _pick(rng, SPRACHEN, SPRACHEN_P),
        "Öffnungszeiten": _pick(rng, PFLEGE_HOURS[art]),
        "Rechtswert": round(x, 1), "Hochwert": round(y, 1),
    }


def write_pflege(rows: list[list], out: Path) -> int:
    """An office-style workbook: title banner, source note, blank row, header on row 4."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "Einrichtungen"
    ws["A1"] = ("Pflegeangebote im Landkreis Elbe-Elster – Stand "
                f"{STAND_PFLEGE.strftime('%d.%m.%Y')}")
    ws["A1"].font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=8)
    ws["A2"] = ("Quelle: Landkreis Elbe-Elster, Sozialamt / Pflegestützpunkte (Demo-Daten, "
                "generiert); Koordinaten: ETRS89 / UTM Zone 33N (EPSG:25833)")
    ws["A2"].font = Font(italic=True)
    ws.append([])  # row 3 stays empty
    ws.append(PFLEGE_COLUMNS)
    head = PatternFill("solid", fgColor="DDEBF7")
    for cell in ws[4]:
        cell.font = Font(bold=True)
        cell.fill = head
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        ws.append(row)
    for col in ("R", "S"):
        for cell in ws[col][4:]:
            cell.number_format = "0.0"
    widths = [12, 44, 24, 48, 16, 26, 10, 7, 22, 10, 7, 16, 40, 56, 10, 26, 44, 12, 12]
    for i, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "C5"
    ws.auto_filter.ref = f"A4:{get_column_letter(len(PFLEGE_COLUMNS))}{4 + len(rows)}"

    notes = wb.create_sheet("Hinweise")
    for line in [
        ["Hinweise zur Tabelle „Einrichtungen“"],
        [],
        ["Inhalt", "Ambulante Pflegedienste, Pflegeheime, Tages- und Kurzzeitpflege, "
                   "Pflegestützpunkte, Hospize und betreutes Wohnen im Landkreis Elbe-Elster."],
        ["Stand", STAND_PFLEGE.strftime("%d.%m.%Y")],
        ["Koordinaten", "Rechtswert/Hochwert in ETRS89 / UTM Zone 33N (EPSG:25833), Meter."],
        ["Plätze", "Pflegeplätze bzw. Wohnungen; leer bei ambulanten Diensten und Beratung."],
        ["Öffnungszeiten", "Schreibweise wie OpenStreetMap opening_hours (Mo-Fr 08:00-16:00, "
                           "24/7)."],
        ["Demo-Daten", "Alle Einträge sind zufällig erzeugt (pipelines/generate_demo_data.py). "
                       "Namen, Adressen, Telefonnummern und E-Mail-Adressen sind erfunden; "
                       "E-Mail- und Web-Adressen liegen auf der reservierten Domain .example."],
        ["Gebietsgrenzen", "© GeoBasis-DE / BKG 2021 (Daten verändert), dl-de/by-2-0"],
    ]:
        notes.append(line)
    notes["A1"].font = Font(bold=True, size=12)
    notes.column_dimensions["A"].width = 18
    notes.column_dimensions["B"].width = 110

    wb.properties.creator = "generate_demo_data.py"
    wb.properties.created = dt.datetime.combine(STAND_PFLEGE, dt.time())
    buf = io.BytesIO()
    wb.save(buf)
    _write_zip(out, _pinned_xlsx_members(buf.getvalue()))
    return len(rows)


def _pinned_xlsx_members(data: bytes) -> list[tuple[str, bytes]]:
    """The workbook's parts, with the save time openpyxl writes replaced by a fixed one."""
    members = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            body = zf.read(name)
            if name == "docProps/core.xml":
                stamp = f"{STAND_PFLEGE.isoformat()}T00:00:00Z".encode()
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + stamp + rb"\g<2>", body)
            members.append((name, body))
    return members


# --- mobility hubs -------------------------------------------------------------------------------

MOBILITY_COLUMNS = ["ID", "Name", "Typ", "Betreiber", "Kapazität", "Ladepunkte", "Leistung (kW)",
                    "Steckertypen", "Barrierefrei", "Öffnungszeiten", "Längengrad", "Breitengrad"]


def mobility_hubs(rng: np.random.Generator, gemeinden: list[Gemeinde],
                  settlements: list[Settlement]) -> list[list]:
    cores = [s for s in settlements if s.core]
    villages = sorted((s for s in settlements if not s.core), key=lambda s: -s.households)
    bike_op = f"{_pick(rng, BIKE_SHARING_NAMES)} {_pick(rng, MOBILITY_LEGAL)}"
    car_ops = [f"{_pick(rng, CAR_SHARING_NAMES)} {region} {_pick(rng, MOBILITY_LEGAL)}"
               for region in ("Elbe-Elster", "Niederlausitz")]
    rows: list[dict] = []

    def add(prefix: str, typ: str, s: Settlement, name: str, sigma: float, **attrs) -> None:
        g = gemeinden[s.gemeinde]
        x, y = near(rng, g.inner, s.x, s.y, sigma)
        lon, lat = UTM_TO_WGS84.transform(x, y)
        n = sum(r["prefix"] == prefix for r in rows) + 1
        rows.append({"prefix": prefix, "ID": f"EE-{prefix}-{n:03d}", "Name": name, "Typ": typ,
                     "Längengrad": lon, "Breitengrad": lat, **attrs})

    largest = {id(s) for s in sorted(cores, key=lambda s: -s.households)[:4]}
    for s in cores:
        g = gemeinden[s.gemeinde]
        if id(s) in largest or rng.random() < 0.5:
            power = _pick(rng, [22.0, 22.0, 11.0, 50.0])
            add("MS", "Mobilitätsstation", s, f"Mobilitätsstation {g.name} "
                f"{_pick(rng, ['Bahnhof', 'Busbahnhof', 'Markt'])}", 300,
                Betreiber="Landkreis Elbe-Elster", Kapazität=int(rng.integers(10, 41)),
                Ladepunkte=int(rng.integers(2, 5)), Leistung=power,
                Steckertypen=("DC Kupplung Combo, AC Steckdose Typ 2" if power > 22
                              else "AC Steckdose Typ 2"),
                Barrierefrei="ja", Öffnungszeiten="24/7")
        if rng.random() < 0.9:
            add("PR", "P+R", s, f"P+R {g.name} {_pick(rng, ['Bahnhof', 'Nord', 'Süd', 'Zentrum'])}",
                500, Betreiber=g.administration, Kapazität=int(rng.integers(20, 151)),
                Barrierefrei=_pick(rng, ["ja", "ja", "nein"]), Öffnungszeiten="24/7")
    bike_sites = cores + villages[:6]
    for s in bike_sites:
        g = gemeinden[s.gemeinde]
        add("BS", "Bikesharing", s, f"Leihrad-Station {g.name} {_pick(rng, LOCATIONS)}", 400,
            Betreiber=bike_op, Kapazität=int(rng.integers(5, 13)), Barrierefrei="ja",
            Öffnungszeiten="Mar-Oct 06:00-22:00")
    for s in sorted(cores, key=lambda s: -s.households)[:9]:
        g = gemeinden[s.gemeinde]
        electric = rng.random() < 0.7
        add("CS", "Carsharing", s, f"Carsharing {g.name} {_pick(rng, LOCATIONS)}", 400,
            Betreiber=_pick(rng, car_ops), Kapazität=int(rng.integers(1, 4)),
            Ladepunkte=int(rng.integers(1, 3)) if electric else None,
            Leistung=_pick(rng, [11.0, 22.0]) if electric else None,
            Steckertypen="AC Steckdose Typ 2" if electric else None,
            Barrierefrei=_pick(rng, ["ja", "nein"]), Öffnungszeiten="24/7")
    benches = rng.choice(len(villages), size=min(46, len(villages)), replace=False)
    for vi in np.sort(benches):
        s = villages[int(vi)]
        g = gemeinden[s.gemeinde]
        street = _pick(rng, ["Dorfstraße", "Hauptstraße", "Am Anger", "Bushaltestelle",
                             "Kirche", "Dorfplatz", "Ortsausgang", "Am Konsum"])
        add("MB", "Mitfahrbank", s, f"Mitfahrbank {g.name}, {street}", 120,
            Betreiber=g.administration, Kapazität=int(rng.integers(2, 5)),
            Barrierefrei="ja" if rng.random() < 0.3 else "nein")
    table = []
    for r in rows:
        leistung = r.get("Leistung")
        table.append([
            r["ID"], r["Name"], r["Typ"], r.get("Betreiber"), r.get("Kapazität"),
            r.get("Ladepunkte"), None if leistung is None else f"{leistung:.1f}".replace(".", ","),
            r.get("Steckertypen"), r.get("Barrierefrei"), r.get("Öffnungszeiten"),
            f"{r['Längengrad']:.6f}".replace(".", ","), f"{r['Breitengrad']:.6f}".replace(".", ","),
        ])
    return table


def write_mobilitaet(rows: list[list], out: Path) -> int:
    """Semicolon CSV in Windows-1252 with CRLF line ends, as spreadsheet exports produce it."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(MOBILITY_COLUMNS)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    out.write_bytes(buf.getvalue().encode("cp1252"))
    return len(rows)


# --- on-demand bus stops ------------------------------------------------------------------------

RUFBUS_COLUMNS = ["stop_id", "stop_name", "betreiber", "rollstuhlgerecht", "bedienzeiten",
                  "lon", "lat"]
RUFBUS_OPERATOR = "Rufbus Elbe-Elster (Demo-Daten, generiert)"
RUFBUS_PLACES = ["Dorfplatz", "Kirche", "Dorfstraße", "Anger", "Feuerwehr", "Gasthof",
                 "Schule", "Ortsmitte", "Friedhof", "Teich", "Waldweg", "Siedlung"]
RUFBUS_TOWN_PLACES = ["Markt", "Bahnhof", "Rathaus", "Busbahnhof"]
RUFBUS_HOURS = ["Mo-Fr 05:30-20:00, Sa 08:00-18:00; Anmeldung 60 min vorher",
                "Mo-Fr 06:00-19:00; Anmeldung 90 min vorher",
                "Mo-So 07:00-22:00; Anmeldung 60 min vorher"]


def rufbus_stops(gemeinden: list[Gemeinde], settlements: list[Settlement]) -> list[list]:
    """Stops of an on-demand bus: most villages have one (beside their bus stop), the first
    village of every municipality always, each town centre two; named "Rufbus …" with the
    municipality and the place; operator and names say they are generated. Drawn from a
    generator of their own (the other files stay as they were)."""
    rng = np.random.default_rng([SEED, 2])
    rows: list[list] = []
    used: dict[int, set[str]] = {}
    for s in settlements:
        g = gemeinden[s.gemeinde]
        first = s.gemeinde not in used
        places = (list(rng.choice(RUFBUS_TOWN_PLACES, 2, replace=False)) if s.core
                  else [_pick(rng, RUFBUS_PLACES)] if rng.random() < 0.75 or first else [])
        for place in places:
            taken = used.setdefault(s.gemeinde, set())
            name, k = f"Rufbus {g.name}, {place}", 2
            while name in taken:
                name, k = f"Rufbus {g.name}, {place} {k}", k + 1
            taken.add(name)
            x, y = near(rng, g.inner, s.x, s.y, 250 if s.core else 120)
            lon, lat = UTM_TO_WGS84.transform(x, y)
            rows.append([f"EE-RB-{len(rows) + 1:03d}", name, RUFBUS_OPERATOR,
                         _pick(rng, ["ja", "ja", "nein", ""]), _pick(rng, RUFBUS_HOURS),
                         f"{lon:.6f}", f"{lat:.6f}"])
    return rows


def write_rufbus(rows: list[list], out: Path) -> int:
    """Comma-separated UTF-8 with decimal points, as a timetable system exports it."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RUFBUS_COLUMNS)
    writer.writerows(rows)
    out.write_bytes(buf.getvalue().encode("utf-8"))
    return len(rows)

# --- settlements (villages with inhabitants) -----------------------------------------------------


def write_siedlungen(settlements: list[Settlement], gemeinden: list[Gemeinde], out: Path) -> int:
    """The generated settlements as a UTF-8 CSV in EPSG:25833: one row per town centre or
    village with its municipality's AGS, households and inhabitants (households times the
    district's persons per household). Names are made up ("Ortslage N"): the generator places
    settlements at random, they are not the district's real villages."""
    counter: dict[int, int] = {}  # rows per municipality (the id)
    villages: dict[int, int] = {}  # villages per municipality (the made-up name)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "name", "ags", "gemeinde", "ortskern", "haushalte", "einwohner",
                     "x", "y"])
    for s in settlements:
        g = gemeinden[s.gemeinde]
        counter[s.gemeinde] = counter.get(s.gemeinde, 0) + 1
        if not s.core:
            villages[s.gemeinde] = villages.get(s.gemeinde, 0) + 1
        name = f"{g.name} (Kern)" if s.core else f"{g.name}, Ortslage {villages[s.gemeinde]}"
        writer.writerow([f"{g.ags}-{counter[s.gemeinde]:02d}", name, g.ags, g.name,
                         "ja" if s.core else "nein", s.households,
                         round(s.households * PERSONS_PER_HOUSEHOLD), f"{s.x:.1f}", f"{s.y:.1f}"])
    out.write_text(buf.getvalue(), encoding="utf-8")
    return len(settlements)


# --- main ----------------------------------------------------------------------------------------


def generate(out: Path) -> dict[str, int]:
    """Write all generated sources into `out`; returns the row count of each file."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    gemeinden = load_gemeinden()
    settlements = build_settlements(rng, gemeinden)
    cells = broadband_cells(rng, gemeinden, settlements)
    counts = {"breitband.zip": write_breitband(cells, gemeinden, out / "breitband.zip")}
    counts["pflege.xlsx"] = write_pflege(care_locations(rng, gemeinden, settlements),
                                         out / "pflege.xlsx")
    counts["mobilitaet_hubs.csv"] = write_mobilitaet(
        mobility_hubs(rng, gemeinden, settlements), out / "mobilitaet_hubs.csv")
    counts["rufbus_haltestellen.csv"] = write_rufbus(rufbus_stops(gemeinden, settlements),
                                                     out / "rufbus_haltestellen.csv")
    counts["siedlungen.csv"] = write_siedlungen(settlements, gemeinden, out / "siedlungen.csv")
    _report_broadband(cells)
    return counts


def _report_broadband(cells: dict[str, np.ndarray]) -> None:
    hh = cells["haushalte"]
    total = hh.sum()
    shares = {k: hh[cells["klasse"] == k].sum() / total for k in CLASSES}
    white = cells["programm"] == "weiße Flecken"
    active = white & (cells["status"] != "verfügbar")
    print(f"  broadband: {len(hh)} cells, {total} households; "
          + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    print(f"  white-spot rollout: {hh[active].sum()} households, "
          f"{cells['unternehmen'][active].sum()} businesses, {cells['schulen'][active].sum()} "
          f"schools; grey spots: {(cells['programm'] == 'graue Flecken').sum()} cells")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT.relative_to(HERE.parent)})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts = generate(args.out)
    for name, n in counts.items():
        print(f"{args.out / name}: {n} rows")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
