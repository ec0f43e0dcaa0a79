"""Search expressions over catalog records: what a query language compiles to.

The catalog evaluates these trees against its in-memory snapshot (`hub.catalog.index`); query
languages of the surfaces — CKAN's Solr subset, later CQL2 or the portal's filters — only parse
into them, so matching rules live in one place.

Fields a tree may name (catalog names, not CKAN's):
- keyword fields (`Match`, `Exists`): see `KEYWORD_FIELDS`; matched case-insensitively.
- text fields (`Text`): see `TEXT_FIELDS`; `None` means all of them.
- ordered fields (`Range`): see `RANGE_FIELDS`; bounds are ISO dates/timestamps (UTC) for the
  time fields and plain strings for `name`, `title`.
"""

from __future__ import annotations

from dataclasses import dataclass

KEYWORD_FIELDS = ("id", "name", "organization", "theme", "license", "format", "access",
                  "frequency", "municipality", "keyword", "state", "origin", "restricted_to",
                  "resource")
TEXT_FIELDS = ("title", "description", "keywords", "resources", "other")
RANGE_FIELDS = ("changed", "created", "modified", "name", "title")
TIME_FIELDS = ("changed", "created", "modified")


@dataclass(frozen=True)
class All:
    """Every record (Solr's `*:*`)."""


@dataclass(frozen=True)
class Match:
    """A keyword field equals `value` (or starts with it when `prefix`)."""

    field: str
    value: str
    prefix: bool = False


@dataclass(frozen=True)
class Exists:
    """A keyword field has any value (Solr's `field:*`)."""

    field: str


@dataclass(frozen=True)
class Text:
    """Words in a text field (`None`: any text field): all of them, or as a phrase."""

    field: str | None
    words: tuple[str, ...]
    phrase: bool = False
    prefix: bool = False  # the last word is a prefix (`wind*`)


@dataclass(frozen=True)
class Range:
    """An ordered field between bounds; `None` is open (Solr's `*`)."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr = All | Match | Exists | Text | Range | And | Or | Not
