"""What `hub.open` raises: one small hierarchy, the same locally and against a URL.

Every error is a `ClientError` (itself a `hub.errors.HubError`) with a message naming what was
wrong — the path, the URL, the dataset, the version, the filter. Raw HTTP, SQL or file errors
never reach the caller.

    ClientError
    ├── NotAHub          the path or URL is not a hub (or cannot be reached)
    ├── NotFound         unknown dataset, version or record — or one the caller may not see
    │   └── VersionRemoved   the version existed but the retention policy removed its data
    ├── InvalidQuery     SQL the hub cannot run, search parameters it does not understand
    │   └── InvalidFilter    a bbox or CQL2 filter that is not valid for the dataset
    ├── InvalidRecord    a catalog record (or pipeline) that breaks the rules, a name in use
    └── NotAllowed       the caller's role does not allow it (or the hub is opened read-only)
"""

from __future__ import annotations

from hub.errors import HubError


class ClientError(HubError):
    """Base class of everything `hub.open` and the object it returns raise."""


class NotAHub(ClientError):
    """The path is not a hub's project folder or store, or the URL does not answer as a hub."""


class NotFound(ClientError, LookupError):
    """No such dataset, version or record — the same error when it exists but the caller may
    not see it, so the error reveals nothing."""


class VersionRemoved(NotFound):
    """The version existed, but the retention policy has removed its data."""


class InvalidQuery(ClientError, ValueError):
    """SQL that cannot run (syntax, unknown column or table, type error)."""


class InvalidFilter(InvalidQuery):
    """A bbox or CQL2 filter that is not valid for the dataset (the message says where)."""


class InvalidRecord(ClientError, ValueError):
    """A record to register or change breaks the catalog's rules (the message names the
    fields), its name is taken, or it would be public without passing the publication
    checklist; a pipeline definition is invalid."""


class NotAllowed(ClientError, PermissionError):
    """The caller may not do this: a role is missing, the token is refused, or the hub was
    opened over HTTP (read-only)."""


__all__ = ["ClientError", "InvalidFilter", "InvalidQuery", "InvalidRecord", "NotAHub",
           "NotAllowed", "NotFound", "VersionRemoved"]
