"""The place pages: `/orte` (place search and the list of municipalities) and `/orte/{slug}`
(the answers for a municipality in sentences with numbers).

Everything comes from the places core (`hub.places.Places`) for the request's viewer
(`hub.access`: anonymous visitors get answers from public data only, staff also from what they
may see) — the same answers as /api/orte, nothing computed twice; the templates word them in
the page's language. Like the JSON API, an answer is computed on the event loop while it is
cheap and in a worker thread otherwise (`hub.places.routes.computed`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from hub.access import Viewer
from hub.api.ogc import work
from hub.places import PlaceNotFound, Places
from hub.places.answers import MOBILITY
from hub.places.routes import MAX_QUERY, MAX_SLUG, computed, has_control
from hub.places.service import Need, Sources
from hub.web.portal.maps import SYMBOLS
from hub.web.portal.pages import N_, PageError

# mobility category (hub.places.answers.MOBILITY) -> its heading
MOBILITY_TITLES = {"charging": N_("Ladesäulen"), "on_demand_bus": N_("Rufbus-Haltestellen"),
                   "ride_share_bench": N_("Mitfahrbänke"),
                   "mobility_hub": N_("Mobilitätsstationen")}
assert set(MOBILITY_TITLES) == set(MOBILITY)


class UnknownPlace(PageError):
    """A place the district does not have: 404 with the closest names."""

    def __init__(self, name: str, suggestions: list[dict[str, Any]]):
        super().__init__(404, N_("Einen Ort „%(name)s“ gibt es im Landkreis nicht."),
                         name=name[:MAX_SLUG])
        self.suggestions = suggestions


class PlacePages:
    """What the place pages show, from `Places`."""

    def __init__(self, places: Places, budget: work.Budget | None = None):
        self.places = places
        self.pool = work.Pool(budget or work.Budget())

    async def _ask(self, request: Request, viewer: Viewer,
                   compute: Callable[[Sources, Need], Any]) -> Any:
        try:
            return await computed(self.pool, request, self.places.sources(viewer), compute)
        except work.Busy as exc:
            raise PageError(503, N_("Der Server ist gerade ausgelastet. Bitte versuchen Sie "
                                    "es in %(seconds)s Sekunden noch einmal."),
                            seconds=exc.retry_after) from None

    async def index(self, request: Request, viewer: Viewer) -> dict[str, Any]:
        """The list of places, and with `q` the places found (none: suggestions)."""
        q = " ".join(request.query_params.getlist("q")).strip()
        if len(q) > MAX_QUERY:
            raise PageError(400, N_("Der Suchtext ist zu lang (höchstens %(max)s Zeichen)."),
                            max=MAX_QUERY)
        if has_control(q):
            raise PageError(400, N_("Der Suchtext enthält Steuerzeichen; bitte nur Buchstaben, "
                                    "Ziffern und Satzzeichen."))
        listing = await self._ask(request, viewer, self.places.listing)
        found = (await self._ask(request, viewer, lambda s, need: self.places.search(s, q, need))
                 if q else {"matches": [], "suggestions": []})
        return {"q": q, "places": listing, "matches": found["matches"],
                "suggestions": found["suggestions"]}

    async def place(self, request: Request, slug: str, viewer: Viewer) -> dict[str, Any]:
        """The answers for one place (an unknown one: `UnknownPlace`)."""
        if len(slug) > MAX_SLUG or has_control(slug):
            near = await self._ask(request, viewer, lambda s, need: self.places.gazetteer(s, need)
                                   .suggest(slug[:MAX_SLUG]))
            raise UnknownPlace(slug, [p.summary() for p in near])
        try:
            body = await self._ask(request, viewer,
                                   lambda s, need: self.places.place(s, slug, need))
        except PlaceNotFound as exc:
            raise UnknownPlace(slug, [p.summary() for p in exc.suggestions]) from None
        answers = body["answers"]
        return {"place": body["place"], "broadband": answers.get("broadband"),
                "care": answers.get("care"), "mobility": answers.get("mobility"),
                "mobility_titles": MOBILITY_TITLES,
                "symbols": SYMBOLS, "boundaries": self._boundaries(viewer)}

    def _boundaries(self, viewer: Viewer) -> dict[str, Any] | None:
        """The source of the place's boundary (the small map's base), when visible."""
        sources = self.places.sources(viewer)
        found = sources.versions.get("boundaries")
        return self.places.source(*found) if found else None
