"""Who may see and change what: the hub's one access rule, used by every face.

Seeing. A catalog record is visible to a viewer by its own level (`Viewer.may_see`). Data the
hub holds (a dataset of the store, made by a pipeline that names its owning `organization` and
an `access` level) is visible by the access in force (`access_in_force`): the stricter of the
pipeline's level and its record's; restricted data is seen always by the pipeline's owner and
by the organisations the record names if the owner publishes the record. `DataAccess` applies
this to the store for the web server, the OGC API, the downloads and the JSON API; when the
catalog cannot be read it answers `Unavailable` (503), never the pipeline's level alone — that
applies only in the explicit no-catalog mode (`HUB_CATALOG=none`).

Roles (`ROLES`, `Viewer.of_role`): `viewer` staff see internal data and what is restricted to
their organisation; `editor` staff also prepare (edit) their organisation's records;
`publisher` staff edit them too and approve their publication (`Viewer.may_publish`); `admin`
may see and do everything. A user who is not active is anonymous.

Changing. Writers are editors and publishers (their organisation's records) and admins
(everything). Because a
record governs who sees the data held under its name, only editors of the owning organisation
(or admins) may bind a record to held data — create one under its name, rename one onto or away
from it, re-create one after a soft delete — or change such a record's access, organisations or
publisher; so a record can never show held data to anyone its owner did not allow. Only admins
choose record ids and manage organisations. Denials raise `Forbidden` (403).

Publishing (`hub.catalog.publication`: draft → internal → public). Editors of the organisation
request it (`check_request`); its publishers and admins approve it (`check_publish`), and so do
its editors where the district lets editors publish directly (`editors_publish`). Withdrawing
narrows who sees a dataset, so the organisation's editors may do it (`check_withdraw`), as they
may delete its records.
`hub.catalog.editing` calls these checks on every write (the CKAN API, `hub catalog add/edit`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.db.database import DatabaseError
from hub.errors import Forbidden, HubError, Unavailable

if TYPE_CHECKING:
    from hub.catalog.index import Catalog
    from hub.catalog.model import Record
    from hub.catalog.vocab import Vocabularies
    from hub.store.versions import Dataset

log = logging.getLogger("hub.access")
LEVELS = ("public", "internal", "restricted")  # from open to closed
ROLES = ("viewer", "editor", "publisher", "admin")  # from least to most


@dataclass(frozen=True)
class Viewer:
    """Who is asking: anonymous (public only), staff (internal too), and their organisation.

    `Viewer.of_role` makes one from a user's role (see the module's docstring).
    """

    staff: bool = False
    organization: str | None = None
    admin: bool = False
    editor: bool = False
    user: str | None = None
    publisher: bool = False

    @classmethod
    def of_role(cls, role: str, organization: str, user: str, active: bool = True) -> Viewer:
        """The viewer a user of `role` in `organization` is (anonymous unless active; an
        unknown role sees only what is public: fail closed)."""
        if not active or role not in ROLES:
            return ANONYMOUS
        return cls(staff=True, organization=organization, user=user, admin=role == "admin",
                   editor=role in ("editor", "publisher", "admin"),
                   publisher=role in ("publisher", "admin"))

    def may_see(self, access: str, restricted_to: list[str]) -> bool:
        if access == "public" or self.admin:
            return True
        if access == "internal":
            return self.staff
        return self.staff and self.organization in restricted_to

    def may_edit(self, publisher: str) -> bool:
        """Create, change or delete records of `publisher`."""
        return self.admin or (self.editor and bool(publisher) and publisher == self.organization)

    def may_own(self, owner: str) -> bool:
        """Act for the organisation that owns held data (its pipeline's `organization`)."""
        return self.may_edit(owner)

    def may_follow(self, organization: str) -> bool:
        """See the jobs and the to-do list of `organization`: its members and admins."""
        return self.admin or (self.staff and bool(organization)
                              and organization == self.organization)

    def may_publish(self, publisher: str) -> bool:
        """Approve the publication of records of `publisher`."""
        return self.admin or (self.publisher and bool(publisher)
                              and publisher == self.organization)

    def may_see_usage(self, publisher: str, visible: bool) -> bool:
        """See the usage counts (hub.usage) of a dataset of `publisher` that the viewer sees
        (`visible`, e.g. `Record.visible_to`): its organisation's editors and publishers, and
        admins — never who may not see the dataset."""
        return visible and self.may_edit(publisher)

    @property
    def may_audit(self) -> bool:
        """Read the audit trail (hub.audit) and the district's quarterly report: admins."""
        return self.admin


ANONYMOUS = Viewer()
ADMIN = Viewer(staff=True, admin=True, editor=True, user="hub")  # the hub itself: harvests
OPERATOR = Viewer(staff=True, admin=True, editor=True, user="cli")  # `hub` commands


def _rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS) - 1  # unknown: closed


