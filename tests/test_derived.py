"""Derived datasets (`sql:` sources): a version of their own with lineage, re-run after their
inputs, failing with a clear message when an input fails or is missing, and the access rule —
a derived pipeline reads only what its organisation may see, and is public over non-public
inputs only with `aggregate: public` and the input owner's `public_derivatives`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CENTRE, Project

from hub import audit
from hub.access import Viewer
from hub.errors import Forbidden, PipelineError
from hub.ingest import allowances
from hub.ingest.pipeline import discover, load_pipeline

OWNER, NEIGHBOUR = "breitbandkoordination", "sozialamt"
SUMME_SQL = """
SELECT o.ags, o.name, sum(z.haushalte) AS haushalte,
       round(ST_X(ST_Centroid(any_value(o.geometry))), 3) AS lon,
       any_value(o.geometry) AS geometry
FROM orte o JOIN zellen z USING (ags)
GROUP BY o.ags, o.name
"""


def cells(project: Project, households: list[int]) -> None:
    lines = ["id,ags,haushalte,lon,lat"]
    lines += [f"z{i},1206200{i % 2},{h},{CENTRE[0] + i / 1000:.4f},{CENTRE[1]:.4f}"
              for i, h in enumerate(households)]
    (project.data / "zellen.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def proj(ingest_project: Project) -> Project:
    """Internal cells of the owner, public places of another organisation, and a public
    aggregate of both that the cells' owner allows."""
    p = ingest_project
    point = {"name": "geometry", "type": "geojson", "constraints": {"required": True}}
    p.schema("zellen", [{"name": "id", "type": "string"}, {"name": "ags", "type": "string"},
                        {"name": "haushalte", "type": "integer"}, point])
    p.schema("orte", [{"name": "ags", "type": "string"}, {"name": "name", "type": "string"},
                      point])
    p.schema("summe", [{"name": "ags", "type": "string",
                        "constraints": {"required": True, "unique": True}},
                       {"name": "name", "type": "string"},
                       {"name": "haushalte", "type": "integer"},
                       {"name": "lon", "type": "number"}, point])
    cells(p, [10, 20, 30, 40])
    (p.data / "orte.csv").write_text(
        "ags,name,lon,lat\n"
        f"12062000,Nord,{CENTRE[0]},{CENTRE[1]}\n12062001,Süd,{CENTRE[0] + .01},{CENTRE[1]}\n",
        encoding="utf-8")
    located = {"crs": "EPSG:4326", "geometry": {"lon": "lon", "lat": "lat"}}
    p.pipeline("zellen", "zellen", {"path": "data/zellen.csv", **located},
               organization=OWNER, access="internal", public_derivatives=["summe"])
    p.pipeline("orte", "orte", {"path": "data/orte.csv", **located},
               organization="kataster-vermessung", access="public")
    p.pipeline("summe", "summe", {"sql": SUMME_SQL}, organization=OWNER, access="public",
               aggregate="public")
    return p


def rewrite(project: Project, file: str, **changes: Any) -> None:
    path = project.root / "pipelines" / f"{file}.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")


def totals(project: Project) -> dict[str, int]:
    return {r["ags"]: r["haushalte"] for r in project.rows("summe")}


def test_a_derived_version_records_its_inputs_and_is_unchanged_when_they_are(
        proj: Project) -> None:
    first = proj.cli("ingest", "--all")
    assert first.exit_code == 0, first
    assert totals(proj) == {"12062000": 40, "12062001": 60}
    assert {r["name"] for r in proj.rows("summe")} == {"Nord", "Süd"}
    assert [round(r["lon"], 2) for r in sorted(proj.rows("summe"), key=lambda r: r["ags"])] \
        == [CENTRE[0], round(CENTRE[0] + .01, 2)]  # spatial functions are there
    version = proj.current("summe")
    assert version.source_crs == ["OGC:CRS84"] and version.bbox is not None
    [state] = version.source_state.values()
    assert state["inputs"] == [
        {"dataset": d, "version": 1, "checksum": proj.current(d).checksum}
        for d in ("orte", "zellen")]
    again = proj.cli("ingest", "--all")
    assert again.exit_code == 0 and proj.current("summe").version == 1, again
    assert "summe: sources and pipeline unchanged since version 1" in again.text
    history = proj.cli("history", "summe")
    assert f"v1: orte v1 ({proj.current('orte').checksum[:12]}), zellen v1" in history.text


