"""DCAT-AP.de exports: the catalog in pages (Hydra) and single datasets, as RDF/XML, Turtle or
JSON-LD. Only what an anonymous visitor may see is exported: pages come from the catalog's
search with the anonymous viewer, so the access rule lives in one place.

Conventions followed (DCAT-AP.de 2.0 Konventionen, kept valid under 3.0): every dataset has a
publisher, `dcatde:contributorID` of the district and `dcatde:politicalGeocodingLevelURI`; the
political geocoding (district or municipality key) is given both as the deprecated
`dcatde:politicalGeocodingURI` and as `dct:spatial`; distribution licences are IRIs of the
dcat-ap.de list with the attribution text when the licence demands one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, PROV, RDF, XSD

from hub.access import ANONYMOUS, Viewer
from hub.catalog.index import Catalog, Query
from hub.catalog.links import CONTACT, WEB, email_problem, hub_link
from hub.catalog.model import Record
from hub.catalog.vocab import Vocabularies

DCATDE = Namespace("http://dcat-ap.de/def/dcatde/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
GEOCODING = "http://dcat-ap.de/def/politicalGeocoding/"
LEVELS = {5: "administrativeDistrict", 8: "municipality", 2: "state"}
KEYS = {2: "stateKey", 3: "governmentDistrictKey", 5: "districtKey", 8: "municipalityKey",
        9: "municipalAssociationKey", 12: "regionalKey"}
LANGUAGE = URIRef("http://publications.europa.eu/resource/authority/language/DEU")
FORMATS = {"rdf": "xml", "xml": "xml", "ttl": "turtle", "jsonld": "json-ld"}
MEDIA_TYPES = {"rdf": "application/rdf+xml", "xml": "application/rdf+xml",
               "ttl": "text/turtle", "jsonld": "application/ld+json"}
PER_PAGE = 100
PREFIXES = (("dcat", DCAT), ("dct", DCTERMS), ("dcatde", DCATDE), ("foaf", FOAF),
            ("vcard", VCARD), ("hydra", HYDRA), ("locn", LOCN), ("gsp", GSP), ("xsd", XSD),
            ("rdf", RDF), ("prov", PROV))
_PREFIX_TEXT = tuple((prefix, str(ns)) for prefix, ns in PREFIXES)
_LOCAL = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r",
                          "\t": "\\t"})


def geocoding(record_ags: list[str], district_ags: str) -> tuple[str, list[str]]:
    """The political geocoding of a record (dcat-ap.de): its level URI and its key URIs, from
    the record's AGS, else the district's; none when neither has one (a district.yaml without
    `ags`)."""
    ags = [a for a in (record_ags or [district_ags]) if len(a) in KEYS]
    if not ags:
        return "", []
    level = LEVELS.get(min(len(a) for a in ags), "administrativeDistrict")
    return f"{GEOCODING}Level/{level}", [f"{GEOCODING}{KEYS[len(a)]}/{a}" for a in ags]


@dataclass(frozen=True)
class Context:
    """What every export needs besides the records."""

    base_url: str  # e.g. https://daten.lkee.example.org (no trailing slash)
    vocab: Vocabularies
    district_name: str
    district_ags: str
    district_org: str  # organisation id of the district (the catalog's publisher)
    contributor_id: str
    # the input records of a derived dataset's record that the export may name (`derived_from`)
    inputs: Callable[[Record], list[Record]] | None = None

    def dataset_uri(self, record: Record) -> URIRef:
        return URIRef(f"{self.base_url}/dataset/{record.id}")

    def org_uri(self, org_id: str) -> URIRef:
        return URIRef(f"{self.base_url}/organization/{quote(org_id)}")

    def link(self, value: str, schemes: tuple[str, ...] = WEB) -> URIRef | None:
        """A record's link as a URI, or None when it may not be one (see `hub_link`)."""
        link = hub_link(self.base_url, value, schemes)
        return URIRef(link) if link else None


def dataset_graph(record: Record, ctx: Context) -> Graph:
    graph = _graph()
    for triple in _dataset(record, ctx):
        graph.add(triple)
    return graph


def catalog_triples(catalog: Catalog, ctx: Context, page: int = 1, per_page: int = PER_PAGE,
                    modified_since: str | None = None,
                    path: str = "/catalog.ttl") -> Iterator[tuple]:
    """One page of the public catalog, newest first, with Hydra paging triples."""
    result = catalog.search(Query(sort="modified", rows=per_page, start=(page - 1) * per_page,
                                  facets=(), modified_since=modified_since), ANONYMOUS)
    cat = URIRef(f"{ctx.base_url}/catalog")
    yield cat, RDF.type, DCAT.Catalog
    yield cat, DCTERMS.title, Literal(f"Offene Daten – {ctx.district_name}", lang="de")
    yield cat, DCTERMS.description, Literal(
        f"Datenkatalog: {ctx.district_name} mit seinen Städten und Gemeinden", lang="de")
    yield cat, DCTERMS.language, LANGUAGE
    yield cat, FOAF.homepage, URIRef(f"{ctx.base_url}/")
    yield from _agent(ctx, ctx.district_org)
    yield cat, DCTERMS.publisher, ctx.org_uri(ctx.district_org)
    for record in result.records:
        yield cat, DCAT.dataset, ctx.dataset_uri(record)
        yield from _dataset(record, ctx)
    yield from _paging(ctx, path, page, per_page, result.count, modified_since)