def access_in_force(data_level: str, record: tuple[str, list[str]] | None,
                    owner: str = "", publisher: str = "") -> tuple[str, list[str]]:
    """The access level (and organisations) of data the hub holds: the stricter of its
    pipeline's level and its catalog record's, so neither can open what the other closes.
    Restricted data is seen by `owner`, the pipeline's organisation, which always sees its own
    data, and by the organisations the record names — when the record's `publisher` is that
    owner: a record of another organisation (say, registered under the name before the data
    arrived) can narrow who sees the data, never widen it."""
    level = max(data_level, record[0] if record else data_level, key=_rank)
    if level not in LEVELS:
        level = "restricted"
    if level != "restricted":
        return level, []
    named = record is not None and record[0] == "restricted" and (
        not owner or publisher == owner)
    orgs = list(record[1]) if named else []
    if owner and owner not in orgs:
        orgs.append(owner)
    return level, orgs


# -- held data ------------------------------------------------------------------------------

CatalogSource = Callable[[], "tuple[Catalog, Vocabularies]"]


class DataAccess:
    """The access in force for each dataset of the store, for every surface that serves data.

    `catalog` opens (or returns the opened) catalog and its vocabularies and raises `HubError`
    when it cannot; `None` is the explicit no-catalog mode, where the pipeline's level alone
    applies (and restricted data is seen by admins only, as there are no accounts).
    """

    def __init__(self, catalog: CatalogSource | None):
        self._catalog = catalog

    def of(self, dataset: Dataset | _Held) -> tuple[str, list[str]]:
        """The level in force and the organisations that see restricted data (raises
        `Unavailable` when the catalog cannot be read: fail closed, never the pipeline's
        access alone)."""
        if self._catalog is None:
            return access_in_force(dataset.access, None)
        try:
            catalog, vocab = self._catalog()
            found = catalog.access(dataset.name)
        except (HubError, DatabaseError) as exc:
            log.error("access to %r refused: the catalog cannot be read: %s", dataset.name, exc)
            raise Unavailable("the catalog cannot be read now, so no data is served until it "
                              "can (the server's log names the problem)") from None
        record, publisher = (found[:2], found[2]) if found else (None, "")
        return access_in_force(dataset.access, record, owner_id(dataset.organization, vocab),
                               publisher)

    def state(self) -> int:
        """Changes whenever `of` may answer differently for the same dataset (a committed
        catalog write); faces may keep its answers while it holds. Raises `Unavailable` like
        `of` when the catalog cannot be read."""
        if self._catalog is None:
            return 0
        try:
            return self._catalog()[0].state()
        except (HubError, DatabaseError) as exc:
            log.error("access refused: the catalog cannot be read: %s", exc)
            raise Unavailable("the catalog cannot be read now, so no data is served until it "
                              "can (the server's log names the problem)") from None

    def may_see(self, viewer: Viewer, dataset: Dataset) -> bool:
        return viewer.may_see(*self.of(dataset))

    def organization_id(self, organization: str) -> str:
        """A pipeline's `organization` (id or name) as the organisation id levels name."""
        if self._catalog is None:
            return organization
        try:
            _, vocab = self._catalog()
        except (HubError, DatabaseError):
            raise Unavailable("the catalog cannot be read now") from None
        return owner_id(organization, vocab)

    def of_pipeline(self, name: str, access: str, organization: str) -> tuple[str, list[str]]:
        """The level in force of data a pipeline makes (or would make) under `name`."""
        return self.of(_Held(name, access, organization))


