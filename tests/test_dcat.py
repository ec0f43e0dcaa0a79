"""DCAT-AP.de exports: zero SHACL violations against the official 2.0 (+ Konventionen) and 3.0
shapes, only public records in every format, Hydra paging that harvesters can walk."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pyshacl
import pytest
from conftest import serving
from rdflib import Graph, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, RDF, RDFS, SKOS

from hub.catalog import open_catalog
from hub.catalog.dcat import HYDRA, Context, catalog_page, catalog_triples, serialize, turtle
from hub.catalog.index import Query
from hub.catalog.load import load_yaml_records, read_inventory, sync
from hub.catalog.model import ANONYMOUS, Viewer
from hub.config import load_settings

REPO = Path(__file__).resolve().parents[1]
SHAPES = Path(__file__).resolve().parent / "shapes"  # copies, see shapes/SOURCE.txt
SH = Namespace("http://www.w3.org/ns/shacl#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
PROFILES = {
    "3.0": ["eu-dcat-ap-3.0.0/dcat-ap-SHACL.ttl", "v3.0/dcat-ap-SHACL-DE.ttl",
            "v3.0/dcat-ap-spec-german-additions.ttl", "v3.0/dcat-ap-de-deprecated.ttl",
            "v3.0/dcat-ap-de-controlledvocabularies.ttl"],
    "2.0+Konventionen": ["v2.0/dcat-ap-de-imports.ttl", "v2.0/dcat-ap-spec-german-messages.ttl",
                         "v2.0/dcat-ap-spec-german-additions.ttl",
                         "v2.0/dcat-ap-de-deprecated.ttl", "v2.0/dcat-ap_2.1.1_shacl_shapes.ttl",
                         "v2.0/dcat-ap-konventionen.ttl"],
}
# Controlled vocabularies the shapes check by `<value> skos:inScheme <scheme>`: offline, the
# tests state scheme membership for the values used (as GovData's validator loads the lists).
SCHEMES = ("http://publications.europa.eu/resource/authority/data-theme",
           "http://publications.europa.eu/resource/authority/frequency",
           "http://publications.europa.eu/resource/authority/file-type",
           "http://publications.europa.eu/resource/authority/language",
           "http://publications.europa.eu/resource/authority/access-right",
           "http://dcat-ap.de/def/licenses", "http://dcat-ap.de/def/contributors",
           "http://dcat-ap.de/def/politicalGeocoding/Level",
           "http://dcat-ap.de/def/politicalGeocoding/districtKey",
           "http://dcat-ap.de/def/politicalGeocoding/municipalityKey",
           "https://www.iana.org/assignments/media-types")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dcat")
    shutil.copytree(REPO / "catalog", root / "catalog")
    catalog, vocab, district = open_catalog(load_settings(root, root / "store"))
    sync(catalog, load_yaml_records(root / "catalog" / "datasets", vocab))
    sync(catalog, read_inventory(root / "catalog" / "inventory" / "dateninventur.csv", vocab,
                                 None, district.default_license, catalog.origins()).valid)
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
    for value in {o for o in graph.objects() if isinstance(o, URIRef)}:
        for scheme in SCHEMES:
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