def test_all_runs_inputs_before_what_is_derived_from_them(proj: Project) -> None:
    rewrite(proj, "summe", dataset="aaa-summe")  # first by name, yet it must run last
    rewrite(proj, "zellen", public_derivatives=["aaa-summe"])
    assert [p.dataset for p in discover(proj.root / "pipelines")] == ["orte", "zellen",
                                                                      "aaa-summe"]
    result = proj.cli("ingest", "--all")
    assert result.exit_code == 0, result
    assert result.text.index("zellen") < result.text.index("aaa-summe")


def test_a_new_input_version_makes_a_new_derived_version(proj: Project) -> None:
    assert proj.cli("ingest", "--all").exit_code == 0
    cells(proj, [1, 2, 3, 4, 5])
    result = proj.cli("ingest", "zellen")  # only the input is named
    assert result.exit_code == 0, result
    assert proj.current("summe").version == 2, result
    assert totals(proj) == {"12062000": 9, "12062001": 6}
    [state] = proj.current("summe").source_state.values()
    assert {i["dataset"]: i["version"] for i in state["inputs"]} == {"orte": 1, "zellen": 2}


def test_a_rollback_of_an_input_derives_again_from_the_version_served(proj: Project) -> None:
    assert proj.cli("ingest", "--all").exit_code == 0
    cells(proj, [1, 2, 3, 4, 5])
    assert proj.cli("ingest", "zellen").exit_code == 0
    assert proj.current("summe").version == 2 and totals(proj)["12062000"] == 9
    result = proj.cli("rollback", "zellen", "1")
    assert result.exit_code == 0, result
    assert "zellen: now serving v1" in result.text and "summe" in result.text
    assert proj.current("summe").version == 3, result
    assert totals(proj) == {"12062000": 40, "12062001": 60}  # the cells of zellen v1
    [state] = proj.current("summe").source_state.values()
    assert {i["dataset"]: i["version"] for i in state["inputs"]} == {"orte": 1, "zellen": 1}
    again = proj.cli("rollback", "orte", "1")  # the version served already: nothing changes
    assert again.exit_code == 0 and proj.current("summe").version == 3, again


def test_a_rollback_reports_a_derived_run_that_fails(proj: Project) -> None:
    assert proj.cli("ingest", "--all").exit_code == 0
    cells(proj, [1, 2])
    assert proj.cli("ingest", "zellen").exit_code == 0
    rewrite(proj, "zellen", public_derivatives=None)  # the owner withdrew its consent
    result = proj.cli("rollback", "zellen", "1")
    assert result.exit_code == 1, result
    assert proj.current("zellen").version == 1  # the rollback itself holds
    assert "does not allow it" in " ".join(result.text.split())
    assert proj.current("summe").version == 2


def test_a_failed_input_fails_the_derived_run_and_keeps_its_version(proj: Project) -> None:
    assert proj.cli("ingest", "--all").exit_code == 0
    (proj.data / "zellen.csv").write_text("id,ags,haushalte,lon,lat\nz1,12062000,viele,13.4,"
                                          "51.6\n", encoding="utf-8")
    result = proj.cli("ingest", "zellen")
    assert result.exit_code == 1, result
    assert "input 'zellen' failed in this run, so 'summe' was not derived again" in result.text
    assert proj.current("summe").version == 1 and totals(proj)["12062000"] == 40
    assert proj.store.events("summe")[0]["kind"] == "failed"


def test_a_missing_input_fails_with_a_clear_message(proj: Project) -> None:
    assert proj.ingest("orte").status == "committed"
    result = proj.cli("ingest", "summe")
    assert result.exit_code == 1, result
    assert "input 'zellen' has no current version (ingest it first)" in result.text
    assert proj.current("summe") is None


