"""The answers for a place, as data: numbers, items and units, no sentences (the portal
words them in its languages).

- broadband: the municipality's row of the per-municipality aggregate (households, shares
  with ≥ 1000 and ≥ 100 Mbit/s in percent, under construction, planned, by when);
- care: the nearest service of each type (`art`);
- mobility: the nearest charging stations, on-demand bus stops, ride-share benches and
  mobility hubs (`typ`), up to 30 km away (an empty list: none that near).

Distances are straight lines along the earth's surface (WGS84 geodesic) from the place's
origin, in whole metres, and say so (`distance_kind: "straight-line"`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from hub.places.tables import DISTANCE_KIND, Table

NEAREST = 3  # items per mobility category
MOBILITY_WITHIN_M = 30_000  # farther stations are no answer to "where can I charge nearby"
# mobility category -> the `typ` of the mobility schema
MOBILITY = {"charging": "Ladesäule", "on_demand_bus": "Rufbus-Haltestelle",
            "ride_share_bench": "Mitfahrbank", "mobility_hub": "Mobilitätsstation"}
# answer field -> column of the broadband aggregate
BROADBAND = {"households": "haushalte", "households_1000": "haushalte_1000",
             "households_100": "haushalte_100", "share_1000": "anteil_1000",
             "share_100": "anteil_100", "households_under_construction": "haushalte_im_bau",
             "households_planned": "haushalte_geplant", "completion_by": "fertigstellung_bis",
             "as_of": "stand"}
BROADBAND_UNITS = {"households": "households", "households_1000": "households",
                   "households_100": "households", "share_1000": "percent",
                   "share_100": "percent", "households_under_construction": "households",
                   "households_planned": "households", "completion_by": "date",
                   "as_of": "date"}


def broadband(table: Table, ags: str | None, lon: float, lat: float) -> dict[str, Any]:
    """The figures of the municipality `ags` (or, without one, of the row whose area holds
    the point); `figures` is null when the aggregate has no such row."""
    at = next((i for i, a in enumerate(table.column("ags")) if ags and a == ags), None)
    if at is None and ags is None and len(table.rows):
        inside = np.flatnonzero(shapely.contains_xy(table.shapes, lon, lat))
        at = int(inside[0]) if len(inside) else None
    figures = None
    if at is not None:
        row = table.rows[at]
        figures = {"ags": row.get("ags"), "municipality": row.get("gemeinde"),
                   **{field: row.get(column) for field, column in BROADBAND.items()}}
    return {"figures": figures, "units": BROADBAND_UNITS}


def care(table: Table, lon: float, lat: float) -> dict[str, Any]:
    """The nearest service of each type, nearest first."""
    metres = table.distances(lon, lat)
    nearest: dict[str, int] = {}
    for i, kind in enumerate(table.column("art")):
        kind = kind or ""
        if np.isfinite(metres[i]) and (kind not in nearest or metres[i] < metres[nearest[kind]]):
            nearest[kind] = i
    items = sorted(nearest.values(), key=lambda i: (metres[i], i))
    return {"nearest": [_care_item(table.rows[i], table, i, metres[i]) for i in items],
            "types": sorted(nearest), "distance_kind": DISTANCE_KIND,
            "units": {"distance_m": "m", "places": "places"}}


def _care_item(row: dict[str, Any], table: Table, i: int, metres: float) -> dict[str, Any]:
    street = " ".join(str(v) for v in (row.get("strasse"), row.get("hausnummer")) if v)
    return {"type": row.get("art"), "name": row.get("name"), "provider": row.get("traeger"),
            "address": {"street": street or None, "postcode": row.get("plz"),
                        "town": row.get("ort")},
            "phone": row.get("telefon"), "email": row.get("email"),
            "website": row.get("website"), "places": row.get("plaetze"),
            "wheelchair_accessible": row.get("rollstuhlgerecht"),
            "languages": row.get("sprachen"), "opening_hours": row.get("oeffnungszeiten"),
            **_where(table, i, metres)}


def mobility(table: Table, lon: float, lat: float) -> dict[str, Any]:
    """The nearest stations of each category (up to `NEAREST` within `MOBILITY_WITHIN_M`),
    nearest first."""
    metres = table.distances(lon, lat)
    types = np.array(table.column("typ"), dtype=object)
    categories = {}
    for category, typ in MOBILITY.items():
        rows = np.flatnonzero((types == typ) & (metres <= MOBILITY_WITHIN_M))
        rows = rows[np.lexsort((rows, metres[rows]))][:NEAREST]
        categories[category] = {"type": typ, "nearest": [
            _mobility_item(table.rows[i], table, int(i), metres[i]) for i in rows]}
    return {"categories": categories, "within_m": MOBILITY_WITHIN_M,
            "distance_kind": DISTANCE_KIND,
            "units": {"distance_m": "m", "power_kw": "kW", "capacity": "count",
                      "charging_points": "count"}}


def _mobility_item(row: dict[str, Any], table: Table, i: int, metres: float) -> dict[str, Any]:
    return {"id": row.get("id"), "name": row.get("name"), "type": row.get("typ"),
            "operator": row.get("betreiber"), "charging_points": row.get("ladepunkte"),
            "power_kw": row.get("leistung_kw"), "connectors": row.get("steckertypen"),
            "capacity": row.get("kapazitaet"),
            "wheelchair_accessible": row.get("rollstuhlgerecht"),
            "opening_hours": row.get("oeffnungszeiten"), **_where(table, i, metres)}


def _where(table: Table, i: int, metres: float) -> dict[str, Any]:
    return {"lon": round(float(table.lon[i]), 6), "lat": round(float(table.lat[i]), 6),
            "distance_m": round(float(metres)), "distance_kind": DISTANCE_KIND}
