"""E-mail reminders to the owner organisation's contact (its e-mail in the catalog's
organisations) when a dataset becomes stale (hub.catalog.quality) or a new file is due (the
to-do list, hub.jobs.schedule) — only when an SMTP server is configured, and at most once per
dataset, kind and period (table `reminders`: the period is the day the dataset became stale,
or the day the file fell due).

Configuration, only from the environment (no mail without HUB_SMTP_HOST):
    HUB_SMTP_HOST, HUB_SMTP_PORT (default 587), HUB_SMTP_FROM (the sender),
    HUB_SMTP_USER and HUB_SMTP_PASSWORD (sign in, optional),
    HUB_SMTP_STARTTLS (default: on; "0" for a server on the same host without TLS).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import delete

from hub.access import ADMIN
from hub.catalog.index import Catalog
from hub.catalog.quality import assess
from hub.catalog.vocab import Vocabularies
from hub.db.schema import reminders, todos
from hub.errors import HubError
from hub.jobs.queue import stamp

log = logging.getLogger("hub.worker")
TIMEOUT_S = 20


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    sender: str
    user: str = ""
    password: str = ""
    starttls: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Smtp | None:
        """The configured server; None when HUB_SMTP_HOST is not set (no mail)."""
        host = env.get("HUB_SMTP_HOST", "").strip()
        if not host:
            return None
        port = env.get("HUB_SMTP_PORT", "587").strip()
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise HubError(f"HUB_SMTP_PORT {port!r}: expected a port number (e.g. 587)")
        sender = env.get("HUB_SMTP_FROM", "").strip()
        if "@" not in sender:
            raise HubError("HUB_SMTP_FROM: set the sender's address (e.g. "
                           "opendata@landkreis.example) when HUB_SMTP_HOST is set")
        starttls = env.get("HUB_SMTP_STARTTLS", "1").strip().lower()
        if starttls not in ("0", "1", "yes", "no", "true", "false"):
            raise HubError(f"HUB_SMTP_STARTTLS {starttls!r}: expected 1 or 0")
        return cls(host, int(port), sender, env.get("HUB_SMTP_USER", ""),
                   env.get("HUB_SMTP_PASSWORD", ""), starttls in ("1", "yes", "true"))

    def send(self, message: EmailMessage) -> None:
        message["From"] = self.sender
        with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S) as server:
            if self.starttls:
                server.starttls(context=ssl.create_default_context())
            if self.user:
                server.login(self.user, self.password)
            server.send_message(message)


@dataclass(frozen=True)
class Due:
    """A reminder that should go out (unless it went out for this period already)."""

    dataset: str
    kind: str       # stale, file_due
    period: str     # the day it is about
    recipient: str
    subject: str
    text: str


def due_reminders(catalog: Catalog, vocab: Vocabularies,
                  today: dt.date | None = None) -> list[Due]:
    """What the owners should be told today: files that are due, and stale datasets (those
    without a due file: its reminder says so)."""
    found: list[Due] = []
    with catalog.store.db.connection() as conn:
        open_items = conn.execute(todos.select().where(todos.c.resolved.is_(None))).all()
    for item in open_items:
        org = vocab.organization(item.organization)
        if org is None or not org.email:
            continue
        found.append(Due(item.dataset, item.kind, item.since[:10], org.email,
                         f"Neue Datei fällig: {item.dataset}",
                         f"Guten Tag,\n\nfür den Datensatz {item.dataset} ist eine neue Datei "
                         f"fällig ({item.detail}).\n\nBitte laden Sie sie im Arbeitsbereich "
                         "hoch (/arbeitsbereich/aufgaben).\n"))
    due_files = {item.dataset for item in open_items}
    for name in catalog.names():
        if name in due_files:
            continue
        record = catalog.get(name, ADMIN)
        if record is None:
            continue
        quality = assess(record, vocab, today)
        org = vocab.organization(record.publisher)
        if not quality.stale or org is None or not org.email:
            continue
        since = (dt.date.fromisoformat(record.last_modified[:10])
                 + dt.timedelta(days=quality.allowed_days or 0)) if record.last_modified \
            else None
        found.append(Due(record.name, "stale", since.isoformat() if since else "nie",
                         org.email, f"Datensatz veraltet: {record.title}",
                         f"Guten Tag,\n\nder Datensatz „{record.title}“ ({record.name}) ist "
                         "veraltet: "
                         + (f"seine letzte Änderung ist {quality.age_days} Tage her, "
                            f"erlaubt sind {quality.allowed_days}."
                            if quality.age_days is not None else "er wurde nie aktualisiert.")
                         + "\n\nBitte bringen Sie neue Daten in den Arbeitsbereich "
                         "(/arbeitsbereich/aufgaben).\n"))
    return found


def send_reminders(catalog: Catalog, vocab: Vocabularies, smtp: Smtp | None,
                   today: dt.date | None = None) -> list[Due]:
    """Send each due reminder not sent before for its period; returns those sent. Nothing
    without an SMTP server. A reminder is noted before it is sent (two workers never send
    it twice) and the note is taken back if sending fails (tried again next time)."""
    if smtp is None:
        return []
    db, sent = catalog.store.db, []
    for due in due_reminders(catalog, vocab, today):
        key = {"dataset": due.dataset, "kind": due.kind, "period": due.period}
        with db.write() as conn:
            noted = conn.execute(db.insert(reminders).values(
                **key, recipient=due.recipient, sent=stamp()).on_conflict_do_nothing()).rowcount
        if not noted:
            continue
        message = EmailMessage()
        message["To"], message["Subject"] = due.recipient, due.subject
        message.set_content(due.text)
        try:
            smtp.send(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("reminder for %s to %s not sent: %s", due.dataset, due.recipient, exc)
            with db.write() as conn:
                conn.execute(delete(reminders).where(*(reminders.c[k] == v
                                                       for k, v in key.items())))
            continue
        sent.append(due)
    return sent