def test_a_cycle_is_refused_when_pipelines_are_loaded(proj: Project) -> None:
    proj.schema("kreis", [{"name": "ags", "type": "string"}])
    proj.pipeline("kreis-a", "kreis", {"sql": "SELECT ags FROM \"kreis-b\""})
    proj.pipeline("kreis-b", "kreis", {"sql": "SELECT ags FROM orte UNION "
                                              "SELECT ags FROM \"kreis-a\""})
    result = proj.cli("ingest", "--all")
    assert result.exit_code == 1, result
    assert "read each other in a cycle: kreis-a → kreis-b → kreis-a" in result.text
    assert proj.current("orte") is None  # nothing ran


@pytest.mark.parametrize(("query", "message"), [
    ("COPY orte TO 'x.csv'", "only a SELECT query can derive a dataset"),
    ("SELECT 1 AS ags; SELECT 2 AS ags", "one SELECT query, not 2 statements"),
    ("SELEKT ags FROM orte", "syntax error"),
    ("SELECT 1 AS ags", "the query reads no dataset"),
    ("SELECT ags FROM other.orte", "name datasets without a schema"),
    ("SELECT ags FROM gibtsnicht", "no pipeline makes a dataset of that name"),
])
def test_bad_queries_are_refused_at_load(proj: Project, query: str, message: str) -> None:
    rewrite(proj, "summe", source={"sql": query}, aggregate=None, access="internal")
    with pytest.raises(PipelineError, match=r"summe\.yaml") as caught:
        discover(proj.root / "pipelines")
    assert message in str(caught.value)


def test_a_query_cannot_read_files_or_other_datasets(proj: Project) -> None:
    """Only the views of its inputs exist: no file, no other dataset's version."""
    assert proj.cli("ingest", "--all").exit_code == 0
    hidden = proj.current("zellen").data_file
    rewrite(proj, "summe", source={"sql": "SELECT o.ags, o.name, 0 AS haushalte, 0.0 AS lon,"
                                          " o.geometry FROM orte o, read_parquet('"
                                          f"{hidden}') z"},
            aggregate=None)
    result = proj.cli("ingest", "summe")
    assert result.exit_code == 1, result
    assert "the query failed: Permission Error" in result.text
    assert proj.current("summe").version == 1


# -- the access rule ---------------------------------------------------------------------------

def refusal(proj: Project) -> str:
    with pytest.raises(PipelineError) as caught:
        discover(proj.root / "pipelines")
    return " ".join(str(caught.value).split())


def test_public_over_internal_needs_aggregate_public(proj: Project) -> None:
    rewrite(proj, "summe", aggregate=None)
    assert ("derived dataset 'summe' is public but its input 'zellen' is internal: a public "
            "result of non-public data must say so explicitly with `aggregate: public`"
            in refusal(proj))


def test_public_aggregate_needs_the_input_owners_consent(proj: Project) -> None:
    rewrite(proj, "zellen", public_derivatives=None)
    assert ("but the owner of 'zellen' ('breitbandkoordination') does not allow it: the "
            "pipeline of 'zellen' must list 'summe' in `public_derivatives`" in refusal(proj))


