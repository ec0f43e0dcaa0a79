"""The publication workflow's core (hub.catalog.publication) and its rules in hub.access:
who may request, publish and withdraw, the checklist item by item, the stages, requests kept
until approved, and the data of a draft or withdrawn record seen by its owner only."""

from __future__ import annotations

import json
import shutil
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from hub import audit
from hub.access import (
    ANONYMOUS,
    OPERATOR,
    DataAccess,
    Viewer,
    check_manage_users,
    check_publish,
    check_request,
    check_withdraw,
)
from hub.catalog import open_catalog
from hub.catalog.editing import Editing
from hub.catalog.model import ALL_STATES, validate
from hub.catalog.publication import (
    NotReady,
    Publication,
    checklist,
    editors_publish,
    stage,
)
from hub.config import load_settings
from hub.errors import Conflict, Forbidden
from hub.ingest.pipeline import load_pipeline
from hub.ingest.run import ingest
from hub.store import Store

REPO = Path(__file__).resolve().parents[1]
ORG = "sozialamt"
EDITOR = Viewer.of_role("editor", ORG, "sam")
PUBLISHER = Viewer.of_role("publisher", ORG, "pia")
OTHER_PUBLISHER = Viewer.of_role("publisher", "kataster-vermessung", "kai")
STAFF = Viewer.of_role("viewer", ORG, "vic")
ADMIN_USER = Viewer.of_role("admin", "landkreis-elbe-elster", "ann")
READY = {"name": "treffs", "title": "Seniorentreffs", "description": "Alle Treffpunkte.",
         "publisher": ORG, "license": "dl-by-de/2.0", "frequency": "ANNUAL",
         "contact": {"name": "Sozialamt", "email": "daten@example.org"},
         "data_held": False, "access_note": "Beim Sozialamt erfragen", "state": "draft"}


@pytest.fixture
def opened(tmp_path: Path):
    shutil.copytree(REPO / "catalog", tmp_path / "catalog")
    return tmp_path, *open_catalog(load_settings(tmp_path, tmp_path / "store"))


def test_editors_request_publishers_and_admins_publish() -> None:
    record = _record()  # (the checks need only the record's publisher)
    check_request(EDITOR, record)
    check_publish(PUBLISHER, record)
    check_publish(ADMIN_USER, record)
    with pytest.raises(Forbidden, match="publisher of the organization approves"):
        check_publish(EDITOR, record)
    check_publish(EDITOR, record, editors_publish=True)  # the district allows it
    for outsider in (OTHER_PUBLISHER, STAFF, ANONYMOUS):
        for check in (check_request, check_publish, check_withdraw):
            with pytest.raises(Forbidden):
                check(outsider, record)
        with pytest.raises(Forbidden):
            check_publish(outsider, record, editors_publish=True)
    check_withdraw(EDITOR, record)
    check_manage_users(ADMIN_USER)
    for viewer in (PUBLISHER, EDITOR, STAFF, ANONYMOUS):
        with pytest.raises(Forbidden):
            check_manage_users(viewer)


def test_editors_publish_is_read_from_the_district_settings() -> None:
    assert editors_publish({"workspace": {"editors_publish": True}})
    for raw in ({}, {"workspace": None}, {"workspace": {"editors_publish": "yes"}},
                {"workspace": "editors_publish"}):
        assert not editors_publish(raw)


def test_the_checklist_names_each_missing_point(opened) -> None:
    _, _, vocab, _ = opened
    ready = validate(READY, vocab)
    assert all(item.ok for item in checklist(ready, None))
    assert [i.key for i in checklist(ready, None)] == [
        "license", "contact", "frequency", "owner", "access_note"]
    bare = replace(ready, license="", contact={}, frequency="UNKNOWN", access_note="")
    assert [i.key for i in checklist(bare, None) if not i.ok] == [
        "license", "contact", "frequency", "owner", "access_note"]
    held = replace(ready, data_held=True, access_note="")
    assert [i.key for i in checklist(held, None) if not i.ok] == ["preview", "validation"]


def test_a_version_with_quarantined_rows_does_not_pass(opened) -> None:
    root, catalog, vocab, _ = opened
    record = validate({**READY, "name": "punkte", "data_held": True}, vocab)
    catalog.upsert(record)
    good = _ingest(root, "punkte", "id,x,y\n1,13.3,51.6\n2,13.4,51.7\n")
    assert {i.key: i.ok for i in checklist(record, good)}["validation"]
    bad = _ingest(root, "punkte", "id,x,y\n1,13.3,51.6\nzwei,13.4,51.7\n")
    assert bad.quarantined == 1
    items = {i.key: i.ok for i in checklist(record, bad)}
    assert items["preview"] and not items["validation"]


