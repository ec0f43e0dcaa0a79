"""What the OGC API needs from the catalog per dataset, kept while the catalog is unchanged.

Every OGC request needs the access in force of its dataset, and most the catalog record's
title (collection documents its description, licence and keywords too). Reading them costs
about 0.1 ms per dataset and request — as much as answering from a layer in memory — yet they
change only with a catalog write. So they are read once per dataset and *catalog state*: a
counter the catalog changes with every committed write (`hub.access.DataAccess.state`), read
on every request, so that a changed access or record is honoured by the very next request.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from hub.store.versions import Dataset


@dataclass(frozen=True)
class About:
    """Catalog facts a collection document shows when they are known (all optional)."""

    description: str = ""
    license_url: str = ""
    license_title: str = ""
    keywords: list[str] = field(default_factory=list)
    page_url: str = ""  # a human-readable landing page of the dataset
    attribution: str = ""  # the credit the licence requires (catalog record)
    title: str = ""  # the catalog record's title (the pipeline's is used without one)


@dataclass(frozen=True)
class Facts:
    dataset: Dataset  # with its catalog record's title (the record is the single source)
    level: str  # the access level in force
    orgs: list[str]  # the organisations that see it when restricted
    about: About


class CatalogFacts:
    """`of(datasets)`: their Facts, computed with `access_of` and `about` once per catalog
    `state` (without one, on every call)."""

    def __init__(self, access_of: Callable[[Dataset], tuple[str, list[str]]],
                 about: Callable[[str], About | None] | None,
                 state: Callable[[], Hashable] | None):
        self._access_of, self._about, self._state = access_of, about, state
        self._lock = threading.Lock()
        self._seen: Hashable = None
        self._facts: dict[Dataset, Facts] = {}

    def of(self, *datasets: Dataset) -> list[Facts]:
        if self._state is None:
            return [self._read(d) for d in datasets]
        state = self._state()  # before anything is read: a later write is seen next time
        with self._lock:
            if state != self._seen:
                self._facts, self._seen = {}, state
            known = self._facts
        out = []
        for d in datasets:
            found = known.get(d)
            if found is None:
                found = known[d] = self._read(d)
            out.append(found)
        return out

    def _read(self, d: Dataset) -> Facts:
        level, orgs = self._access_of(d)
        about = (self._about(d.name) if self._about else None) or About()
        titled = dataclasses.replace(d, title=about.title) if about.title else d
        return Facts(titled, level, list(orgs), about)
