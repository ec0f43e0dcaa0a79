"""DCAT-AP.de exports: zero SHACL violations against the official 2.0 (+ Konventionen) and 3.0
shapes, only public records in every format, Hydra paging that harvesters can walk."""

from __future__ import annotations

import functools
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pyshacl
import pytest
import yaml
from conftest import serving
from rdflib import Graph, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF, RDFS, SKOS, NamespaceManager

from hub.access import ANONYMOUS, Viewer
from hub.catalog import open_catalog
from hub.catalog.dcat import HYDRA, Context, catalog_page, catalog_triples, serialize, turtle
from hub.catalog.index import Query
from hub.catalog.load import load_yaml_records, read_inventory, sync
from hub.config import load_settings

REPO = Path(__file__).resolve().parents[1]
SHAPES = Path(__file__).resolve().parent / "shapes"  # copies, see shapes/SOURCE.txt
SH = Namespace("http://www.w3.org/ns/shacl#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
NAMESPACES = NamespaceManager(Graph())
PROFILES = {
    "3.0": ["eu-dcat-ap-3.0.0/dcat-ap-SHACL.ttl", "v3.0/dcat-ap-SHACL-DE.ttl",
            "v3.0/dcat-ap-spec-german-additions.ttl", "v3.0/dcat-ap-de-deprecated.ttl",
            "v3.0/dcat-ap-de-controlledvocabularies.ttl"],
    "2.0+Konventionen": ["v2.0/dcat-ap-de-imports.ttl", "v2.0/dcat-ap-spec-german-messages.ttl",
                         "v2.0/dcat-ap-spec-german-additions.ttl",
                         "v2.0/dcat-ap-de-deprecated.ttl", "v2.0/dcat-ap_2.1.1_shacl_shapes.ttl",
                         "v2.0/dcat-ap-konventionen.ttl"],
}
# Controlled vocabularies the shapes check by `<value> skos:inScheme <scheme>` (GovData's
# validator loads the lists): the real EU authority tables and the dcat-ap.de licence list, see
# shapes/vocabularies/SOURCE.txt, so a code that is not in its list is a violation.
VOCABULARIES = SHAPES / "vocabularies"
# Lists not vendored (large, or the hub takes their values from elsewhere): membership is
# stated for the values used, by prefix.
STUBBED = ("http://publications.europa.eu/resource/authority/language",
           "http://dcat-ap.de/def/contributors",
           "http://dcat-ap.de/def/politicalGeocoding/Level",
           "http://dcat-ap.de/def/politicalGeocoding/districtKey",
           "http://dcat-ap.de/def/politicalGeocoding/municipalityKey",
           "https://www.iana.org/assignments/media-types")


@functools.cache
def vocabularies() -> Graph:
    graph = Graph()
    for path in sorted(VOCABULARIES.glob("*.ttl")) + sorted(VOCABULARIES.glob("*.rdf")):
        graph.parse(path, format="xml" if path.suffix == ".rdf" else "turtle")
    return graph


# A record with a distribution in every format the hub serves of its own data (the demo
# catalog registers none), so licence, file type and media type of distributions are checked.
FILES = {
    "name": "dateien", "title": "Kreisgrenze in allen Formaten",
    "description": "Die Kreisgrenze als Datei in jedem Format, das der Hub ausliefert.",
    "publisher": "kataster-vermessung", "license": "dl-by-de/2.0", "access": "public",
    "themes": ["REGI"], "keywords": ["Kreisgrenze"], "frequency": "ANNUAL",
    "attribution": "Landkreis Elbe-Elster", "data_held": False,
    "access_note": "Die Dateien liegen beim Kataster- und Vermessungsamt; Anfragen per E-Mail.",
    "distributions": [
        {"url": f"https://geo.lkee.example.org/kreisgrenze.{ext}", "format": fmt}
        for ext, fmt in (("geojson", "GEOJSON"), ("csv", "CSV"), ("gpkg", "GPKG"),
                         ("parquet", "PARQUET"), ("fgb", "FlatGeobuf"))]
    + [{"url": "https://geo.lkee.example.org/ogc/collections/kreisgrenze", "kind": "api",
        "format": "OGC API Features"}],
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dcat")
    shutil.copytree(REPO / "catalog", root / "catalog")
    (root / "catalog" / "datasets" / "dateien.yaml").write_text(yaml.safe_dump(FILES))
    catalog, vocab, district = open_catalog(load_settings(root, root / "store"))
    sync(catalog, load_yaml_records(root / "catalog" / "datasets", vocab), vocab)
    sync(catalog, read_inventory(root / "catalog" / "inventory" / "dateninventur.csv", vocab,
                                 None, district.default_license, catalog.origins()).incoming,
         vocab)
    return root


@pytest.fixture(scope="module")
def client(project: Path) -> Iterator[httpx.Client]:
    """`hub serve` on the project, and a client for it."""
    with serving(project) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def context(root: Path) -> tuple:
    catalog, vocab, district = open_catalog(load_settings(root, root / "store"))
    ctx = Context("https://daten.lkee.example.org", vocab, district.name, district.ags,
                  district.org, district.contributor_id)
    return catalog, ctx


def violations(graph: Graph, profile: str) -> Counter:
    shapes = Graph()
    for name in PROFILES[profile]:
        shapes.parse(SHAPES / name)
    data = Graph()
    data += graph
    data += vocabularies()
    for value in {o for o in graph.objects() if isinstance(o, URIRef)}:
        for scheme in STUBBED:
            if str(value).startswith(scheme + "/"):
                data.add((value, SKOS.inScheme, URIRef(scheme)))
    ontology = Graph()
    for sub, sup in ((FOAF.Organization, FOAF.Agent), (VCARD.Organization, VCARD.Kind)):
        ontology.add((sub, RDFS.subClassOf, sup))
    _, report, _ = pyshacl.validate(data, shacl_graph=shapes, ont_graph=ontology,
                                    inference="rdfs" if profile.startswith("2") else "none",
                                    allow_warnings=True)
    found = Counter()
    for result in report.subjects(RDF.type, SH.ValidationResult):
        if report.value(result, SH.resultSeverity) == SH.Violation:
            found[str(report.value(result, SH.resultMessage))[:160]] += 1
    return found


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_catalog_has_zero_violations(project: Path, profile: str) -> None:
    catalog, ctx = context(project)
    graph = catalog_page(catalog, ctx, 1, 500)
    assert len(list(graph.subjects(RDF.type, DCAT.Dataset))) >= 50
    assert violations(graph, profile) == Counter()


# A code under the right prefix but not in its list: the shapes' vocabulary constraint must
# fire (before the vocabularies were loaded, any URI under the prefix counted as a member).
WRONG_CODE = [(DCAT.theme, "3.0"), (DCAT.theme, "2.0+Konventionen"),
              (DCTERMS.accrualPeriodicity, "3.0"), (DCTERMS.accrualPeriodicity, "2.0+Konventionen"),
              (DCTERMS.license, "2.0+Konventionen"),  # K31; the 3.0 shapes check no list
              (DCTERMS.format, "3.0"), (DCTERMS.format, "2.0+Konventionen"),
              (DCTERMS.accessRights, "3.0")]  # 2.0 has no vocabulary shape for accessRights


@pytest.mark.parametrize(("predicate", "profile"), WRONG_CODE,
                         ids=[f"{p.n3(NAMESPACES)}-{f}" for p, f in WRONG_CODE])
def test_a_code_outside_its_vocabulary_is_a_violation(project: Path, predicate: URIRef,
                                                      profile: str) -> None:
    catalog, ctx = context(project)
    graph = catalog_page(catalog, ctx, 1, 500)
    subject, value = next(graph.subject_objects(predicate))
    assert (value, SKOS.inScheme, None) in vocabularies()  # the real code is in its list
    wrong = URIRef(str(value).rsplit("/", 1)[0] + "/NO_SUCH_CODE")
    graph.remove((subject, predicate, value))
    graph.add((subject, predicate, wrong))
    found = violations(graph, profile)
    assert found, f"{wrong} passed as a {predicate}"
    local = str(predicate).rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    assert all(f":{local} MUSS" in message for message in found), found  # only this one


def test_only_public_records_in_every_format(project: Path, client: httpx.Client) -> None:
    catalog, _ = context(project)
    hidden = {r.name: r.id for r in catalog.search(Query(rows=1000), Viewer(admin=True)).records
              if r.access != "public"}
    assert hidden
    for fmt in ("ttl", "rdf", "jsonld"):
        body = client.get(f"/catalog.{fmt}").text
        assert all(ident not in body and f"/datasets/{name}\"" not in body
                   and f"/datasets/{name}>" not in body
                   for name, ident in hidden.items()), fmt
    name, ident = next(iter(hidden.items()))
    assert client.get(f"/dataset/{ident}.ttl").status_code == 404
    assert client.get(f"/dataset/{name}.ttl").status_code == 404
    public = next(r for r in catalog.search(Query(rows=100), ANONYMOUS).records
                  if not r.landing_page)  # its landing page is the hub's own
    one = client.get(f"/dataset/{public.id}.ttl")
    assert one.status_code == 200 and one.headers["content-type"].startswith("text/turtle")
    assert public.title.split()[0] in one.text
    landing = next(Graph().parse(data=one.text, format="turtle").objects(None, DCAT.landingPage))
    page = client.get(urlparse(str(landing)).path)
    assert page.status_code == 200 and public.title in page.text  # the landing page exists
    assert client.get(f"/datasets/{name}").status_code == 404  # hidden records have none


def test_formats_carry_the_same_triples(project: Path, client: httpx.Client) -> None:
    catalog, ctx = context(project)
    graph = catalog_page(catalog, ctx, 1, 20)
    for fmt, parser in (("rdf", "xml"), ("jsonld", "json-ld")):
        assert isomorphic(Graph().parse(data=serialize(graph, fmt), format=parser), graph), fmt
    streamed = "".join(turtle(catalog_triples(catalog, ctx, 1, 20)))
    assert isomorphic(Graph().parse(data=streamed, format="turtle"), graph)
    served = client.get("/catalog.ttl")
    assert served.headers["content-type"].startswith("text/turtle")
    assert len(Graph().parse(data=served.text, format="turtle")) > len(graph)  # 100 per page


def test_hydra_paging_walks_every_dataset_once(project: Path) -> None:
    catalog, ctx = context(project)
    seen: list[str] = []
    page, pages = 1, 0
    while page:
        graph = catalog_page(catalog, ctx, page, 10)
        view = next(graph.subjects(RDF.type, HYDRA.PagedCollection))
        assert (view, RDF.type, HYDRA.PartialCollectionView) in graph
        total = int(graph.value(view, HYDRA.totalItems))
        seen += [str(d) for d in graph.subjects(RDF.type, DCAT.Dataset)]
        nxt = graph.value(view, HYDRA.next)
        assert (nxt is None) == (graph.value(view, HYDRA.nextPage) is None)
        page = int(str(nxt).rsplit("page=", 1)[1]) if nxt else 0
        pages += 1
    assert len(seen) == len(set(seen)) == total
    assert pages == -(-total // 10)


def test_modified_since(client: httpx.Client) -> None:
    everything = Graph().parse(data=client.get("/catalog.ttl").text, format="turtle")
    future = Graph().parse(data=client.get("/catalog.ttl?modified_since=2999-01-01").text,
                           format="turtle")
    assert len(list(everything.subjects(RDF.type, DCAT.Dataset))) > 0
    assert len(list(future.subjects(RDF.type, DCAT.Dataset))) == 0
    bad = client.get("/catalog.ttl?modified_since=gestern")
    assert bad.status_code == 400 and "modified_since" in bad.json()["detail"]