@dataclass(frozen=True)
class _Held:
    """What `DataAccess.of` reads of a dataset, for data not (yet) in the store."""

    name: str
    access: str
    organization: str


def owner_id(organization: str, vocab: Vocabularies, registered: bool = True) -> str:
    """The organisation id of a pipeline's `organization` (given as id or name; names of
    organisations registered at run time only with `registered`)."""
    org = vocab.organization(organization, registered) if organization else None
    return org.id if org is not None else organization


# -- derived datasets ------------------------------------------------------------------------

@dataclass(frozen=True)
class DerivedInput:
    """A dataset a derived pipeline reads: its owner, its level in force, the derived
    datasets its owner lets be public although it is not (its pipeline's
    `public_derivatives`) and those an admin allowed (`hub.ingest.allowances`)."""

    name: str
    owner: str
    level: tuple[str, list[str]]
    public_derivatives: tuple[str, ...] = ()
    admin_allowed: tuple[str, ...] = ()

    def allows_public(self, derived: str) -> bool:
        """May `derived` be a public aggregate of this input: its owner or an admin said so."""
        return derived in self.public_derivatives or derived in self.admin_allowed


def check_allow_aggregate(viewer: Viewer) -> None:
    """Allowing a public aggregate of data its owner did not open (`hub derived allow`) is an
    admin's decision."""
    if not viewer.admin:
        raise Forbidden("only admins allow a public aggregate of non-public data (otherwise "
                        "the input's owner lists it in `public_derivatives`)")


def check_derivation(name: str, organization: str, level: tuple[str, list[str]],
                     aggregate: str | None, inputs: list[DerivedInput]) -> None:
    """May the derived dataset `name` of `organization`, seen at `level`, be made from
    `inputs`? Raises `Forbidden` naming the input and the rule.

    1. A derived pipeline reads only what its organisation may see: each input is judged as
       for an editor of that organisation (`Viewer.may_see`).
    2. Its result is seen by no one who may not see every input (so a derivation is never a
       way around an access rule) — except a public aggregate: a public result of a non-public
       input needs both the pipeline's explicit `aggregate: public` and the consent of the
       input's owner (the input's pipeline lists the derived dataset in
       `public_derivatives`) or of an admin (`hub derived allow INPUT DERIVED`)."""
    reader = Viewer(staff=True, organization=organization, editor=True,
                    user=f"pipeline {name}")
    for source in inputs:
        if not reader.may_see(*source.level):
            raise Forbidden(
                f"derived dataset {name!r} may not read {source.name!r}: it is "
                f"{_described(source.level)}, and the organization {organization!r} of the "
                "derived pipeline may not see it (a derived pipeline reads only datasets its "
                "organization may see)")
        if _within(level, source.level):
            continue
        if level[0] != "public":
            raise Forbidden(
                f"derived dataset {name!r} would be {_described(level)} although its input "
                f"{source.name!r} is {_described(source.level)}: a derived dataset may not be "
                "seen by more than its inputs (only a public aggregate can be allowed, with "
                "`aggregate: public` and the input owner's `public_derivatives`)")
        if aggregate != "public":
            raise Forbidden(
                f"derived dataset {name!r} is public but its input {source.name!r} is "
                f"{_described(source.level)}: a public result of non-public data must say so "
                "explicitly with `aggregate: public` in its pipeline")
        if not source.allows_public(name):
            raise Forbidden(
                f"derived dataset {name!r} is a public aggregate of {source.name!r}, which is "
                f"{_described(source.level)}, but the owner of {source.name!r} "
                f"({source.owner!r}) does not allow it: the pipeline of {source.name!r} must "
                f"list {name!r} in `public_derivatives`, or an admin allow it (`hub derived "
                f"allow {source.name} {name}`)")


