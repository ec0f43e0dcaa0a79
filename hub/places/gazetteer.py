"""The district's places: municipalities from the boundaries dataset, each with a stable slug,
found by name (with or without diacritics, by prefix), by a postcode that occurs in the data,
or by a point; an unknown name gets the closest names as suggestions.

Names fold with `hub.text.fold`, and each place is kept under both spellings of its umlauts,
so "Mühlberg", "Muehlberg" and "Muhlberg" all find Mühlberg/Elbe; Lower Sorbian letters lose
their marks ("Chóśebuz" is found as "Chosebuz").
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from hub.places.tables import Table
from hub.text import fold, slug

KIND = "municipality"
RESERVED = {"suche", "punkt"}  # path segments of the API next to /api/orte/{slug}
SUGGESTIONS = 5
_KM_PER_DEGREE = 111.2


@dataclass(frozen=True)
class Place:
    """A municipality and the point its answers are measured from (`origin`: the polygon's
    centroid, or a point on its surface where the centroid lies outside)."""

    slug: str
    name: str
    ags: str
    designation: str  # Stadt, Gemeinde, … (the dataset's `bez`)
    lon: float
    lat: float
    origin: str
    kind: str = KIND

    def summary(self) -> dict[str, Any]:
        return {"slug": self.slug, "name": self.name, "ags": self.ags, "kind": self.kind,
                "designation": self.designation}

    def detail(self) -> dict[str, Any]:
        return {**self.summary(), "origin": {"lon": round(self.lon, 6),
                                             "lat": round(self.lat, 6), "kind": self.origin}}


@dataclass(frozen=True)
class Match:
    place: Place
    matched: str  # "name" or "postcode"
    postcode: str | None = None

    def summary(self) -> dict[str, Any]:
        found = {**self.place.summary(), "matched": self.matched}
        return found | ({"postcode": self.postcode} if self.postcode else {})


def key(text: str, umlauts: str = "ae") -> str:
    """A name as search compares it: folded words separated by one space."""
    return " ".join(re.findall(r"[0-9a-z]+", fold(text, umlauts)))


class Gazetteer:
    """The places of one boundaries version (None: none visible), with the postcodes of the
    tables given (rows with `plz` and `ags`)."""

    def __init__(self, boundaries: Table | None, postcode_tables: list[Table],
                 buffer_km: float):
        self.buffer_km = buffer_km
        places, shapes = [], []
        taken: set[str] = set()
        if boundaries is not None:
            for i, row in enumerate(boundaries.rows):
                name, ags = str(row.get("name") or ""), str(row.get("ags") or "")
                if not name or not ags or np.isnan(boundaries.lon[i]):
                    continue
                base = slug(name) or ags
                unique = base if base not in taken and base not in RESERVED else f"{base}-{ags}"
                taken.add(unique)
                places.append(Place(unique, name, ags, str(row.get("bez") or ""),
                                    float(boundaries.lon[i]), float(boundaries.lat[i]),
                                    str(boundaries.kinds[i])))
                shapes.append(boundaries.shapes[i])
        order = sorted(range(len(places)), key=lambda i: key(places[i].name))
        self.places = [places[i] for i in order]
        self._shapes = np.array([shapes[i] for i in order], dtype=object)
        self.by_slug = {p.slug: p for p in self.places}
        self.by_ags = {p.ags: p for p in self.places}
        self._keys = [(p, {key(p.name), key(p.name, "a")}) for p in self.places]
        self.postcodes: dict[str, list[Place]] = {}
        for table in postcode_tables:
            for row in table.rows:
                plz, place = str(row.get("plz") or ""), self.by_ags.get(str(row.get("ags")))
                if plz and place is not None and place not in self.postcodes.get(plz, []):
                    self.postcodes.setdefault(plz, []).append(place)

    def search(self, query: str, limit: int = 10) -> list[Match]:
        """Places whose name or a word of it starts with the query (exact names first), or
        that have a postcode starting with the query's digits."""
        wanted = key(query)
        if not wanted:
            return []
        digits = wanted.replace(" ", "")
        if digits.isdigit():
            return [Match(place, "postcode", plz) for plz in sorted(self.postcodes)
                    if plz.startswith(digits) for place in self.postcodes[plz]][:limit]
        ranked = []
        for place, keys in self._keys:
            rank = min((0 if k == wanted else 1 if k.startswith(wanted)
                        else 2 if f" {wanted}" in f" {k}" else 3 if len(wanted) >= 3
                        and wanted in k else 9) for k in keys)
            if rank < 9:
                ranked.append((rank, place))
        ranked.sort(key=lambda item: item[0])  # stable: by name within a rank
        return [Match(place, "name") for _, place in ranked[:limit]]

    def suggest(self, query: str, n: int = SUGGESTIONS) -> list[Place]:
        """The places whose names are closest to the query (never empty while there are
        places): what an unknown name is answered with."""
        wanted = key(query.replace("-", " "))
        scored = [(max(difflib.SequenceMatcher(None, wanted, k).ratio() for k in keys), i)
                  for i, (_, keys) in enumerate(self._keys)]
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [self.places[i] for _, i in scored[:n]]

    def at(self, lon: float, lat: float) -> Place | None:
        """The municipality a point lies in, or the nearest one within `buffer_km` (the
        boundaries are generalised); None when there is none."""
        if not self.places:
            return None
        inside = np.flatnonzero(shapely.contains_xy(self._shapes, lon, lat))
        if len(inside):
            return self.places[int(inside[0])]
        scale = np.cos(np.radians(lat))  # a local plane in degrees of latitude
        planar = shapely.transform(self._shapes, lambda xy: xy * [scale, 1.0])
        degrees = shapely.distance(planar, shapely.Point(lon * scale, lat))
        nearest = int(np.nanargmin(degrees))
        return self.places[nearest] if degrees[nearest] * _KM_PER_DEGREE <= self.buffer_km \
            else None
