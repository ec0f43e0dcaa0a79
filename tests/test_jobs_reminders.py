"""E-mail reminders (hub.jobs.reminders) through a real SMTP server on 127.0.0.1 (aiosmtpd):
to the owner organisation's address when a dataset is stale or a new file is due, once per
dataset and period; no mail without HUB_SMTP_HOST; a failed delivery is tried again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import Project

from bench._serve import free_port
from hub.catalog import open_catalog
from hub.errors import HubError
from hub.jobs.reminders import Smtp, send_reminders
from hub.jobs.schedule import tick

FIELDS = [
    {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
    {"name": "geometry", "type": "geojson", "geometryTypes": ["Point"]},
]
SOZIALAMT = "sozialamt@lkee.example.org"  # catalog/organizations.yaml


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, Smtp]]:
    box = Inbox()
    server = Controller(box, hostname="127.0.0.1", port=free_port())
    server.start()
    yield box, Smtp.from_env({"HUB_SMTP_HOST": "127.0.0.1", "HUB_SMTP_PORT": str(server.port),
                              "HUB_SMTP_FROM": "opendata@landkreis.example",
                              "HUB_SMTP_STARTTLS": "0"})
    server.stop()


@pytest.fixture
def project(ingest_project: Project) -> Project:
    ingest_project.schema("points", FIELDS)
    district = ingest_project.root / "catalog" / "district.yaml"
    district.write_text(district.read_text() + "default_license: dl-by-de/2.0\n")
    (ingest_project.data / "p.csv").write_text("id;lon;lat\n1;13.47;51.626\n")
    source = {"path": "data/p.csv", "crs": "EPSG:4326", "geometry": {"lon": "lon", "lat": "lat"}}
    ingest_project.pipeline("pflege", "points", source, organization="sozialamt",
                            update_frequency="weekly", title="Pflegeangebote")
    ingest_project.pipeline("neu", "points", source, organization="sozialamt",
                            update_frequency="monthly", title="Neue Liste")
    assert ingest_project.ingest("pflege").status == "committed"
    assert ingest_project.cli("catalog", "load").exit_code == 0
    return ingest_project


def test_the_owner_is_reminded_once_per_period_of_stale_data_and_due_files(
        project: Project, inbox: tuple[Inbox, Smtp]) -> None:
    box, smtp = inbox
    catalog, vocab, _ = open_catalog(project.settings())
    assert vocab.organization("sozialamt").email == SOZIALAMT
    tick(project.settings(), catalog.store)  # "neu" has no version: its file is due
    today = dt.date.today()
    sent = send_reminders(catalog, vocab, smtp, today)
    assert [(d.dataset, d.kind) for d in sent] == [("neu", "file_due")]  # pflege is current
    later = today + dt.timedelta(days=30)  # pflege (weekly) is stale by then
    sent = send_reminders(catalog, vocab, smtp, later)
    assert [(d.dataset, d.kind) for d in sent] == [("pflege", "stale")]
    assert send_reminders(catalog, vocab, smtp, later) == []  # once per period
    assert send_reminders(catalog, vocab, smtp, later + dt.timedelta(days=5)) == []
    assert box.envelopes == [("opendata@landkreis.example", [SOZIALAMT])] * 2
    due, stale = box.messages
    assert due["Subject"] == "Neue Datei fällig: neu"
    assert "Neue Liste" in due.get_content()
    assert stale["Subject"].startswith("Datensatz veraltet:")
    assert "Tage her" in stale.get_content()
    assert stale["To"] == SOZIALAMT and stale["From"] == "opendata@landkreis.example"


def test_no_mail_without_a_server_and_a_failed_delivery_is_tried_again(
        project: Project, inbox: tuple[Inbox, Smtp]) -> None:
    box, smtp = inbox
    catalog, vocab, _ = open_catalog(project.settings())
    tick(project.settings(), catalog.store)
    assert Smtp.from_env({}) is None
    assert send_reminders(catalog, vocab, None) == []
    closed = Smtp("127.0.0.1", free_port(), "opendata@landkreis.example", starttls=False)
    assert send_reminders(catalog, vocab, closed) == []  # nobody listens: nothing noted
    assert [d.dataset for d in send_reminders(catalog, vocab, smtp)] == ["neu"]
    assert len(box.messages) == 1


def test_a_wrong_smtp_setting_is_named() -> None:
    with pytest.raises(HubError, match="HUB_SMTP_PORT 'abc'"):
        Smtp.from_env({"HUB_SMTP_HOST": "mail", "HUB_SMTP_PORT": "abc",
                       "HUB_SMTP_FROM": "a@b.example"})
    with pytest.raises(HubError, match="HUB_SMTP_FROM"):
        Smtp.from_env({"HUB_SMTP_HOST": "mail"})
    with pytest.raises(HubError, match="HUB_SMTP_STARTTLS 'vielleicht'"):
        Smtp.from_env({"HUB_SMTP_HOST": "mail", "HUB_SMTP_FROM": "a@b.example",
                       "HUB_SMTP_STARTTLS": "vielleicht"})
