"""What each portal page shows, from the core: catalog search and records (`hub.catalog`),
access (`hub.access`), quality and staleness (`hub.catalog.quality`) and the store's versions.

Every page is what its viewer may see (anonymous visitors, or staff signed in with a session
or sending a token): records and facet counts come from the catalog's search for that viewer,
held data from `DataAccess` (the hub's one access rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from hub.access import ANONYMOUS, DataAccess, Viewer
from hub.api.ogc.datasets import Current
from hub.catalog.index import Query
from hub.catalog.model import HUB_FILES, Record
from hub.catalog.quality import assess
from hub.catalog.vocab import Organization, Vocabularies
from hub.errors import HubError
from hub.store.versions import Store, Version
from hub.web.portal.i18n import Language
from hub.web.portal.preview import Preview, Previews
from hub.web.services import Services

PER_PAGE = 20
MAX_PAGE = 1000
MAX_QUERY = 200  # characters of search text
RECENT = 8
SUMMARY = 220  # characters of a description in a list of results
FACETS = ("organization", "theme", "format", "license", "municipality")
SORTS = ("relevance", "title", "modified")


def N_(message: str) -> str:
    """Marks a message for extraction; templates translate it when they show it."""
    return message


FACET_TITLES = {"organization": N_("Organisation"), "theme": N_("Thema"),
                "format": N_("Format"), "license": N_("Lizenz"),
                "municipality": N_("Gemeinde")}
SORT_TITLES = {"relevance": N_("Relevanz"), "title": N_("Titel"),
               "modified": N_("Letzte Änderung")}
KIND_TITLES = {"district": N_("Landkreis"), "department": N_("Ämter der Kreisverwaltung"),
               "municipality": N_("Städte und Gemeinden"), "external": N_("Weitere")}


class PageError(HubError):
    """A request the portal answers with an error page: `message` is a German msgid
    (translated on the page), `params` its placeholders."""

    def __init__(self, status: int, message: str, **params: Any):
        super().__init__(message % params if params else message)
        self.status, self.message, self.params = status, message, params

    def shown(self, lang: Language) -> dict[str, Any]:
        """The placeholders as the page's language writes them (numbers with CLDR)."""
        return {k: lang.number(v) if isinstance(v, int) else v for k, v in self.params.items()}


@dataclass
class Text:
    """A text of a record and the language it is written in (for `lang` on the page)."""

    value: str
    lang: str


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    chosen: bool


@dataclass
class Facet:
    name: str
    title: str
    values: list[FacetValue] = field(default_factory=list)


def text_of(record: Record, key: str, lang: Language) -> Text:
    """A record's title or description in the page's language where it has a translation."""
    translated = record.translations.get(lang.code, {}).get(key, "")
    return Text(translated, lang.code) if translated else Text(getattr(record, key), "de")


class Labels:
    """How facet values are shown: names for organisations and municipalities, the
    vocabularies' labels (English ones on English pages) for themes and licences."""

    def __init__(self, vocab: Vocabularies, organizations: dict[str, Organization],
                 lang: Language):
        self.vocab, self.organizations, self.lang = vocab, organizations, lang
        self.municipalities = {o.ags: o.name for o in organizations.values()
                               if o.kind == "municipality" and len(o.ags) == 8}

    def __call__(self, facet: str, value: str) -> str:
        if facet == "organization":
            org = self.organizations.get(value)
            return org.name if org else value
        if facet == "municipality":
            return self.municipalities.get(value, value)
        vocabulary = {"theme": self.vocab.themes, "license": self.vocab.licenses,
                      "format": self.vocab.formats}.get(facet)
        term = vocabulary.find(value) if vocabulary else None
        if term is None:
            return value
        if facet == "theme":
            return str(term.extra.get(self.lang.code) or term.label)
        return term.label