def catalog_page(catalog: Catalog, ctx: Context, page: int = 1, per_page: int = PER_PAGE,
                 modified_since: str | None = None, path: str = "/catalog.ttl") -> Graph:
    graph = _graph()
    for triple in catalog_triples(catalog, ctx, page, per_page, modified_since, path):
        graph.add(triple)
    return graph


def turtle(triples: Iterable[tuple]) -> Iterator[str]:
    """Turtle written straight from triples, one statement per line (valid Turtle, streamed,
    and an order of magnitude faster than a general serializer for large catalogs)."""
    yield "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in _PREFIX_TEXT) + "\n"
    chunk: list[str] = []
    for s, p, o in triples:
        chunk.append(f"{_term(s)} {_term(p)} {_term(o)} .\n")
        if len(chunk) >= 2000:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk)


def _term(term: Any) -> str:
    if isinstance(term, URIRef):
        text = str(term)
        for prefix, ns in _PREFIX_TEXT:
            if text.startswith(ns) and _LOCAL.fullmatch(text[len(ns):]):
                return f"{prefix}:{text[len(ns):]}"
        return "<" + text.replace(">", "%3E").replace(" ", "%20") + ">"
    if isinstance(term, BNode):
        return f"_:b{term}"
    value = str(term).translate(_ESCAPES)
    if term.language:
        return f'"{value}"@{term.language}'
    if term.datatype:
        return f'"{value}"^^{_term(term.datatype)}'
    return f'"{value}"'


def serialize(graph: Graph, fmt: str) -> bytes:
    return graph.serialize(format=FORMATS[fmt], encoding="utf-8")


def _graph() -> Graph:
    graph = Graph(bind_namespaces="none")
    for prefix, ns in PREFIXES:
        graph.bind(prefix, ns)
    return graph


