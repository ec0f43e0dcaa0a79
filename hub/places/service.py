"""The answers per place for one caller: which datasets they may see, the places, search and
the answers, computed per current version and kept.

Access: only the answering datasets the caller may see (`hub.access.DataAccess.may_see`) take
part — the places themselves come from the boundaries dataset, postcodes from visible datasets
with `plz` and `ags` columns. A topic whose dataset is hidden, missing or damaged is left out
of the answer, exactly as if it were not configured.

Speed: versions are read into memory once (`hub.places.tables`); answers are kept (the last
2,048, some 10 KB each) keyed by the place or point and the (dataset, version, checksum) of
every source that took part, so a new version (or a caller who sees other datasets) gets a new
key and old answers age out. The
`need` callback of each method is told the cost of a step before it runs (`hub.api.ogc.work`:
on the event loop, anything that grows with the data moves to the worker pool).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.access import DataAccess, Viewer
from hub.api.ogc.datasets import Current
from hub.api.ogc.work import UNBOUNDED
from hub.errors import HubError
from hub.ingest.geometry import Extent
from hub.places import answers as topics
from hub.places.config import Answers
from hub.places.gazetteer import Gazetteer, Place
from hub.places.tables import Table, Tables
from hub.store.integrity import CorruptVersion
from hub.store.versions import Dataset, Store, Version

if TYPE_CHECKING:
    from hub.api.ogc.features import About

Need = Callable[[float], None]
ANSWERED = ("broadband", "care", "mobility")
POINT_DECIMALS = 5  # points are answered (and kept) to about a metre
SOURCE_SECONDS = 5  # how long catalog facts of a source (title, licence) are kept


class PlaceNotFound(HubError):
    """No place of that name: 404, with the closest names."""

    http_status = 404

    def __init__(self, name: str, suggestions: list[Place]):
        super().__init__(f"no place named {name!r}")
        self.suggestions = suggestions


class OutsideDistrict(HubError):
    """A point outside the district: 404 naming the parameters."""

    http_status = 404


@dataclass(frozen=True)
class Sources:
    """The current versions of the answering datasets a caller may see, by topic, and
    whether all of them are public."""

    versions: dict[str, tuple[Dataset, Version]]
    public: bool

    @property
    def key(self) -> tuple[tuple[str, str, int, str], ...]:
        return tuple(sorted((t, v.dataset, v.version, v.checksum)
                            for t, (_, v) in self.versions.items()))


class Places:
    """Places and answers over the store, for the JSON API and the portal."""

    def __init__(self, store: Store, answers: Answers, access: DataAccess,
                 about: Callable[[str], About | None], extent: Extent | None,
                 held: Current | None = None, keep: int = 2048):
        self.answers, self.access, self.about, self.extent = answers, access, about, extent
        self.held = held or Current(store)
        self.tables = Tables(store)
        self.keep = keep
        self._kept: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    # -- who sees what ---------------------------------------------------------------------

    def sources(self, viewer: Viewer) -> Sources:
        """The answering datasets' current versions that `viewer` may see."""
        entries = self.held.entries()
        found, public = {}, True
        for topic, name in self.answers.datasets().items():
            entry = entries.get(name)
            if entry is None or entry[1].broken:
                continue
            level, organizations = self.access.of(entry[0])  # = DataAccess.may_see, asked once
            if viewer.may_see(level, organizations):
                found[topic] = entry
                public = public and level == "public"
        return Sources(found, public)

    # -- places ----------------------------------------------------------------------------

    def listing(self, sources: Sources, need: Need) -> list[dict[str, Any]]:
        return [p.summary() for p in self.gazetteer(sources, need).places]

    def search(self, sources: Sources, query: str, need: Need) -> dict[str, Any]:
        """Places matching `query` (name, prefix, postcode); none: the closest names."""
        gazetteer = self.gazetteer(sources, need)
        matches = gazetteer.search(query)
        return {"query": query, "matches": [m.summary() for m in matches],
                "suggestions": [] if matches else
                [p.summary() for p in gazetteer.suggest(query)]}

    def place(self, sources: Sources, name: str, need: Need) -> dict[str, Any]:
        """The answers for the place `name` (a slug); raises `PlaceNotFound` with
        suggestions."""
        gazetteer = self.gazetteer(sources, need)
        place = gazetteer.by_slug.get(name)
        if place is None:
            raise PlaceNotFound(name, gazetteer.suggest(name))
        body = self._kept_or(("place", name, sources.key), lambda: {
            "place": place.detail(),
            "answers": self._answers(sources, place.ags, place.lon, place.lat, need)})
        return self._with_sources(body, sources)

    def point(self, sources: Sources, lon: float, lat: float, need: Need) -> dict[str, Any]:
        """The answers for any point of the district (raises `OutsideDistrict`)."""
        lon, lat = round(lon, POINT_DECIMALS), round(lat, POINT_DECIMALS)
        if self.extent is not None and not self.extent.contains(lon, lat):
            raise OutsideDistrict(f"lon, lat: the point ({lon}, {lat}) lies outside the "
                                  "district")
        gazetteer = self.gazetteer(sources, need)
        place = gazetteer.at(lon, lat)
        if place is None and gazetteer.places:
            raise OutsideDistrict(f"lon, lat: the point ({lon}, {lat}) lies outside the "
                                  f"district's municipalities (more than "
                                  f"{self.answers.buffer_km:g} km)")
        body = self._kept_or(("point", lon, lat, sources.key), lambda: {
            "point": {"lon": lon, "lat": lat},
            "place": place.summary() if place else None,
            "answers": self._answers(sources, place.ags if place else None, lon, lat, need)})
        return self._with_sources(body, sources)

    def gazetteer(self, sources: Sources, need: Need) -> Gazetteer:
        """The places of the visible boundaries, with the postcodes of the visible data."""
        tables = self._tables(sources, need)
        with_postcodes = [t for topic, t in tables.items()
                          if topic != "boundaries" and t.rows and "plz" in t.rows[0]
                          and "ags" in t.rows[0]]
        key = ("gazetteer", tables["boundaries"].key if "boundaries" in tables else None,
               tuple(t.key for t in with_postcodes))
        return self._kept_or(key, lambda: Gazetteer(tables.get("boundaries"), with_postcodes,
                                                    self.answers.buffer_km))

    # -- answers ---------------------------------------------------------------------------

    def _answers(self, sources: Sources, ags: str | None, lon: float, lat: float,
                 need: Need) -> dict[str, Any]:
        tables = self._tables(sources, need)
        need(sum(len(t.rows) for t in tables.values()))
        found: dict[str, Any] = {}
        if "broadband" in tables:
            found["broadband"] = topics.broadband(tables["broadband"], ags, lon, lat)
        if "care" in tables:
            found["care"] = topics.care(tables["care"], lon, lat)
        if "mobility" in tables:
            found["mobility"] = topics.mobility(tables["mobility"], lon, lat)
        return found

    def topic_tables(self, sources: Sources, need: Need) -> dict[str, Table]:
        """The visible answering datasets in memory by topic (the portal's curated maps)."""
        return self._tables(sources, need)

    def _tables(self, sources: Sources, need: Need) -> dict[str, Table]:
        """The visible versions in memory (read when not yet, off the event loop); a
        damaged one is left out."""
        tables = {}
        for topic, (_, version) in sources.versions.items():
            table = self.tables.cached(version)
            if table is None:
                need(UNBOUNDED)
                try:
                    table = self.tables.load(version)
                except CorruptVersion:
                    continue
            tables[topic] = table
        return tables

    def _with_sources(self, body: dict[str, Any], sources: Sources) -> dict[str, Any]:
        """The kept answer with each topic's source (whose catalog facts are kept apart: a
        title may change without a new version)."""
        answered = {topic: {**found, "source": self.source(*sources.versions[topic])}
                    for topic, found in body["answers"].items()}
        return {**body, "answers": answered}

    def source(self, dataset: Dataset, version: Version) -> dict[str, Any]:
        """Where an answer comes from: dataset, title, version, date, licence and links (kept
        per version for `SOURCE_SECONDS`: an edited title shows after a few seconds)."""
        key = ("source", dataset.name, version.version, version.checksum,
               int(time.monotonic() // SOURCE_SECONDS))
        return self._kept_or(key, lambda: self._source(dataset, version))

    def _source(self, dataset: Dataset, version: Version) -> dict[str, Any]:
        about = self.about(dataset.name)
        links = {"collection": f"/ogc/collections/{dataset.name}",
                 "items": f"/ogc/collections/{dataset.name}/items"}
        if about is not None and about.page_url:
            links = {"dataset": about.page_url, **links}
        licence = ({"title": about.license_title, "url": about.license_url or None}
                   if about is not None and about.license_title else None)
        return {"dataset": dataset.name,
                "title": (about.title if about is not None else "") or dataset.title,
                "version": version.version, "date": version.finished[:10],
                "modified": version.finished,
                "attribution": (about.attribution if about is not None else "")
                or dataset.attribution or None,
                "license": licence, "links": links}

    def _kept_or(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        value = make()
        with self._lock:
            self._kept[key] = value
            while len(self._kept) > self.keep:
                self._kept.popitem(last=False)
        return value