def _within(level: tuple[str, list[str]], bound: tuple[str, list[str]]) -> bool:
    """Is everyone who sees data at `level` also allowed to see data at `bound`?"""
    if _rank(level[0]) != _rank(bound[0]):
        return _rank(level[0]) > _rank(bound[0])
    return level[0] != "restricted" or set(level[1]) <= set(bound[1])


def _described(level: tuple[str, list[str]]) -> str:
    if level[0] == "restricted":
        return f"restricted to {', '.join(sorted(level[1])) or 'no organization'}"
    return level[0]


# -- changing records ------------------------------------------------------------------------

def require_writer(viewer: Viewer) -> None:
    if not (viewer.editor or viewer.admin):
        raise Forbidden("writing needs an API token of an editor or admin")


def require_editor_of(viewer: Viewer, publisher: str) -> None:
    if not viewer.may_edit(publisher):
        raise Forbidden(f"user {viewer.user!r} may not edit datasets of the organization "
                        f"{publisher!r}")


def require_owner(viewer: Viewer, name: str, owner: str, what: str) -> None:
    """(The message does not name the owner: who may not see the data learns no more than
    that the name is taken.)"""
    if not viewer.may_own(owner):
        raise Forbidden(f"the hub holds data under the name {name!r}: only editors of the "
                        f"organization that owns it or an admin may {what}")


def may_choose_id(viewer: Viewer) -> bool:
    """Only admins give a new record its id (others get a new random one, as in CKAN)."""
    return viewer.admin


def check_create(viewer: Viewer, record: Record, owner: str | None) -> None:
    """May `viewer` register `record`? `owner`: the owner of data held under its name."""
    require_writer(viewer)
    require_editor_of(viewer, record.publisher)
    if owner is not None:
        require_owner(viewer, record.name, owner, "register a record under that name")


def check_update(viewer: Viewer, old: Record, new: Record, old_owner: str | None,
                 new_owner: str | None) -> None:
    """May `viewer` replace `old` by `new`? The owners are those of data held under the old
    and the new name (None: no data held)."""
    require_writer(viewer)
    require_editor_of(viewer, old.publisher)
    require_editor_of(viewer, new.publisher)
    if new.name != old.name:
        if new_owner is not None:
            require_owner(viewer, new.name, new_owner, "rename a record onto that name")
        if old_owner is not None:
            require_owner(viewer, old.name, old_owner, "rename its record")
    if old_owner is not None and (old.access, sorted(old.restricted_to), old.publisher) != (
            new.access, sorted(new.restricted_to), new.publisher):
        require_owner(viewer, old.name, old_owner,
                      "change who may see it (access, restricted_to, publisher)")


def check_delete(viewer: Viewer, record: Record) -> None:
    """A (soft) delete keeps the record and so its access; its publisher's editors may."""
    require_writer(viewer)
    require_editor_of(viewer, record.publisher)


def check_request(viewer: Viewer, record: Record) -> None:
    """May `viewer` ask for `record` to be published (its organisation's editors)?"""
    require_writer(viewer)
    require_editor_of(viewer, record.publisher)


def check_publish(viewer: Viewer, record: Record, editors_publish: bool = False) -> None:
    """May `viewer` publish `record` (approve a request, or publish directly)? Publishers of
    its organisation and admins; its editors too when `editors_publish`."""
    check_request(viewer, record)
    if not (viewer.may_publish(record.publisher) or editors_publish):
        raise Forbidden(f"user {viewer.user!r} may not publish datasets of the organization "
                        f"{record.publisher!r}: a publisher of the organization approves "
                        "the request")


def check_withdraw(viewer: Viewer, record: Record) -> None:
    """May `viewer` withdraw `record` (its organisation's editors, like deleting)?"""
    check_delete(viewer, record)


def check_manage_users(viewer: Viewer) -> None:
    """Users, their roles, passwords and second factors are managed by admins."""
    if not viewer.admin:
        raise Forbidden("only admins manage users")


def check_manage_organizations(viewer: Viewer) -> None:
    if not viewer.admin:
        raise Forbidden("only admins create organizations")
