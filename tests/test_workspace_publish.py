"""The workspace's register, manage and publish pages and the users page, on a real `hub serve`
with a real HTTP client (httpx) and the CKAN API (ckanapi) as the other face that must agree:
anonymous visitors are sent to sign in, forms without their CSRF token are refused, editors of
another organisation get 404/403, bad fields answer 400 with the field's German message and
nothing stored; editors request publication, publishers approve it, the checklist blocks what
is not ready, withdrawing keeps the record and its data for admins; admins manage users."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ckanapi
import httpx
import pytest
from ckan_project import build, run_hub
from conftest import serving
from test_signin_pages import PASSWORD, client, csrf_of, sign_in

from hub import audit
from hub.access import ADMIN
from hub.accounts import Accounts
from hub.catalog import open_catalog
from hub.catalog.index import Catalog
from hub.catalog.model import ALL_STATES
from hub.config import load_settings

USERS = "/arbeitsbereich/benutzer"
FORM = {"title": "Spielplätze Finsterwalde", "name": "spielplaetze-finsterwalde",
        "description": "Alle öffentlichen Spielplätze der Stadt mit Ausstattung.",
        "contact_name": "Sozialamt, Team Daten", "contact_email": "daten@example.org",
        "license": "dl-by-de/2.0", "access": "public", "frequency": "ANNUAL",
        "keywords": "Spielplatz, Kinder", "theme_SOCI": "1", "metadata_only": "1",
        "access_note": "Beim Sozialamt, Tel. 03535 46-0"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("ws-publish")
    build(root)
    catalog, vocab, _ = open_catalog(load_settings(root, root / "store"))
    accounts = Accounts(catalog.store, vocab)
    accounts.add_user("pia", "sozialamt", "publisher")
    for user in ("ann", "sam", "kat", "vic", "pia"):
        accounts.set_password(user, PASSWORD)
    with serving(root) as url:
        yield {"url": url, "root": root, "accounts": accounts, "catalog": catalog}


def stored(hub: dict[str, Any], name: str) -> Any:
    catalog: Catalog = hub["catalog"]
    return catalog.get(name, ADMIN, ALL_STATES)


@contextlib.contextmanager
def signed_in(hub: dict[str, Any], user: str) -> Iterator[httpx.Client]:
    with client(hub["url"]) as browser:
        assert sign_in(browser, user).status_code == 303
        yield browser


def post_form(browser: httpx.Client, path: str, data: dict[str, str],
              page: str = "") -> httpx.Response:
    """POST `data` to `path` with the CSRF token of the form on `page` (default: `path`)."""
    token = csrf_of(browser.get(page or path))
    return browser.post(path, data={**data, "csrf": token})


def revision_of(page: httpx.Response) -> str:
    found = re.search(r'name="revision" value="(\d+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


def test_anonymous_visitors_are_sent_to_sign_in(hub: dict[str, Any]) -> None:
    with client(hub["url"]) as anonymous:
        for path in ("/arbeitsbereich/neu", "/arbeitsbereich/datensaetze/gemeinden",
                     "/arbeitsbereich/benutzer"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/anmelden"
        sent = anonymous.post("/arbeitsbereich/neu", data={**FORM, "name": "anonym"})
        assert sent.status_code == 303 and sent.headers["location"] == "/anmelden"
        sent = anonymous.post("/arbeitsbereich/datensaetze/gemeinden/veroeffentlichung",
                              data={"action": "withdraw", "revision": "1"})
        assert sent.status_code == 303
    assert stored(hub, "anonym") is None


def test_a_form_without_its_csrf_token_is_refused_and_nothing_is_stored(
        hub: dict[str, Any]) -> None:
    with signed_in(hub, "sam") as sam:
        for sent in ({}, {"csrf": "falsch"}):
            answer = sam.post("/arbeitsbereich/neu", data={**FORM, "name": "ohne-csrf", **sent})
            assert answer.status_code == 403
    assert stored(hub, "ohne-csrf") is None


def test_bad_fields_answer_400_next_to_the_field_and_keep_what_was_typed(
        hub: dict[str, Any]) -> None:
    bad = {**FORM, "name": "Spiel Plätze!", "contact_email": "keine-adresse",
           "license": "", "description": "   ", "metadata_only": "1", "access_note": ""}
    with signed_in(hub, "sam") as sam:
        answer = post_form(sam, "/arbeitsbereich/neu", bad)
    assert answer.status_code == 400
    page = answer.text
    for field, message in (
            ("name", "Der Kurzname besteht aus Kleinbuchstaben"),
            ("contact_email", "Das ist keine gültige E-Mail-Adresse"),
            ("license", "Bitte wählen Sie eine Lizenz."),
            ("description", "Bitte beschreiben Sie den Datensatz."),
            ("access_note", "wer die Daten hat")):
        error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
        assert error and message in error.group(1), (field, page[:3000])
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page), field
    assert 'value="Spiel Plätze!"' in page and 'value="keine-adresse"' in page
    assert 'value="Spielplätze Finsterwalde"' in page  # the rest as typed
    assert "Bitte prüfen Sie 5 Angaben." in page
    assert stored(hub, "spiel-platze") is None and stored(hub, "Spiel Plätze!") is None


def test_register_makes_a_draft_only_its_organisation_sees(hub: dict[str, Any]) -> None:
    with signed_in(hub, "sam") as sam:
        done = post_form(sam, "/arbeitsbereich/neu", FORM)
        assert done.status_code == 303, done.text[:2000]
        assert done.headers["location"].startswith(
            "/arbeitsbereich/datensaetze/spielplaetze-finsterwalde")
        page = sam.get(done.headers["location"])
        assert page.status_code == 200 and "Der Datensatz ist als Entwurf angelegt." in page.text
        again = post_form(sam, "/arbeitsbereich/neu", FORM)  # the same name twice
        assert again.status_code == 400 and "schon vergeben" in again.text
    record = stored(hub, "spielplaetze-finsterwalde")
    assert (record.state, record.publisher, record.origin) == ("draft", "sozialamt", "web")
    assert (record.data_held, record.themes, record.keywords) == (
        False, ["SOCI"], ["Spielplatz", "Kinder"])
    assert record.contact == {"name": "Sozialamt, Team Daten", "email": "daten@example.org"}
    entry = audit.entries(hub["catalog"].store.db, audit.Filter(
        action="record.create", subject="spielplaetze-finsterwalde"))[0]
    assert entry.actor == "sam" and entry.after_value["state"] == "draft"
    anonymous = ckanapi.RemoteCKAN(hub["url"]).action
    with pytest.raises(ckanapi.NotFound):
        anonymous.package_show(id="spielplaetze-finsterwalde")
    with signed_in(hub, "kat") as kat:  # an editor of another organisation
        assert kat.get("/arbeitsbereich/datensaetze/spielplaetze-finsterwalde"
                       ).status_code == 404
        token = csrf_of(kat.get("/arbeitsbereich/neu"))
        for path, data in (("", {**FORM, "title": "Gekapert", "revision": "1"}),
                           ("/veroeffentlichung", {"action": "withdraw", "revision": "1"})):
            answer = kat.post(f"/arbeitsbereich/datensaetze/spielplaetze-finsterwalde{path}",
                              data={**data, "csrf": token})
            assert answer.status_code == 404
    assert stored(hub, "spielplaetze-finsterwalde").title == FORM["title"]


def test_an_edit_based_on_an_old_revision_gives_a_conflict(hub: dict[str, Any]) -> None:
    path = "/arbeitsbereich/datensaetze/zuckerwatte-intern"
    with signed_in(hub, "sam") as sam, signed_in(hub, "ann") as ann:
        first, second = sam.get(path), ann.get(path)
        token_first, token_second = csrf_of(first), csrf_of(second)
        base = {**FORM, "name": "zuckerwatte-intern", "title": "Zuckerwatte (geändert)",
                "metadata_only": "", "access": "internal",
                "description": "Interne Liste der Zuckerwattestände."}
        done = sam.post(path, data={**base, "revision": revision_of(first),
                                    "csrf": token_first})
        assert done.status_code == 303, done.text[:1500]
        late = ann.post(path, data={**base, "publisher": "sozialamt", "title": "Späte Änderung",
                                    "revision": revision_of(second), "csrf": token_second})
        assert late.status_code == 409
        assert "inzwischen von jemand anderem geändert" in late.text
        widened = sam.post(path, data={**base, "access": "public", "csrf": token_first,
                                       "revision": revision_of(sam.get(path))})
        assert widened.status_code == 400 and "über die Veröffentlichung" in widened.text
    record = stored(hub, "zuckerwatte-intern")
    assert (record.title, record.access) == ("Zuckerwatte (geändert)", "internal")
    change = audit.entries(hub["catalog"].store.db, audit.Filter(
        action="record.update", subject="zuckerwatte-intern"))
    assert len(change) == 1 and change[0].before_value["title"] == \
        "Zuckerwatte Verkaufsstände (intern)"
    assert record.distributions  # fields the form does not show are kept


def publish_form(browser: httpx.Client, name: str, action: str,
                 target: str = "") -> httpx.Response:
    path = f"/arbeitsbereich/datensaetze/{name}"
    page = browser.get(path)
    return browser.post(f"{path}/veroeffentlichung", data={
        "action": action, "target": target, "revision": revision_of(page),
        "csrf": csrf_of(page)})


def test_editors_request_and_publishers_approve_publication(hub: dict[str, Any]) -> None:
    with signed_in(hub, "sam") as sam:
        assert sam.post(  # (its own registration)
            "/arbeitsbereich/neu", data={**FORM, "name": "bolzplaetze", "title": "Bolzplätze",
                                         "csrf": csrf_of(sam.get("/arbeitsbereich/neu"))}
        ).status_code == 303
        refused = publish_form(sam, "bolzplaetze", "publish", "public")
        assert refused.status_code == 403  # an editor may not approve
        asked = publish_form(sam, "bolzplaetze", "request", "public")
        assert asked.status_code == 303
        page = sam.get(asked.headers["location"]).text
        assert "Die Veröffentlichung ist beantragt." in page and "Beantragt: öffentlich" in page
    assert stored(hub, "bolzplaetze").state == "draft"
    with signed_in(hub, "pia") as pia:
        page = pia.get("/arbeitsbereich/datensaetze/bolzplaetze").text
        assert "Öffentlich freigeben" in page and "von sam" in page
        done = publish_form(pia, "bolzplaetze", "publish", "public")
        assert done.status_code == 303
    record = stored(hub, "bolzplaetze")
    assert (record.state, record.access) == ("active", "public")
    shown = ckanapi.RemoteCKAN(hub["url"]).action.package_show(id="bolzplaetze")
    assert shown["title"] == "Bolzplätze" and shown["private"] is False
    with client(hub["url"]) as anonymous:
        assert anonymous.get("/datasets/bolzplaetze").status_code == 200
    with signed_in(hub, "sam") as sam:  # a public record keeps what its checklist passed
        path = "/arbeitsbereich/datensaetze/bolzplaetze"
        page = sam.get(path)
        lost = sam.post(path, data={**FORM, "name": "bolzplaetze", "title": "Bolzplätze",
                                    "contact_email": "", "revision": revision_of(page),
                                    "csrf": csrf_of(page)})
        assert lost.status_code == 409 and "Die Prüfliste ist nicht erfüllt" in lost.text
    assert stored(hub, "bolzplaetze").contact["email"] == "daten@example.org"


def test_the_checklist_blocks_public_until_the_data_is_there(hub: dict[str, Any]) -> None:
    held = {**FORM, "name": "sitzbaenke", "title": "Sitzbänke", "metadata_only": "",
            "access_note": ""}
    with signed_in(hub, "sam") as sam:
        assert post_form(sam, "/arbeitsbereich/neu", held).status_code == 303
        page = sam.get("/arbeitsbereich/datensaetze/sitzbaenke").text
        assert "Karten- oder Tabellenvorschau</strong>: fehlt" in page
        assert "Lizenz</strong>: erfüllt" in page
        blocked = publish_form(sam, "sitzbaenke", "request", "public")
        assert blocked.status_code == 409 and "Die Prüfliste ist nicht erfüllt" in blocked.text
        internal = publish_form(sam, "sitzbaenke", "request", "internal")
        assert internal.status_code == 303  # internal needs no preview
    with signed_in(hub, "pia") as pia:
        assert publish_form(pia, "sitzbaenke", "publish", "public").status_code == 409
        assert publish_form(pia, "sitzbaenke", "publish", "internal").status_code == 303
    record = stored(hub, "sitzbaenke")
    assert (record.state, record.access) == ("active", "internal")


def test_withdrawing_keeps_the_dataset_and_its_data_for_admins(hub: dict[str, Any]) -> None:
    root = hub["root"]
    with client(hub["url"]) as anonymous:
        assert anonymous.get("/ogc/collections/gemeinden/items?limit=1").status_code == 200
    out = run_hub(root, "catalog", "withdraw", "gemeinden")
    assert "withdrawn" in out
    admin_token = hub["accounts"].create_token("ann")[1]
    try:
        with client(hub["url"]) as anonymous:
            assert anonymous.get("/ogc/collections/gemeinden/items?limit=1").status_code == 404
            assert anonymous.get("/downloads/gemeinden/latest.csv").status_code == 404
        admin = httpx.Client(base_url=hub["url"], headers={"Authorization": admin_token})
        with admin:
            assert admin.get("/ogc/collections/gemeinden/items?limit=1").status_code == 200
            assert admin.get("/api/3/action/package_show", params={
                "id": "gemeinden", "include_deleted": "true"}).json()["result"]["state"] \
                == "deleted"
        with signed_in(hub, "ann") as ann:
            page = ann.get("/arbeitsbereich/datensaetze/gemeinden").text
            assert "zurückgezogen" in page and "<td>1</td>" in page  # its version is kept
        out = run_hub(root, "catalog", "publish", "gemeinden", "--to", "public")
        assert "gemeinden: public" in out
    finally:
        record = stored(hub, "gemeinden")
        if record.state != "active":  # leave the module's site as it was
            run_hub(root, "catalog", "publish", "gemeinden", "--to", "public")
    with client(hub["url"]) as anonymous:
        assert anonymous.get("/ogc/collections/gemeinden/items?limit=1").status_code == 200


def test_the_dashboard_shows_state_versions_and_quality_per_organisation(
        hub: dict[str, Any]) -> None:
    with signed_in(hub, "sam") as sam:
        page = sam.get("/arbeitsbereich")
    assert page.status_code == 200
    text = page.text
    assert "<h2 id=\"org-1\">Sozialamt</h2>" in text or ">Sozialamt</h2>" in text
    assert "/arbeitsbereich/datensaetze/spielplaetze-finsterwalde" in text
    assert "Kataster" not in text.split("<main", 1)[1]  # only the own organisation
    with signed_in(hub, "ann") as ann:
        page = ann.get("/arbeitsbereich").text
    row = re.search(r'datensaetze/gemeinden">.*?</tr>', page, re.S)
    assert row and "Version 1" in row.group(0) and "keine" in row.group(0), row


def test_admins_manage_users_others_may_not(hub: dict[str, Any]) -> None:
    with signed_in(hub, "sam") as sam:
        assert sam.get("/arbeitsbereich/benutzer").status_code == 403
        token = csrf_of(sam.get("/arbeitsbereich/neu"))
        assert sam.post("/arbeitsbereich/benutzer", data={
            "name": "eve", "organization": "sozialamt", "role": "admin", "csrf": token}
        ).status_code == 403
    with signed_in(hub, "ann") as ann:
        added = post_form(ann, "/arbeitsbereich/benutzer", {
            "name": "neu.nutzer", "organization": "kataster-vermessung", "role": "editor",
            "fullname": "Neu Nutzer", "email": "neu@example.org"})
        assert added.status_code == 200
        first = re.search(r'<code class="secret">([^<]+)</code>', added.text).group(1)
        assert first not in ann.get("/arbeitsbereich/benutzer").text  # shown once
        again = post_form(ann, "/arbeitsbereich/benutzer", {
            "name": "neu.nutzer", "organization": "sozialamt", "role": "editor"})
        assert again.status_code == 400 and "exists already" in again.text
        with client(hub["url"]) as newcomer:
            assert sign_in(newcomer, "neu.nutzer", first).status_code == 303
        assert post_form(ann, "/arbeitsbereich/benutzer", {}).status_code == 400
        changed = post_form(ann, "/arbeitsbereich/benutzer/neu.nutzer",
                            {"action": "role", "role": "publisher"}, USERS)
        assert changed.status_code == 303
        assert hub["accounts"].user("neu.nutzer").role == "publisher"
        reset = post_form(ann, "/arbeitsbereich/benutzer/neu.nutzer", {"action": "password"},
                          USERS)
        second = re.search(r'<code class="secret">([^<]+)</code>', reset.text).group(1)
        assert second != first
        hub["accounts"].begin_totp("neu.nutzer")
        assert post_form(ann, "/arbeitsbereich/benutzer/neu.nutzer",
                         {"action": "totp"}, USERS).status_code == 303
        assert post_form(ann, "/arbeitsbereich/benutzer/neu.nutzer",
                         {"action": "disable"}, USERS).status_code == 303
    with client(hub["url"]) as newcomer:
        assert sign_in(newcomer, "neu.nutzer", first).status_code == 401
        assert sign_in(newcomer, "neu.nutzer", second).status_code == 401  # disabled
    assert hub["accounts"].user("neu.nutzer").state == "disabled"
    trail = [(e.actor, e.action) for e in reversed(audit.entries(
        hub["accounts"].db, audit.Filter(subject="neu.nutzer", action="user.")))]
    assert trail == [("ann", "user.add"), ("ann", "user.password"),  # the first password
                     ("ann", "user.role"), ("ann", "user.password"),
                     ("ann", "user.second_factor_reset"), ("ann", "user.state")]
    assert all(first not in str(e.after) + str(e.before)  # no password in the trail
               for e in audit.entries(hub["accounts"].db, limit=None))
