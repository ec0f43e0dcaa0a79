"""The dataset form of the workspace (register and edit): the posted fields as the record dict
`hub.catalog.model.validate` takes, a record as the form's fields, and the core's errors as
messages next to the fields they concern.

Messages are keys that templates/workspace/messages.html words in the page's language. The form
shows a record's common fields; editing keeps the fields it does not show
(distributions, extent, extras, …) as they are. Who may choose the organisation is the
viewer's: an admin any, everyone else their own (`hub.access` decides again on saving).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.access import Viewer
from hub.catalog.editing import editable
from hub.catalog.model import Record
from hub.catalog.vocab import Vocabularies

TEXT_FIELDS = ("name", "title", "description", "publisher", "contact_name", "contact_email",
               "contact_url", "license", "access", "frequency", "keywords", "access_note")
LIMITS = {"description": 20000, "access_note": 4000, "keywords": 2000}
LIMIT = 500  # characters of any other field

# field of `validate`'s errors -> (field of the form, message if required, otherwise); the
# messages are keys of templates/workspace/messages.html, which words them (translated)
MESSAGES: dict[str, tuple[str, str, str]] = {
    "name": ("name", "name.required", "name.invalid"),
    "title": ("title", "title.required", ""),
    "description": ("description", "description.required", ""),
    "publisher": ("publisher", "publisher.required", "publisher.invalid"),
    "license": ("license", "license.required", "license.invalid"),
    "frequency": ("frequency", "", "frequency.invalid"),
    "access": ("access", "", "access.invalid"),
    "themes": ("themes", "", "themes.invalid"),
    "keywords": ("keywords", "", "keywords.invalid"),
    "contact.email": ("contact_email", "", "contact_email.invalid"),
    "contact.url": ("contact_url", "", "contact_url.invalid"),
    "access_note": ("access_note", "access_note.required", "access_note.required"),
}
Message = tuple[str, dict[str, Any]]  # a key of messages.html and its placeholders


@dataclass
class FormState:
    """What the form shows: the values (as typed), the errors by field, and a message for
    the whole form (`Message`s)."""

    values: dict[str, Any]
    errors: dict[str, Message] = field(default_factory=dict)
    message: Message | None = None


def values_of(record: Record) -> dict[str, Any]:
    """A record as the form's fields."""
    return {"name": record.name, "title": record.title, "description": record.description,
            "publisher": record.publisher, "contact_name": record.contact.get("name", ""),
            "contact_email": record.contact.get("email", ""),
            "contact_url": record.contact.get("url", ""), "license": record.license,
            "access": record.access, "frequency": record.frequency,
            "keywords": ", ".join(record.keywords), "access_note": record.access_note,
            "themes": list(record.themes), "metadata_only": not record.data_held}


def blank(viewer: Viewer, vocab: Vocabularies) -> dict[str, Any]:
    """The register form's first values."""
    return {"publisher": "" if viewer.admin else viewer.organization or "",
            "license": "dl-by-de/2.0" if vocab.licenses.find("dl-by-de/2.0") else "",
            "access": "public", "frequency": "", "themes": [], "metadata_only": False}


def values_posted(fields: dict[str, str], vocab: Vocabularies) -> dict[str, Any]:
    """The posted fields as the form shows them again (as typed)."""
    values: dict[str, Any] = {k: fields.get(k, "").strip() for k in TEXT_FIELDS}
    values["themes"] = [t for t in vocab.themes.codes() if fields.get(f"theme_{t}")]
    values["metadata_only"] = bool(fields.get("metadata_only"))
    return values


def too_long(values: dict[str, Any]) -> dict[str, Message]:
    return {k: ("too_long", {"num": LIMITS.get(k, LIMIT)}) for k in TEXT_FIELDS
            if len(values.get(k) or "") > LIMITS.get(k, LIMIT)}


def record_data(values: dict[str, Any], viewer: Viewer, old: Record | None) -> dict[str, Any]:
    """The record dict of the form's values (`old`'s other fields kept when editing)."""
    data = editable(old) if old is not None else {"origin": "web", "state": "draft"}
    contact = {k: values[f"contact_{k}"] for k in ("name", "email", "url")
               if values.get(f"contact_{k}")}
    if old is not None:
        contact = {**{k: v for k, v in old.contact.items() if k not in ("name", "email", "url")},
                   **contact}
    publisher = values["publisher"] if viewer.admin else (
        old.publisher if old is not None else viewer.organization or "")
    data.update(name=values["name"], title=values["title"],
                description=values["description"], publisher=publisher, contact=contact,
                license=values["license"], access=values["access"] or "public",
                frequency=values["frequency"] or "UNKNOWN",
                keywords=[k.strip() for k in values["keywords"].split(",") if k.strip()],
                themes=values["themes"], data_held=not values["metadata_only"],
                access_note=values["access_note"])
    if data["access"] == "restricted":  # the form restricts to the own organisation
        data["restricted_to"] = (old.restricted_to if old is not None and old.restricted_to
                                 else [publisher])
    else:
        data.pop("restricted_to", None)
    return data


def errors_of(problems: dict[str, str]) -> tuple[dict[str, Message], Message | None]:
    """`RecordInvalid.errors` as messages by form field, and one for the whole form naming
    what no field of the form shows."""
    shown: dict[str, Message] = {}
    rest = []
    for key, problem in problems.items():
        found = MESSAGES.get(key)
        message = found and (found[1] if problem == "is required" else found[2])
        if found and message:
            shown[found[0]] = (message, {})
        else:
            rest.append(f"{key}: {problem}")
    return shown, (("invalid", {"detail": "; ".join(rest)}) if rest else None)
