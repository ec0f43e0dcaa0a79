"""The publication checklist and its rule: what a record needs before it is public.

The checklist (`checklist`): licence, contact, update frequency, an owner, and a map or table
preview (the hub holds a version of the data) whose current version passed validation — for a
metadata-only record the access note instead of the preview, and for data held by another
portal (no version here, registered distributions that link to it: a dataset pushed by another
county, `hub publish --target`) a link to the data instead, since that portal answers for its
preview and validation.

The rule (`require_ready`), applied by the one catalog write path every face uses
(`hub.catalog.editing.Editing`: the workspace, the CKAN API, `hub catalog add/edit/publish`,
the Python API) and by the operator's bulk loads (`hub.catalog.load.sync`):

- a write that makes a record public — a new public record, or one that was a draft, internal
  or restricted, or withdrawn — needs every item of the checklist;
- a write that keeps a record public may not break an item it passed before (so a published
  record cannot lose its licence or contact through an edit), while an item that already
  failed — a later version of its data with quarantined rows — does not block fixing the
  record's metadata.

The operator's bulk loads (`hub catalog load` of catalog/datasets/*.yaml, `hub catalog import`
of an inventory) write what the files say — the files are the operator's reviewed decision,
run with the server's own rights — and name every record they make or keep public that the
rule would refuse from any other face (`hub.catalog.load.Outcome.unready`), so the operator
completes it or makes it internal. Harvested records (`hub.api.ckan.harvest`) are another
portal's published records and keep that portal's decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.catalog.model import Record
from hub.errors import HubError, StoreError
from hub.store.versions import Store, Version


class NotReady(HubError):
    """The checklist does not pass: the record may not be public (yet) (HTTP 409)."""

    http_status = 409

    def __init__(self, name: str, missing: list[Item]):
        self.missing = missing
        super().__init__(f"{name} cannot be public yet: "
                         + "; ".join(f"{item.label}: {item.hint}" for item in missing))


@dataclass(frozen=True)
class Item:
    """One point of the checklist: what it asks for, whether the record has it, and what to
    do otherwise (for the CLI and the APIs; the workspace words each `key` in the page's
    language)."""

    key: str
    label: str
    ok: bool
    hint: str


def stage(record: Record) -> str:
    """Where `record` is in the workflow draft → internal → public (or withdrawn)."""
    if record.state == "deleted":
        return "withdrawn"
    if record.state == "draft":
        return "draft"
    return "public" if record.access == "public" else "internal"


def current_version(store: Store, record: Record) -> Version | None:
    """The current version of the data the hub holds under the record's name, if any."""
    if not record.data_held:
        return None
    try:
        return store.current(record.name)
    except StoreError:
        return None


def checklist(record: Record, version: Version | None) -> list[Item]:
    """What publishing `record` to `public` needs; `version`: the current version of its
    data (None: the hub holds none)."""
    contact = record.contact
    items = [
        Item("license", "licence", bool(record.license), "choose a licence"),
        Item("contact", "contact", bool(contact.get("email") or contact.get("url")),
             "give an e-mail address or web page for questions"),
        Item("frequency", "update frequency", record.frequency not in ("", "UNKNOWN"),
             "say how often the dataset is updated"),
        Item("owner", "owner", bool(record.publisher and contact.get("name")),
             "name the unit or person who keeps the dataset (the contact's name)"),
    ]
    if not record.data_held:
        items.append(Item("access_note", "access note", bool(record.access_note),
                          "say who holds the data and how to get it"))
        return items
    if version is None and linked_elsewhere(record):
        items.append(Item("link", "link to the data", True,
                          "link the data where it is held (a download or service address)"))
        return items
    items.append(Item("preview", "map or table preview", version is not None,
                      "bring the data into the hub (a version with a preview)"))
    valid = version is not None and not version.broken and version.quarantined == 0 and not (
        version.report or {}).get("violation_count")
    items.append(Item("validation", "current version passes validation", valid,
                      "fix the problems of the validation report and run again"))
    return items


def linked_elsewhere(record: Record) -> bool:
    """Whether `record`'s registered distributions link to its data somewhere else (none is a
    file uploaded to this hub)."""
    links = [d for d in record.distributions if d.url or d.upload]
    return bool(links) and not any(d.upload for d in links)


def missing(store: Store, old: Record | None, new: Record) -> list[Item]:
    """The items that keep the write of `new` (in place of `old`, None: a new record) from
    being allowed (see the module's docstring); empty: it may be written."""
    if stage(new) != "public":
        return []
    failing = [item for item in checklist(new, current_version(store, new)) if not item.ok]
    if not failing or old is None or stage(old) != "public":
        return failing
    before = {item.key: item.ok for item in checklist(old, current_version(store, old))}
    return [item for item in failing if before.get(item.key, True)]


def require_ready(store: Store, old: Record | None, new: Record) -> None:
    """Raise `NotReady` naming what is missing if writing `new` in place of `old` breaks the
    rule."""
    if found := missing(store, old, new):
        raise NotReady(new.name, found)