def test_an_admin_may_allow_a_public_aggregate_its_owner_did_not(proj: Project) -> None:
    rewrite(proj, "zellen", public_derivatives=None)
    assert "does not allow it" in refusal(proj)
    assert proj.cli("ingest", "--all").exit_code == 1
    allowed = proj.cli("derived", "allow", "zellen", "summe", "--reason", "Kreistag 3/2026")
    assert allowed.exit_code == 0, allowed
    assert "summe is now allowed as a public aggregate of zellen" in allowed.text
    assert [p.dataset for p in discover(proj.root / "pipelines", store=proj.store)] == [
        "orte", "zellen", "summe"]
    result = proj.cli("ingest", "--all")
    assert result.exit_code == 0, result
    assert totals(proj) == {"12062000": 40, "12062001": 60}
    listed = proj.cli("derived", "list")
    assert "zellen" in listed.text and "Kreistag 3/2026" in listed.text
    [entry] = audit.entries(proj.store.db, audit.Filter(action="derived.allow"))
    assert entry.subject == "zellen → summe"
    # withdrawn: the next run is refused, the version made before stays
    assert proj.cli("derived", "revoke", "zellen", "summe").exit_code == 0
    assert audit.entries(proj.store.db, audit.Filter(action="derived.revoke"))
    cells(proj, [1, 2, 3])
    again = proj.cli("ingest", "zellen")
    assert again.exit_code == 1, again
    assert "hub derived allow zellen summe" in " ".join(again.text.split())
    assert proj.current("summe").version == 1 and totals(proj)["12062000"] == 40
    gone = proj.cli("derived", "revoke", "zellen", "summe")
    assert gone.exit_code == 1 and "no admin allowed 'summe'" in gone.text


def test_an_allowance_is_for_its_own_pair_and_only_admins_give_one(proj: Project) -> None:
    rewrite(proj, "zellen", public_derivatives=None)
    db = proj.store.db
    admin = Viewer.of_role("admin", "kreisverwaltung", "ada")
    assert allowances.allow(db, admin, "zellen", "andere-summe")
    assert allowances.allow(db, admin, "orte", "summe")  # another input
    assert not allowances.allow(db, admin, "orte", "summe")  # (allowed already)
    with pytest.raises(PipelineError, match="does not allow it"):
        discover(proj.root / "pipelines", store=proj.store)
    for role in ("viewer", "editor", "publisher"):
        with pytest.raises(Forbidden, match="only admins allow a public aggregate"):
            allowances.allow(db, Viewer.of_role(role, OWNER, "erika"), "zellen", "summe")
        with pytest.raises(Forbidden):
            allowances.revoke(db, Viewer.of_role(role, OWNER, "erika"), "orte", "summe")
    assert ("zellen", "summe") not in allowances.allowed(db)
    assert allowances.allowed(db) == {("zellen", "andere-summe"), ("orte", "summe")}


def test_a_derived_pipeline_reads_only_what_its_organisation_may_see(proj: Project) -> None:
    rewrite(proj, "zellen", access="restricted")
    rewrite(proj, "summe", organization=NEIGHBOUR, access="restricted", aggregate=None)
    assert ("derived dataset 'summe' may not read 'zellen': it is restricted to "
            "breitbandkoordination, and the organization 'sozialamt' of the derived pipeline "
            "may not see it" in refusal(proj))


def test_a_derived_dataset_is_not_seen_by_more_than_its_inputs(proj: Project) -> None:
    rewrite(proj, "zellen", access="restricted")
    rewrite(proj, "summe", access="internal", aggregate=None)
    assert ("would be internal although its input 'zellen' is restricted to "
            "breitbandkoordination: a derived dataset may not be seen by more than its inputs"
            in refusal(proj))


def test_aggregate_is_only_for_public_derived_datasets(proj: Project) -> None:
    rewrite(proj, "summe", access="internal")
    with pytest.raises(PipelineError, match="aggregate: 'public': the only value is public"):
        load_pipeline(proj.root / "pipelines" / "summe.yaml")


def test_the_run_applies_the_catalogs_stricter_level(proj: Project) -> None:
    """The places are public by their pipeline, but their owner's record makes them internal:
    the public aggregate then needs that owner's consent too, checked when it runs."""
    assert {proj.ingest(d).status for d in ("orte", "zellen")} == {"committed"}
    record = proj.root / "orte-record.yaml"
    record.write_text(yaml.safe_dump({
        "name": "orte", "title": "Orte", "description": "Orte des Kreises",
        "publisher": "kataster-vermessung", "license": "dl-by-de/2.0", "access": "internal"},
        allow_unicode=True), encoding="utf-8")
    added = proj.cli("catalog", "add", str(record))
    assert added.exit_code == 0, added
    result = proj.cli("ingest", "summe")
    assert result.exit_code == 1, result
    assert ("derived dataset 'summe' is a public aggregate of 'orte', which is internal, but "
            "the owner of 'orte' ('kataster-vermessung') does not allow it" in result.text)
    assert proj.current("summe") is None
    rewrite(proj, "orte", public_derivatives=["summe"])
    assert proj.cli("ingest", "summe").exit_code == 0


