"""Metadata quality in the spirit of the EU Metadata Quality Assessment, and staleness.

Each check belongs to one MQA dimension and is worth points; the score is the share of points
a record earns, and `missing` lists in German what a data manager should add. A dataset is
stale when its last change is older than its update frequency allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hub.catalog.model import Record
from hub.catalog.vocab import Organization, Vocabularies

Check = tuple[str, str, int, Callable[[Record], bool]]  # dimension, what is missing, points

CHECKS: tuple[Check, ...] = (
    ("Auffindbarkeit", "Schlagwörter", 30, lambda r: bool(r.keywords)),
    ("Auffindbarkeit", "Themen (EU-Datenthemen)", 30, lambda r: bool(r.themes)),
    ("Auffindbarkeit", "räumlicher Bezug (AGS oder Ausdehnung)", 20,
     lambda r: bool(r.spatial_ags or r.bbox)),
    ("Auffindbarkeit", "zeitlicher Bezug", 20, lambda r: bool(r.temporal)),
    ("Zugänglichkeit", "Zugang zu den Daten (Download, Schnittstelle oder Hinweis)", 50,
     lambda r: bool(r.distributions or r.version or r.access_note)),
    ("Zugänglichkeit", "Download-Adresse", 20,
     lambda r: bool(r.version) or any(d.kind == "download" for d in r.distributions)),
    ("Interoperabilität", "Format aus dem EU-Vokabular", 20,
     lambda r: bool(r.version) or bool(r.distributions)),
    ("Interoperabilität", "Datenschema (conforms to)", 20, lambda r: bool(r.conforms_to)),
    ("Wiederverwendbarkeit", "Lizenz", 30, lambda r: bool(r.license)),
    ("Wiederverwendbarkeit", "Kontakt (E-Mail oder Webseite)", 20,
     lambda r: bool(r.contact.get("email") or r.contact.get("url"))),
    ("Wiederverwendbarkeit", "Herausgeber", 10, lambda r: bool(r.publisher)),
    ("Kontext", "Beschreibung mit mindestens 80 Zeichen", 10, lambda r: len(r.description) >= 80),
    ("Kontext", "Aktualisierungsintervall", 10, lambda r: r.frequency not in ("", "UNKNOWN")),
    ("Kontext", "Datum der letzten Änderung", 10, lambda r: bool(r.last_modified)),
    ("Kontext", "Datum der Erstveröffentlichung", 5, lambda r: bool(r.issued)),
)
TOTAL = sum(points for _, _, points, _ in CHECKS)


@dataclass
class Assessment:
    name: str
    title: str
    score: int  # 0-100
    missing: list[str]
    stale: bool
    age_days: int | None
    allowed_days: int | None
    owner: str


def assess(record: Record, vocab: Vocabularies, today: dt.date | None = None,
           organizations: Mapping[str, Organization] | None = None) -> Assessment:
    """`organizations`: `vocab.organizations`, read once by a caller that assesses many
    records (each read looks at the catalog's registered ones)."""
    today = today or dt.date.today()
    passed = [(check, check[3](record)) for check in CHECKS]
    earned = sum(points for (_, _, points, _), ok in passed if ok)
    missing = [f"{dimension}: {what}" for (dimension, what, _, _), ok in passed if not ok]
    allowed = vocab.frequency_days(record.frequency)
    last = record.last_modified
    age = (today - dt.date.fromisoformat(last[:10])).days if last else None
    stale = allowed is not None and (age is None or age > allowed)
    org = (vocab.organizations if organizations is None else organizations).get(
        record.publisher)
    owner = ", ".join(x for x in (org.name if org else record.publisher,
                                  record.contact.get("name", ""),
                                  record.contact.get("email", "")) if x)
    return Assessment(record.name, record.title, round(100 * earned / TOTAL), missing, stale,
                      age, allowed, owner)


def report(records: list[Record], vocab: Vocabularies,
           today: dt.date | None = None) -> list[Assessment]:
    """Worst first: stale before fresh, then by score."""
    organizations = vocab.organizations
    found = [assess(r, vocab, today, organizations) for r in records]
    return sorted(found, key=lambda a: (not a.stale, a.score, a.name))
