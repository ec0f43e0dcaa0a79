"""Answers per place: the district's municipalities (from the boundaries dataset), a place
search that folds German and Lower Sorbian letters, and the answers for a place or any point —
broadband, the nearest care services, the nearest mobility stations — as structured data with
their sources, for the portal and app developers (JSON API at /api/orte).

Which datasets answer is configuration (`answers:` in catalog/district.yaml,
`hub.places.config`); who sees which answers is `hub.access` (`hub.places.service`).
"""

from hub.places.config import TOPICS, Answers, load_answers
from hub.places.gazetteer import Gazetteer, Place
from hub.places.service import OutsideDistrict, PlaceNotFound, Places

__all__ = ["TOPICS", "Answers", "Gazetteer", "OutsideDistrict", "Place", "PlaceNotFound",
           "Places", "load_answers"]