def test_draft_to_internal_to_public_and_withdrawn(opened) -> None:
    _, catalog, vocab, _ = opened
    record = Editing(catalog, vocab, EDITOR).create(READY)
    assert stage(record) == "draft"
    as_editor = Publication(Editing(catalog, vocab, EDITOR))
    request = as_editor.request(record, "public")
    assert (request.target, request.requested_by) == ("public", "sam")
    assert as_editor.pending(record) == request
    with pytest.raises(Forbidden):
        as_editor.publish(record, "public")
    as_publisher = Publication(Editing(catalog, vocab, PUBLISHER))
    internal = as_publisher.publish(record, "internal", record.revision)
    assert (internal.state, internal.access, stage(internal)) == ("active", "internal",
                                                                   "internal")
    assert as_publisher.pending(record) is None  # approved: the request is done
    assert catalog.get("treffs", ANONYMOUS) is None and catalog.get("treffs", STAFF)
    with pytest.raises(Conflict):  # the revision it was based on is gone
        as_publisher.publish(internal, "public", record.revision)
    public = as_publisher.publish(internal, "public", internal.revision)
    assert stage(public) == "public" and catalog.get("treffs", ANONYMOUS) is not None
    with pytest.raises(Conflict, match="withdraw it first"):
        as_publisher.publish(public, "internal")
    withdrawn = as_editor.withdraw(public, public.revision)
    assert stage(withdrawn) == "withdrawn" and catalog.get("treffs", ANONYMOUS) is None
    kept = catalog.get("treffs", ADMIN_USER, ALL_STATES)
    assert kept is not None and kept.title == READY["title"]
    with pytest.raises(Conflict):
        as_editor.withdraw(kept)
    assert stage(as_publisher.publish(kept, "public")) == "public"  # restored
    allowed = Publication(Editing(catalog, vocab, EDITOR),
                          editors_publish({"workspace": {"editors_publish": True}}))
    assert allowed.may_publish(kept) and not as_editor.may_publish(kept)
    trail = [(e.actor, e.action, e.after_value) for e in reversed(
        audit.entries(catalog.store.db, audit.Filter(subject="treffs", action="publication.")))]
    assert [(actor, action) for actor, action, _ in trail] == [
        ("sam", "publication.request"), ("pia", "publication.approve"),
        ("pia", "publication.approve"), ("sam", "publication.withdraw"),
        ("pia", "publication.approve")]
    assert [after.get("stage") for _, _, after in trail[1:]] == [
        "internal", "public", "withdrawn", "public"]
    assert audit.verify(catalog.store.db)


def test_public_needs_the_checklist(opened) -> None:
    _, catalog, vocab, _ = opened
    record = Editing(catalog, vocab, OPERATOR).create(
        {**READY, "name": "ohne", "contact": {}, "frequency": ""})
    publication = Publication(Editing(catalog, vocab, PUBLISHER))
    for attempt in (lambda: publication.publish(record, "public"),
                    lambda: publication.request(record, "public")):
        with pytest.raises(NotReady) as caught:
            attempt()
        assert [i.key for i in caught.value.missing] == ["contact", "frequency", "owner"]
    assert catalog.get("ohne", ADMIN_USER, ALL_STATES).state == "draft"
    with pytest.raises(Exception, match="must be one of internal, public"):
        publication.publish(record, "everyone")


def test_the_data_of_a_draft_or_withdrawn_record_is_its_owner_only(opened) -> None:
    root, catalog, vocab, _ = opened
    record = Editing(catalog, vocab, OPERATOR).create(
        {**READY, "name": "punkte", "data_held": True, "access": "public"})
    _ingest(root, "punkte", "id,x,y\n1,13.3,51.6\n")
    access = DataAccess(lambda: (catalog, vocab))
    dataset = catalog.store.dataset("punkte")
    assert access.of(dataset) == ("restricted", [ORG])  # a draft: its owner only
    assert not access.may_see(ANONYMOUS, dataset) and access.may_see(STAFF, dataset)
    publication = Publication(Editing(catalog, vocab, ADMIN_USER))
    public = publication.publish(record, "public")
    assert access.of(dataset) == ("public", [])
    publication.withdraw(public)
    assert access.of(dataset) == ("restricted", [ORG])
    assert access.may_see(ADMIN_USER, dataset) and not access.may_see(
        Viewer.of_role("viewer", "kataster-vermessung", "x"), dataset)
    assert catalog.store.versions("punkte")  # the versions are kept


def _record():
    from hub.catalog.model import Record

    return Record(id="00000000-0000-4000-8000-000000000001", name="x", title="x",
                  description="x", publisher=ORG, license="dl-by-de/2.0")


