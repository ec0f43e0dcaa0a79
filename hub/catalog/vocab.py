"""Controlled vocabularies (licences, themes, frequencies, formats, access levels) and the
district's organisations, read from `catalog/` as data: a county changes YAML, not code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from hub.catalog.links import email_problem, link_problem
from hub.errors import PipelineError
from hub.text import fold

ACCESS_LEVELS = ("public", "internal", "restricted")


def _load(path: Path) -> Any:
    if not path.exists():
        raise PipelineError(f"vocabulary file missing: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: YAML syntax error: {exc}") from None


@dataclass(frozen=True)
class Term:
    """One entry of a vocabulary: its code, URI, labels and extra attributes."""

    code: str
    uri: str
    label: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Vocabulary:
    """A code list with lenient lookup (code, URI, label or alias, case and umlauts folded)."""

    name: str
    terms: tuple[Term, ...]

    @cached_property
    def _index(self) -> dict[str, Term]:
        index: dict[str, Term] = {}
        for t in self.terms:
            keys = [t.code, t.uri, t.label, *t.extra.get("aliases", []),
                    *(t.extra[k] for k in ("en", "de", "title") if t.extra.get(k))]
            for key in keys:
                index.setdefault(fold(str(key)), t)
        return index

    def find(self, value: str) -> Term | None:
        return self._index.get(fold(value)) if value else None

    def get(self, code: str) -> Term:
        for t in self.terms:
            if t.code == code:
                return t
        raise KeyError(code)

    def codes(self) -> list[str]:
        return [t.code for t in self.terms]


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    kind: str  # district | department | municipality | external
    ags: str = ""
    parent: str = ""
    email: str = ""
    url: str = ""
    description: str = ""

    def link_problems(self) -> dict[str, str]:
        """What is wrong with the organisation's url and email, by field (empty: nothing)."""
        problems = {"url": link_problem(self.url) if self.url else None,
                    "email": email_problem(self.email) if self.email else None}
        return {key: problem for key, problem in problems.items() if problem}


class Vocabularies:
    """Everything under `catalog/` that records are checked against."""

    def __init__(self, catalog_dir: Path,
                 registered: Callable[[], dict[str, Organization]] | None = None):
        """`registered`: organisations added at run time (the catalog's), beside the YAML's."""
        self.dir = Path(catalog_dir)
        self._registered = registered
        base = self.dir / "vocabularies"
        self.licenses = self._vocab(base / "licenses.yaml", "licenses", "id", "title")
        self.themes = self._vocab(base / "themes.yaml", "themes", "code", "de")
        self.frequencies = self._vocab(base / "frequencies.yaml", "frequencies", "code", "de")
        self.formats = self._vocab(base / "formats.yaml", "formats", "code", "code")
        self.access = self._vocab(base / "access.yaml", "access", None, None)
        orgs = _load(self.dir / "organizations.yaml") or []
        self._organizations = {o["id"]: Organization(**{k: str(v) for k, v in o.items()
                                                       if k in Organization.__annotations__})
                              for o in (orgs.get("organizations", orgs)
                                        if isinstance(orgs, dict) else orgs)}
        for org in self._organizations.values():
            if problems := org.link_problems():
                raise PipelineError(f"{self.dir / 'organizations.yaml'}: organisation "
                                    f"{org.id!r}: " + "; ".join(f"{k}: {v}" for k, v
                                                                in problems.items()))

    @property
    def organizations(self) -> dict[str, Organization]:
        """Every organisation by id: those of `organizations.yaml`, then registered ones."""
        if self._registered is None:
            return self._organizations
        return {**self._registered(), **self._organizations}

    @staticmethod
    def _vocab(path: Path, name: str, code_key: str | None, label_key: str | None) -> Vocabulary:
        raw = _load(path)
        items = raw.get(name, raw.get("terms", [])) if isinstance(raw, dict) else raw
        terms = []
        for item in items or []:
            code = str(item.get(code_key) if code_key else
                       item.get("code", item.get("id", item.get("level"))))
            label = str(item.get(label_key) or code) if label_key else \
                str(item.get("de", item.get("label", code)))
            terms.append(Term(code, str(item.get("uri", "")), label, dict(item)))
        return Vocabulary(name, tuple(terms))

    def organization(self, value: str, registered: bool = True) -> Organization | None:
        """By id or by name (case and umlauts folded); with `registered=False` only those of
        `organizations.yaml` (for callers inside the catalog's lock)."""
        organizations = self.organizations if registered else self._organizations
        if value in organizations:
            return organizations[value]
        folded = fold(value)
        return next((o for o in organizations.values()
                     if fold(o.name) == folded or fold(o.id) == folded), None)

    def format_of(self, url: str) -> Term | None:
        """The file format a URL's extension names (`.csv` → CSV), if any."""
        path = url.split("?", 1)[0].split("#", 1)[0].lower()
        return next((t for t in self.formats.terms
                     if any(path.endswith(e) for e in t.extra.get("extensions", []))), None)

    def frequency_days(self, code: str) -> int | None:
        term = self.frequencies.find(code)
        days = term.extra.get("days") if term else None
        return int(days) if days else None