@dataclass
class Portal:
    services: Callable[[], Services]
    store: Store
    held: Current
    access: DataAccess
    previews: Previews = field(init=False)

    def __post_init__(self) -> None:
        self.previews = Previews(self.store)

    def labels(self, lang: Language) -> Labels:
        """How this page names facet values (the organisations read once per page)."""
        vocab = self.services().vocab
        return Labels(vocab, vocab.organizations, lang)

    # -- pages ---------------------------------------------------------------------------------

    def start(self, lang: Language, viewer: Viewer = ANONYMOUS) -> dict[str, Any]:
        catalog = self.services().catalog
        found = catalog.search(Query(rows=0, facets=("theme", "organization"), facet_limit=-1,
                                     load=False), viewer)
        label = self.labels(lang)
        themes = sorted((FacetValue(v, label("theme", v), n, False)
                         for v, n in found.facets["theme"]), key=lambda t: t.label)
        orgs = [FacetValue(v, label("organization", v), n, False)
                for v, n in found.facets["organization"]]
        return {"count": found.count, "themes": themes, "organizations": orgs,
                "recent": self.recent(lang, viewer)}

    def recent(self, lang: Language, viewer: Viewer = ANONYMOUS) -> list[dict[str, Any]]:
        """The held data `viewer` may see, newest version first."""
        entries = sorted((entry for entry in self.held.entries().values()
                          if self.access.may_see(viewer, entry[0])),
                         key=lambda entry: entry[1].finished, reverse=True)[:RECENT]
        records = {r.name: r for r in self.services().catalog.search(Query(
            filters={"name": [d.name for d, _ in entries]}, rows=RECENT, facets=()),
            viewer).records} if entries else {}
        shown = []
        for dataset, version in entries:  # the record's metadata, the pipeline's without one
            record = records.get(dataset.name)
            shown.append({"name": dataset.name, "modified": version.finished,
                          "title": text_of(record, "title", lang) if record
                          else Text(dataset.title, "de"), "rows": version.rows,
                          "attribution": (record.attribution if record else "")
                          or dataset.attribution})
        return shown

    def search(self, params: list[tuple[str, str]], lang: Language,
               viewer: Viewer = ANONYMOUS) -> dict[str, Any]:
        """The search page: `q`, `page`, `sort` and facet filters (repeatable) from the
        query string; a bad value raises `PageError` naming the parameter."""
        q = " ".join(v for k, v in params if k == "q").strip()
        if len(q) > MAX_QUERY:
            raise PageError(400, N_("Der Suchtext ist zu lang (höchstens %(max)s Zeichen)."),
                            max=MAX_QUERY)
        page = _page_number([v for k, v in params if k == "page"])
        sort = next((v for k, v in params if k == "sort" and v), "relevance")
        if sort not in SORTS:
            raise PageError(400, N_("Unbekannte Sortierung „%(value)s“."), value=sort[:40])
        chosen = {f: sorted({v for k, v in params if k == f and v}) for f in FACETS}
        found = self.services().catalog.search(Query(
            q=q, filters={f: v for f, v in chosen.items() if v}, start=(page - 1) * PER_PAGE,
            rows=PER_PAGE, sort=sort if q or sort != "relevance" else "title",
            facets=FACETS), viewer)
        facets, label = [], self.labels(lang)
        for name in FACETS:
            counted = dict(found.facets.get(name, []))
            values = [FacetValue(v, label(name, v), n, v in chosen[name])
                      for v, n in counted.items()]
            values += [FacetValue(v, label(name, v), 0, True)  # chosen, no match
                       for v in chosen[name] if v not in counted]
            facets.append(Facet(name, FACET_TITLES[name], values))
        pages = max(1, -(-found.count // PER_PAGE))
        base = [(k, v) for k, v in params if k in ("q", "sort", *FACETS) and v]
        return {"q": q, "sort": sort, "sorts": SORT_TITLES, "page": page, "pages": pages,
                "count": found.count, "facets": facets,
                "results": [self.card(r, lang, label) for r in found.records],
                "chosen": [(f, v, label(f, v)) for f in FACETS for v in chosen[f]],
                "page_url": lambda n: "/datasets?" + urlencode([*base, ("page", str(n))]),
                "without": lambda f, v: "/datasets?" + urlencode(
                    [(k, x) for k, x in base if (k, x) != (f, v)])}

    def card(self, record: Record, lang: Language, label: Labels) -> dict[str, Any]:
        description = text_of(record, "description", lang)
        if len(description.value) > SUMMARY:
            description.value = description.value[:SUMMARY].rsplit(" ", 1)[0] + " …"
        return {"name": record.name, "title": text_of(record, "title", lang),
                "description": description,
                "publisher": label("organization", record.publisher),
                "modified": record.last_modified, "held": record.version is not None}

    def dataset(self, name: str, lang: Language, viewer: Viewer = ANONYMOUS) -> dict[str, Any]:
        hub = self.services()
        record = hub.catalog.get(name, viewer)
        if record is None:
            raise PageError(404, N_("Es gibt keinen öffentlichen Datensatz „%(name)s“."),
                            name=name)
        vocab, label = hub.vocab, self.labels(lang)
        org = label.organizations.get(record.publisher)
        licence = vocab.licenses.find(record.license)
        frequency = vocab.frequencies.find(record.frequency) or vocab.frequencies.get("UNKNOWN")
        quality = assess(record, vocab)
        held = self.held.entries().get(record.name)
        visible = (held is not None and record.version is not None
                   and self.access.may_see(viewer, held[0]))
        preview: Preview | None = self.previews(held[1]) if visible and held else None
        versions: list[Version] = ([v for v in self.store.versions(record.name) if not v.purged]
                                   if visible else [])
        path = quote(record.name)
        return {
            "record": record, "title": text_of(record, "title", lang),
            "description": text_of(record, "description", lang),
            "organization": org, "publisher": org.name if org else record.publisher,
            "licence": licence, "frequency": str(frequency.extra.get(lang.code)
                                                 or frequency.label),
            "themes": [label("theme", t) for t in record.themes],
            "municipalities": [label("municipality", a) for a in record.spatial_ags
                               if len(a) == 8],
            "quality": quality, "visible": visible, "preview": preview,
            "map_url": f"/karten/daten/{quote(record.name)}"
            if visible and held and held[1].geometry_types else None,
            "versions": sorted(versions, key=lambda v: v.version, reverse=True),
            "files": [(f"/downloads/{path}/latest.{kind}", label) for kind, label, *_ in HUB_FILES]
            + [(f"/downloads/{path}/latest.csv?dialect=excel", N_("CSV für Excel"))],
            "distributions": list(record.distributions),
            "links": [("CKAN API (JSON)", f"/api/3/action/package_show?id={path}"),
                      *([("OGC API – Features", f"/ogc/collections/{path}")] if visible else []),
                      ("DCAT-AP (JSON-LD)", f"/dataset/{path}.jsonld"),
                      ("DCAT-AP (Turtle)", f"/dataset/{path}.ttl"),
                      ("DCAT-AP (RDF/XML)", f"/dataset/{path}.rdf")],
            "quoted": path,
        }

    def organizations(self, lang: Language, viewer: Viewer = ANONYMOUS) -> dict[str, Any]:
        organizations = self.services().vocab.organizations
        counts = dict(self.services().catalog.search(
            Query(rows=0, facets=("organization",), facet_limit=-1, load=False),
            viewer).facets["organization"])
        groups: dict[str, list[tuple[Organization, int]]] = {}
        for org in sorted(organizations.values(), key=lambda o: o.name):
            groups.setdefault(org.kind if org.kind in KIND_TITLES else "external", []).append(
                (org, counts.get(org.id, 0)))
        return {"groups": [(KIND_TITLES[kind], groups[kind]) for kind in KIND_TITLES
                           if kind in groups]}

    def organization(self, ident: str, params: list[tuple[str, str]], lang: Language,
                     viewer: Viewer = ANONYMOUS) -> dict[str, Any]:
        hub = self.services()
        label = self.labels(lang)
        org = label.organizations.get(ident)
        if org is None:
            raise PageError(404, N_("Es gibt keine Organisation „%(name)s“."), name=ident)
        page = _page_number([v for k, v in params if k == "page"])
        found = hub.catalog.search(Query(filters={"organization": [org.id]}, sort="title",
                                         start=(page - 1) * PER_PAGE, rows=PER_PAGE, facets=()),
                                   viewer)
        parent = label.organizations.get(org.parent) if org.parent else None
        return {"org": org, "parent": parent, "count": found.count, "page": page,
                "pages": max(1, -(-found.count // PER_PAGE)),
                "results": [self.card(r, lang, label) for r in found.records],
                "page_url": lambda n: f"/organizations/{quote(org.id)}?page={n}"}


def _page_number(values: list[str]) -> int:
    value = values[-1].strip() if values else "1"
    if not (value.isascii() and value.isdigit() and len(value) <= 6
            and 1 <= int(value) <= MAX_PAGE):
        raise PageError(400, N_("Seite „%(value)s“ gibt es nicht: bitte eine Zahl von 1 bis "
                                "%(max)s."), value=value[:20], max=MAX_PAGE)
    return int(value)