def _ingest(root: Path, name: str, csv: str):
    (root / "schemas").mkdir(exist_ok=True)
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "schemas" / "pts.json").write_text(json.dumps({"fields": [
        {"name": "id", "type": "integer"},
        {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]}]}))
    (root / "pipelines" / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        dataset: {name}
        title: Punkte
        organization: {ORG}
        access: public
        schema: pts
        outside_extent: keep
        on_error: quarantine
        source: {{path: ../{name}.csv, geometry: {{lon: x, lat: y}}, crs: EPSG:4326}}
        """))
    (root / f"{name}.csv").write_text(csv)
    settings = load_settings(root, root / "store")
    pipeline = load_pipeline(root / "pipelines" / f"{name}.yaml")
    report = ingest(pipeline, Store(settings.store), settings)
    assert report.status == "committed", report
    return Store(settings.store).current(name)


# -- the checklist's rule on every write (hub.catalog.checklist.require_ready) ---------------

def test_no_write_makes_a_record_public_without_the_checklist(opened) -> None:
    _, catalog, vocab, _ = opened
    admin = Editing(catalog, vocab, ADMIN_USER)  # an admin too: the rule is not about roles
    bare = {**READY, "name": "ohne-kontakt", "contact": {}, "state": "active",
            "access": "public"}
    with pytest.raises(NotReady, match=r"contact.*owner") as refused:
        admin.create(bare)
    assert [i.key for i in refused.value.missing] == ["contact", "owner"]
    assert catalog.get("ohne-kontakt", ADMIN_USER, ALL_STATES) is None  # nothing written
    internal = admin.create({**bare, "access": "internal"})  # internal needs no checklist
    with pytest.raises(NotReady, match="contact"):
        admin.patch(internal, {"access": "public"})
    draft = Editing(catalog, vocab, EDITOR).create({**READY, "contact": {}})
    with pytest.raises(NotReady):  # a draft becomes public by its state alone
        Editing(catalog, vocab, PUBLISHER).patch(draft, {"state": "active",
                                                         "access": "public"})
    assert stage(catalog.get(draft.name, ADMIN_USER, ALL_STATES)) == "draft"
    public = admin.patch(internal, {"access": "public", "contact": READY["contact"]})
    assert stage(public) == "public"
    # a public record may not lose what it passed, but an edit that keeps it may be saved
    with pytest.raises(NotReady, match="update frequency"):
        admin.patch(public, {"frequency": "UNKNOWN"})
    with pytest.raises(NotReady, match="preview"):  # now a record of data the hub lacks
        admin.patch(public, {"data_held": True})
    assert admin.patch(public, {"title": "Neuer Titel"}).title == "Neuer Titel"


def test_a_public_record_whose_new_version_fails_validation_can_still_be_edited(
        opened) -> None:
    root, catalog, vocab, _ = opened
    admin = Editing(catalog, vocab, ADMIN_USER)
    _ingest(root, "punkte", "id,x,y\n1,13.3,51.6\n")
    public = admin.create({**READY, "name": "punkte", "data_held": True, "access_note": "",
                           "state": "active", "access": "public"})
    _ingest(root, "punkte", "id,x,y\n1,13.3,51.6\nzwei,13.4,51.7\n")  # quarantines a row
    assert admin.patch(public, {"description": "Neu."}).description == "Neu."
    internal = admin.patch(public, {"access": "internal"})
    with pytest.raises(NotReady, match="validation"):  # but it cannot become public again
        admin.patch(internal, {"access": "public"})


def test_a_load_writes_the_file_and_names_each_public_record_failing_the_checklist(
        opened) -> None:
    from hub.catalog.load import Incoming, sync

    _, catalog, vocab, _ = opened
    ready = validate({**READY, "state": "active", "access": "public"}, vocab)
    unready = validate({**READY, "name": "ohne", "frequency": "UNKNOWN", "state": "active",
                        "access": "public"}, vocab)
    internal = validate({**READY, "name": "intern", "contact": {}, "state": "active",
                         "access": "internal"}, vocab)
    outcome = sync(catalog, [Incoming(r, f"{r.name}.yaml") for r in (ready, unready, internal)],
                   vocab)
    assert outcome.created == ["treffs", "ohne", "intern"]
    assert [(u.name, [i.key for i in u.missing]) for u in outcome.unready] == [
        ("ohne", ["frequency"])]
    assert str(outcome.unready[0]) == (
        "ohne.yaml: ohne: public although the publication checklist misses update frequency")
    assert "1 public without passing the checklist" in outcome.summary()


def test_the_python_api_cannot_register_a_public_record_failing_the_checklist(
        opened) -> None:
    import hub
    from hub.client import InvalidRecord

    root, catalog, _, _ = opened
    local = hub.open(root)
    with pytest.raises(InvalidRecord, match="cannot be public yet: contact"):
        local.register({**READY, "name": "api-offen", "contact": {}, "state": "active",
                        "access": "public"})
    assert catalog.get("api-offen", ADMIN_USER, ALL_STATES) is None
    local.register({**READY, "name": "api-offen", "state": "active", "access": "public"})
    with pytest.raises(InvalidRecord, match="update frequency"):
        local.update("api-offen", {"frequency": "UNKNOWN"})
