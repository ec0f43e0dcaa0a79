"""A project seeded for the leak crawl (tests/test_leak_crawl.py): public, internal and
restricted datasets — held data (pipelines with catalog records) and metadata-only records —
where every one that is not public carries unique markers (`LEAKMARK-…`) in its title,
description, keywords, organisation-specific fields (extras, contact, access note), attribute
values, a column name and the file names of its source and uploads.

Org A (sozialamt) owns the held data; org B (kataster-vermessung) is the neighbour. Who may see
what is written down here, per dataset, from the rules in the README — not asked of the hub —
so the crawl compares the hub's answers with an independent expectation.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import ckanapi
import yaml
from conftest import CENTRE, DISTRICT_BBOX, Project

from hub.accounts import Accounts
from hub.catalog import open_catalog

A, B = "sozialamt", "kataster-vermessung"
ROLES = ("anonymous", "b_viewer", "b_editor", "a_viewer")
STAFF = {"b_viewer": B, "b_editor": B, "a_viewer": A}  # role -> organisation
BIG_ROWS = 100_000  # the large hidden layer: loading it takes far longer than a 404
TAG, THEME = "leakcrawl", "SOCI"  # on every record, so facets count every visible one
# where markers are put in a catalog record (seen with the record); the others are in held
# data (seen with the data): value, column, source-file, pipeline-title
RECORD_KINDS = ("title", "description", "keyword", "extra-value", "extra-key", "contact",
                "email", "access-note", "edition", "upload")


def marker() -> str:
    return f"LEAKMARK-{uuid.uuid4().hex[:16]}"


@dataclass
class Seeded:
    """One dataset of the seeding and who may see it (by the README's rules)."""

    name: str
    record: str | None  # the record's access level; None: no record
    data: str | None = None  # the pipeline's access level; None: metadata only
    state: str = "active"
    facts: bool = False  # its data's facts (downloads) appear on its record
    rows: int = 3
    versions: int = 1
    marks: dict[str, str] = field(default_factory=dict)  # marker -> where it is (a kind)

    def sees_record(self, role: str) -> bool:
        if self.record is None or self.state != "active":
            return False  # drafts and deleted records: only for editors of org A
        return _may_see(role, self.record)

    def sees_data(self, role: str) -> bool:
        if self.data is None:
            return False
        levels = [self.data] + ([self.record] if self.record else [])
        strictest = max(levels, key=("public", "internal", "restricted").index)
        return _may_see(role, strictest)


def records_seen(role: str) -> list[str]:
    """The names of the records `role` may see, sorted."""
    return sorted([d.name for d in DATASETS if d.sees_record(role)] + FILLERS)


def publisher(name: str) -> str:
    return B if name == "offen-b" or name in FILLERS else A


def _may_see(role: str, level: str) -> bool:
    if level == "public":
        return True
    if level == "internal":
        return role in STAFF
    return STAFF.get(role) == A  # all restricted here is org A's (its data, to org A)


DATASETS = [
    Seeded("offen-a", "public", "public", facts=True),
    Seeded("offen-b", "public", "public", facts=True),
    Seeded("offen-inventar", "public"),
    Seeded("intern", "internal", "internal", facts=True, versions=2),
    Seeded("intern-inventar", "internal"),
    # derived (a `sql:` source) from the internal data, internal itself: its values, a column
    # and its title carry markers of their own
    Seeded("abgeleitet", "internal", "internal", facts=True),
    Seeded("geheim", "restricted", "restricted", facts=True),
    Seeded("geheim-inventar", "restricted"),
    Seeded("gross", "restricted", "restricted", facts=True, rows=BIG_ROWS),
    # derived: restricted data under a public record (the stricter level wins for the data;
    # the record's own text is public by its owner's choice, so it carries no marker)
    Seeded("freigabe", "public", "restricted"),
    # derived: data its pipeline calls public under an internal record (internal in force)
    Seeded("verschaerft", "internal", "public", facts=True),
    # derived: restricted data whose record its owner made through the CKAN API
    Seeded("eigen", "restricted", "restricted", facts=True),
    Seeded("entwurf", "public", state="draft"),
    Seeded("geloescht", "internal", state="deleted"),
]
BY_NAME = {d.name: d for d in DATASETS}
DERIVED = {"abgeleitet": "intern"}  # derived dataset -> the dataset its query reads
OWNED_BY_API = "eigen"
# public metadata-only records of org B: more than one page of the DCAT feed
FILLERS = [f"liste-{i:03}" for i in range(110)]
UPLOADS_TO = ("eigen", "geheim")  # records that get an uploaded file with a marked name
USERS = {"a_editor": ("anna", A, "editor"), "a_viewer": ("arno", A, "viewer"),  # role ->
         "b_editor": ("bert", B, "editor"), "b_viewer": ("berta", B, "viewer"),  # user, org, role
         "admin": ("root", "landkreis-elbe-elster", "admin")}
PASSWORD = "Leck Suche Passwort 7"
ANSWERS = {"care": "geheim", "mobility": "intern", "broadband": "eigen"}  # topic -> dataset


@dataclass
class Site:
    url: str
    project: Project
    tokens: dict[str, str]  # role (and "a_editor", "admin") -> token
    ids: dict[str, str]  # dataset name -> record id
    uploads: dict[str, str]  # dataset name -> the upload's download path
    cold_growth: int = 0  # see test_leak_crawl.first_touch


def hidden_markers(role: str) -> dict[str, str]:
    """marker -> dataset, for every marker `role` must never see."""
    return {m: d.name for d in DATASETS for m in d.marks if not _may_see_mark(d, m, role)}


def shown_markers(role: str) -> dict[str, str]:
    """marker -> dataset, for every marker `role` may see."""
    return {m: d.name for d in DATASETS for m in d.marks if _may_see_mark(d, m, role)}


def _may_see_mark(d: Seeded, mark: str, role: str) -> bool:
    """A record's marker is seen with the record, a data marker with the data."""
    return d.sees_record(role) if d.marks[mark] in RECORD_KINDS else d.sees_data(role)


def seed(root: Path) -> tuple[Project, dict[str, str]]:
    """The project on disk (pipelines ingested, records loaded, users with tokens); the
    records and uploads made through the API follow in `seed_online`."""
    project = Project(root)
    (root / "catalog" / "district.yaml").write_text(yaml.safe_dump({
        "name": "Testkreis", "ags": "12062", "bbox": DISTRICT_BBOX,
        "default_license": "dl-by-de/2.0",
        # the answers per place (/api/orte) from hidden data: restricted, internal, restricted
        "answers": ANSWERS}), encoding="utf-8")
    files = root / "catalog" / "datasets"
    files.mkdir()
    for name in FILLERS:
        (files / f"{name}.yaml").write_text(yaml.safe_dump({
            "name": name, "title": f"Liste {name}", "description": "Öffentlich",
            "publisher": B, "license": "dl-by-de/2.0", "keywords": [TAG], "themes": [THEME],
            "data_held": False, "access_note": "Anfragen beim Amt"}), encoding="utf-8")
    loaded = project.cli("catalog", "load")  # before any pipeline: no records made from them
    assert loaded.exit_code == 0, loaded
    records = root / "records"
    records.mkdir()
    for d in DATASETS:
        if d.data is not None:
            _held(project, d)
        if d.record is not None and d.name != OWNED_BY_API:  # that one: see seed_online
            path = records / f"{d.name}.yaml"
            path.write_text(yaml.safe_dump(record_of(d), allow_unicode=True), encoding="utf-8")
            added = project.cli("catalog", "add", str(path))
            assert added.exit_code == 0, added
    _work(project)
    tokens = {role: _token(project, user, org, level)
              for role, (user, org, level) in USERS.items()}
    _passwords(project)
    return project, tokens


def seed_online(url: str, project: Project, tokens: dict[str, str]) -> Site:
    """What the owner does through the CKAN API: a record of its own, uploads with marked
    file names, a soft delete. Returns the site with the record ids (asked as admin)."""
    editor = ckanapi.RemoteCKAN(url, apikey=tokens["a_editor"]).action
    d = BY_NAME[OWNED_BY_API]
    data = record_of(d)
    editor.package_create(
        name=d.name, title=data["title"], notes=data["description"], owner_org=A,
        license_id="dl-by-de/2.0", private=True, maintainer=data["contact"]["name"],
        maintainer_email=data["contact"]["email"], version=data["edition"],
        tags=[{"name": k} for k in data["keywords"]],
        groups=[{"name": THEME.lower()}],
        extras=[{"key": "access_level", "value": "restricted"},
                {"key": "restricted_to", "value": A},
                *({"key": k, "value": v} for k, v in data["extras"].items())])
    uploads = {}
    for name in UPLOADS_TO:
        file = f"{_mark(BY_NAME[name], 'upload')}.pdf"
        content = f"%PDF-1.4 {_mark(BY_NAME[name], 'upload')}\n".encode()
        res = editor.resource_create(package_id=name, name="Anlage", format="PDF",
                                     upload=(file, io.BytesIO(content)))
        uploads[name] = urlsplit(res["url"]).path
    editor.package_delete(id="geloescht")
    admin = ckanapi.RemoteCKAN(url, apikey=tokens["admin"]).action
    ids = {d.name: admin.package_show(id=d.name, include_deleted=True)["id"]
           for d in DATASETS if d.record is not None}
    return Site(url, project, tokens, ids, uploads)


def _work(project: Project) -> None:
    """Org A's work on restricted data, with markers: a failed run (its job page) and a file
    that is due (the to-do list)."""
    from hub.db.schema import todos
    from hub.jobs import queue

    d, db = BY_NAME["geheim"], project.store.db
    queue.submit(db, "ingest", {"dataset": d.name}, by="anna", organization=A)
    job = queue.claim(db, "leak-seed")
    assert job is not None
    queue.fail(db, job, "leak-seed", f"Quelle {_mark(d, 'job-error')} nicht erreichbar")
    with db.write() as conn:
        conn.execute(todos.insert().values(
            organization=A, dataset=d.name, kind="file_due", since=queue.stamp(),
            detail=f"{_mark(d, 'to-do')}: neue Datei fällig"))


def record_of(d: Seeded) -> dict[str, object]:
    """The record's fields; markers in them unless the record is public (a public record's
    text is public by its owner's choice, whatever the data's level)."""
    marked = d.record != "public" or d.state != "active"

    def text(kind: str) -> str:
        return _mark(d, kind) if marked else f"Angabe {d.name}"
    data: dict[str, object] = {
        "name": d.name, "title": f"Titel {text('title')}",
        "description": f"Beschreibung {text('description')}",
        "publisher": publisher(d.name), "license": "dl-by-de/2.0",
        "access": d.record, "keywords": [TAG, *([text("keyword")] if marked else [])],
        "themes": [THEME], "data_held": d.data is not None}
    if d.record == "restricted":
        data["restricted_to"] = [A]
    if marked:
        data["extras"] = {"fachverfahren": text("extra-value"),
                          text("extra-key").lower(): "schluessel"}
        data["contact"] = {"name": text("contact"),
                           "email": f"{text('email').lower()}@example.org"}
        data["access_note"] = f"Anfragen: {text('access-note')}"
        data["edition"] = text("edition")
    else:  # public: it passes the publication checklist
        data["extras"] = {}
        data["access_note"] = "Anfragen beim Amt"
        data["contact"] = {"name": "Amt", "email": "amt@example.org"}
        data["frequency"] = "ANNUAL"
    if d.state != "active" and d.state != "deleted":
        data["state"] = d.state
    return data


def _mark(d: Seeded, kind: str) -> str:
    mark = marker()
    d.marks[mark] = kind
    return mark


def _held(project: Project, d: Seeded) -> None:
    """The pipeline and its data; markers in a column name, the values, the title and the
    source's file name unless the data is public (in force: its record's level too)."""
    public = d.sees_data("anonymous")
    column = "wert" if public else _mark(d, "column").lower().replace("-", "_")
    value = f"Wert {d.name}" if public else _mark(d, "value")
    source = (f"{d.name}.csv" if public or d.name in DERIVED  # (a query has no file)
              else f"{_mark(d, 'source-file')}.csv")
    title = f"Daten {d.name}" if public else f"Daten {_mark(d, 'pipeline-title')}"
    schema = project.schema(d.name, [{"name": "nr", "type": "string"},
                                     {"name": column, "type": "string"},
                                     {"name": "geometry", "type": "geojson"}])
    if d.name in DERIVED:
        _derived(project, d, column, value, title, schema)
        return
    lines = [f"nr,{column},lon,lat"]
    lines += [f"{d.name}-{i},{value} {i},{CENTRE[0] + (i % 1000) / 5000:.5f},"
              f"{CENTRE[1] + (i // 1000) / 5000:.5f}" for i in range(d.rows)]
    (project.data / source).write_text("\n".join(lines) + "\n", encoding="utf-8")
    project.pipeline(d.name, schema, {"path": f"data/{source}", "crs": "EPSG:4326",
                                      "geometry": {"lon": "lon", "lat": "lat"}},
                     title=title, organization=publisher(d.name),
                     access=d.data)
    for _ in range(d.versions):
        report = project.ingest(d.name, force=True)
        assert report.status == "committed", report


def _derived(project: Project, d: Seeded, column: str, value: str, title: str,
             schema: str) -> None:
    """A derived dataset: a query over its input's current version (README: Derived
    datasets), run like any pipeline."""
    project.pipeline(d.name, schema, {"sql": f"SELECT nr, '{value} ' || nr AS \"{column}\", "
                                             f"geometry FROM \"{DERIVED[d.name]}\""},
                     title=title, organization=publisher(d.name), access=d.data)
    report = project.ingest(d.name)
    assert report.status == "committed", report


def _passwords(project: Project) -> None:
    """Every user signs in with `PASSWORD` too (the workspace's pages need a session)."""
    catalog, vocab, _ = open_catalog(project.settings())
    accounts = Accounts(catalog.store, vocab)
    for user, _, _ in USERS.values():
        accounts.set_password(user, PASSWORD)


def _token(project: Project, user: str, org: str, role: str) -> str:
    added = project.cli("user", "add", user, "--org", org, "--role", role)
    assert added.exit_code == 0, added
    return project.cli("token", "create", user).output.strip().splitlines()[-1]