def test_the_run_refuses_an_input_the_catalog_hides_from_the_organisation(
        proj: Project, tmp_path: Path) -> None:
    assert {proj.ingest(d).status for d in ("orte", "zellen")} == {"committed"}
    record = tmp_path / "zellen-record.yaml"
    record.write_text(yaml.safe_dump({
        "name": "zellen", "title": "Zellen", "description": "Zellen",
        "publisher": OWNER, "license": "dl-by-de/2.0", "access": "restricted",
        "restricted_to": [OWNER]}), encoding="utf-8")
    assert proj.cli("catalog", "add", str(record)).exit_code == 0
    rewrite(proj, "summe", organization=NEIGHBOUR, access="internal", aggregate=None)
    rewrite(proj, "zellen", public_derivatives=None)
    result = proj.cli("ingest", "summe")
    assert result.exit_code == 1, result
    assert "derived dataset 'summe' may not read 'zellen': it is restricted to " \
           "breitbandkoordination" in result.text
    assert proj.current("summe") is None


def test_dcat_names_only_the_inputs_the_visitor_may_see(proj: Project) -> None:
    """prov:wasDerivedFrom links the public places, never the internal cells' record; the
    link adds no SHACL violation to the record's DCAT-AP.de description."""
    import httpx
    import rdflib
    from conftest import serving
    from rdflib.namespace import PROV
    from test_dcat import violations

    district = proj.root / "catalog" / "district.yaml"
    district.write_text(yaml.safe_dump({**yaml.safe_load(district.read_text()), "ags": "12062",
                                        "default_license": "dl-by-de/2.0"}))
    assert proj.cli("ingest", "--all").exit_code == 0
    loaded = proj.cli("catalog", "load")
    assert loaded.exit_code == 0, loaded
    with serving(proj.root) as url, httpx.Client(base_url=url, timeout=60) as client:
        show = client.get("/api/3/action/package_show", params={"id": "orte"}).json()
        places = rdflib.URIRef(f"{url}/dataset/{show['result']['id']}")
        graph = rdflib.Graph().parse(data=client.get("/dataset/summe.ttl").text,
                                     format="turtle")
        feed = client.get("/catalog.ttl").text
        cells_page = client.get("/dataset/zellen.ttl")
    assert set(graph.objects(None, PROV.wasDerivedFrom)) == {places}
    assert feed.count("prov:wasDerivedFrom") == 1
    assert cells_page.status_code == 404
    without = rdflib.Graph()
    for triple in graph:
        if triple[1] != PROV.wasDerivedFrom:
            without.add(triple)
    for profile in ("3.0", "2.0+Konventionen"):
        assert violations(graph, profile) == violations(without, profile)


def test_validate_runs_the_query_and_writes_nothing(proj: Project) -> None:
    assert {proj.ingest(d).status for d in ("orte", "zellen")} == {"committed"}
    from typer.testing import CliRunner

    from hub.cli import app

    result = CliRunner().invoke(app, ["validate", "--pipeline", "summe", "--root",
                                      str(proj.root)], env={"COLUMNS": "400"})  # <root>/store
    assert result.exit_code == 0, result.output
    assert " ".join(result.output.split()).startswith("Ingest summary"), result.output
    assert "valid │ 2 │ 2 │ 0" in " ".join(result.output.split()), result.output
    assert proj.current("summe") is None


def test_two_pipelines_of_one_dataset_are_refused(proj: Project) -> None:
    (proj.root / "pipelines" / "orte-kopie.yaml").write_text(
        (proj.root / "pipelines" / "orte.yaml").read_text(encoding="utf-8")
        + "dataset: orte\n", encoding="utf-8")
    assert "dataset: 'orte' is made by" in refusal(proj)
