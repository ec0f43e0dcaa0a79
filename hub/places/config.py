"""Which datasets answer which question: the `answers:` section of `catalog/district.yaml`.

    answers:
      boundaries: gemeinden          # the municipalities: ags, name, bez, polygon
      broadband: breitband-gemeinden # one row per municipality (ags, haushalte, anteil_1000, …)
      care: pflege                   # care services (art, name, strasse, plz, ags, …, point)
      mobility: mobilitaet           # stations (typ, name, leistung_kw, steckertypen, …, point)

A county adopting the hub maps its own datasets here; the columns each topic reads are those
of the bundled schemas (README, "Places"). A topic left out is not answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hub.errors import HubError

TOPICS = ("boundaries", "broadband", "care", "mobility")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Answers:
    """The dataset that answers each topic (None: not answered), and how far outside the
    district's municipalities a point may lie (`extent_buffer_km`)."""

    boundaries: str | None = None
    broadband: str | None = None
    care: str | None = None
    mobility: str | None = None
    buffer_km: float = 5.0

    def datasets(self) -> dict[str, str]:
        """topic -> dataset name, for the topics answered."""
        return {t: getattr(self, t) for t in TOPICS if getattr(self, t)}


def load_answers(root: Path) -> Answers:
    """The `answers:` section of `<root>/catalog/district.yaml` (none: nothing is answered).
    Raises `HubError` naming the file and key of a bad entry."""
    path = root / "catalog" / "district.yaml"
    if not path.exists():
        return Answers()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise HubError(f"{path}: YAML syntax error: {exc}") from None
    section = raw.get("answers") or {} if isinstance(raw, dict) else {}
    if not isinstance(section, dict):
        raise HubError(f"{path}: answers: a mapping of topic to dataset name expected "
                       f"({', '.join(TOPICS)})")
    unknown = sorted(str(k) for k in section if k not in TOPICS)
    if unknown:
        raise HubError(f"{path}: answers: unknown topic(s) {', '.join(unknown)}; the topics "
                       f"are {', '.join(TOPICS)}")
    for topic, name in section.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise HubError(f"{path}: answers: {topic}: {name!r} is not a dataset name "
                           "(lower-case letters, digits, '-' and '_')")
    try:
        buffer_km = float(raw.get("extent_buffer_km", 5))
    except (TypeError, ValueError):
        raise HubError(f"{path}: extent_buffer_km: {raw.get('extent_buffer_km')!r} is not a "
                       "number") from None
    return Answers(**section, buffer_km=buffer_km)