def _paging(ctx: Context, path: str, page: int, per_page: int, total: int,
            modified_since: str | None) -> Iterator[tuple]:
    """Both the current (PartialCollectionView, next) and the deprecated (PagedCollection,
    nextPage) Hydra terms, as ckanext-dcat and other harvesters read them."""
    last = max(1, -(-total // per_page))

    def url(n: int) -> URIRef:
        query = {"page": n, **({"modified_since": modified_since} if modified_since else {})}
        return URIRef(f"{ctx.base_url}{path}?{urlencode(query)}")

    node = url(page)
    yield node, RDF.type, HYDRA.PartialCollectionView
    yield node, RDF.type, HYDRA.PagedCollection
    yield node, HYDRA.totalItems, Literal(total, datatype=XSD.integer)
    yield node, HYDRA.itemsPerPage, Literal(per_page, datatype=XSD.integer)
    for new, old, n in (("first", "firstPage", 1), ("last", "lastPage", last),
                        ("next", "nextPage", page + 1 if page < last else None),
                        ("previous", "previousPage", page - 1 if page > 1 else None)):
        if n is not None:
            yield node, HYDRA[new], url(n)
            yield node, HYDRA[old], Literal(str(url(n)))


def _agent(ctx: Context, org_id: str) -> Iterator[tuple]:
    org = ctx.vocab.organizations.get(org_id)
    node = ctx.org_uri(org_id)
    yield node, RDF.type, FOAF.Agent
    yield node, RDF.type, FOAF.Organization
    yield node, FOAF.name, Literal(org.name if org else org_id, lang="de")


def _date(value: str) -> Literal:
    if len(value) > 10:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return Literal(moment.isoformat(timespec="seconds"), datatype=XSD.dateTime)
    return Literal(value, datatype=XSD.date)


def _dataset(record: Record, ctx: Context) -> Iterator[tuple]:
    vocab = ctx.vocab
    ds = ctx.dataset_uri(record)
    yield ds, RDF.type, DCAT.Dataset
    yield ds, DCTERMS.identifier, Literal(record.id)
    yield ds, DCTERMS.title, Literal(record.title, lang="de")
    yield ds, DCTERMS.description, Literal(record.description, lang="de")
    for lang, text in record.translations.items():
        if text.get("title"):
            yield ds, DCTERMS.title, Literal(text["title"], lang=lang)
        if text.get("description"):
            yield ds, DCTERMS.description, Literal(text["description"], lang=lang)
    yield from _agent(ctx, record.publisher)
    yield ds, DCTERMS.publisher, ctx.org_uri(record.publisher)
    yield ds, DCATDE.contributorID, URIRef(ctx.contributor_id)
    for keyword in record.keywords:
        yield ds, DCAT.keyword, Literal(keyword, lang="de")
    for code in record.themes:
        yield ds, DCAT.theme, URIRef(vocab.themes.get(code).uri)
    frequency = vocab.frequencies.find(record.frequency)
    if frequency is not None and frequency.uri:
        yield ds, DCTERMS.accrualPeriodicity, URIRef(frequency.uri)
    yield ds, DCTERMS.language, LANGUAGE
    access = vocab.access.find(record.access)
    if access is not None and access.extra.get("uri"):
        yield ds, DCTERMS.accessRights, URIRef(access.extra["uri"])
    if record.issued:
        yield ds, DCTERMS.issued, _date(record.issued)
    if record.last_modified:
        yield ds, DCTERMS.modified, _date(record.last_modified)
    yield ds, DCAT.landingPage, ctx.link(record.landing_page) or URIRef(
        f"{ctx.base_url}/datasets/{quote(record.name)}")
    if record.temporal:
        period = BNode()
        yield ds, DCTERMS.temporal, period
        yield period, RDF.type, DCTERMS.PeriodOfTime
        if record.temporal.get("start"):
            yield period, DCAT.startDate, _date(record.temporal["start"])
        if record.temporal.get("end"):
            yield period, DCAT.endDate, _date(record.temporal["end"])
    level, keys = geocoding(record.spatial_ags, ctx.district_ags)
    if level:
        yield ds, DCATDE.politicalGeocodingLevelURI, URIRef(level)
    for key in keys:
        uri = URIRef(key)
        yield ds, DCATDE.politicalGeocodingURI, uri
        yield ds, DCTERMS.spatial, uri
        yield uri, RDF.type, DCTERMS.Location
    if record.bbox:
        minx, miny, maxx, maxy = record.bbox
        place = BNode()
        yield ds, DCTERMS.spatial, place
        yield place, RDF.type, DCTERMS.Location
        yield place, DCAT.bbox, Literal(
            f"POLYGON(({minx} {miny}, {maxx} {miny}, {maxx} {maxy}, {minx} {maxy}, "
            f"{minx} {miny}))", datatype=GSP.wktLiteral)
    contact = record.contact
    org = vocab.organizations.get(record.publisher)
    email = contact.get("email") or (org.email if org else "")
    email = "" if email_problem(email) else email.removeprefix("mailto:")
    url = ctx.link(contact.get("url") or (org.url if org else ""), CONTACT)
    if email or url:
        point = BNode()
        yield ds, DCAT.contactPoint, point
        yield point, RDF.type, VCARD.Kind
        yield point, RDF.type, VCARD.Organization
        yield point, VCARD.fn, Literal(contact.get("name") or (org.name if org else ""))
        if email:
            yield point, VCARD.hasEmail, URIRef(f"mailto:{email}")
        if url:
            yield point, VCARD.hasURL, url
    for source in ctx.inputs(record) if ctx.inputs else ():
        yield ds, PROV.wasDerivedFrom, ctx.dataset_uri(source)
    yield from _distributions(record, ctx, ds)


def derived_from(catalog: Catalog, viewer: Viewer = ANONYMOUS) -> Callable[[Record], list[Record]]:
    """The records of the datasets a record's data was derived from (its version's lineage,
    see `hub.ingest.derived`) that `viewer` may see — never a link to a hidden dataset; none
    where the record does not show the data's facts."""
    from hub.errors import HubError
    from hub.ingest.derived import lineage

    def inputs(record: Record) -> list[Record]:
        if record.version is None:
            return []
        try:
            version = catalog.store.version(record.name, record.version)
        except HubError:
            return []
        found = (catalog.get(i["dataset"], viewer) for i in lineage(version))
        return [r for r in found if r is not None]

    return inputs


def _distributions(record: Record, ctx: Context, ds: URIRef) -> Iterator[tuple]:
    license_term = ctx.vocab.licenses.find(record.license)
    links = [(d.title, d.format, href, d.kind, d.media_type) for d in record.served()
             if (href := ctx.link(d.url)) is not None]
    for i, (title, fmt, href, kind, media_type) in enumerate(links, 1):
        dist = URIRef(f"{ctx.dataset_uri(record)}/distribution/{i}")
        yield ds, DCAT.distribution, dist
        yield dist, RDF.type, DCAT.Distribution
        yield dist, DCTERMS.title, Literal(title, lang="de")
        yield dist, DCAT.accessURL, href
        if kind == "download":
            yield dist, DCAT.downloadURL, href
        term = ctx.vocab.formats.find(fmt)
        if term is not None and term.uri:
            yield dist, DCTERMS.format, URIRef(term.uri)
        if media_type:
            yield dist, DCAT.mediaType, URIRef(
                f"https://www.iana.org/assignments/media-types/{media_type}")
        if license_term is not None:
            yield dist, DCTERMS.license, URIRef(license_term.uri)
        if record.attribution:
            yield dist, DCATDE.licenseAttributionByText, Literal(record.attribution, lang="de")
        if record.last_modified:
            yield dist, DCTERMS.modified, _date(record.last_modified)
