"""The action layer: errors as CKAN reports them, the action registry, what a call carries.

Every action is one function `(call, data_dict) -> result`, registered with `@action`; read
actions (`read=True`) also answer GET, as CKAN's `side_effect_free` ones do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from hub.access import Viewer
from hub.accounts import Accounts
from hub.api.ckan.packages import Site
from hub.catalog.index import Catalog
from hub.catalog.uploads import Uploads


class ActionError(Exception):
    status = 500
    type = "Internal Server Error"

    def __init__(self, message: str = ""):
        self.message = message
        super().__init__(message)

    def error(self) -> dict[str, Any]:
        return {"__type": self.type, "message": self.message}


class NotFound(ActionError):
    status, type = 404, "Not Found Error"

    def __init__(self, detail: str = ""):
        super().__init__(f"Not found: {detail}" if detail else "Not found")


class NotAuthorized(ActionError):
    status, type = 403, "Authorization Error"

    def __init__(self, detail: str = ""):
        super().__init__(f"Access denied: {detail}" if detail else "Access denied")


class ValidationError(ActionError):
    """Field errors, each a list of messages (CKAN puts them beside `__type`)."""

    status, type = 409, "Validation Error"

    def __init__(self, errors: dict[str, list[Any]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))

    def error(self) -> dict[str, Any]:
        return {"__type": self.type, **self.errors}


class SearchQueryInvalid(ActionError):
    status, type = 400, "Search Query Error"

    def __init__(self, detail: str):
        super().__init__(f"Search Query is invalid: {detail}")


@dataclass(frozen=True)
class Upload:
    """A file sent with a multipart request."""

    filename: str
    stream: BinaryIO


@dataclass
class Call:
    """One API call: the hub's services, who is calling, the site, uploaded files."""

    catalog: Catalog
    accounts: Accounts
    uploads: Uploads
    site: Site
    viewer: Viewer
    files: dict[str, Upload] = field(default_factory=dict)

    @property
    def vocab(self):
        return self.site.vocab


Action = Callable[[Call, dict[str, Any]], Any]
ACTIONS: dict[str, tuple[Action, bool]] = {}


def action(read: bool = False) -> Callable[[Action], Action]:
    def register(func: Action) -> Action:
        ACTIONS[func.__name__] = (func, read)
        return func
    return register


# -- parameters ---------------------------------------------------------------------------

def integer(data: dict[str, Any], key: str, default: int, maximum: int | None = None) -> int:
    """A natural number parameter; too large ones are capped (as CKAN caps `rows`)."""
    value = data.get(key)
    if value in (None, ""):
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError({key: ["Invalid integer"]}) from None
    if number < 0:
        raise ValidationError({key: ["Must be a natural number"]})
    return min(number, maximum) if maximum is not None else number


def flag(data: dict[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key)
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on", "t", "y"):
        return True
    if text in ("false", "0", "no", "off", "f", "n"):
        return False
    raise ValidationError({key: [f"{value!r} is not a boolean (use true or false)"]})


def required(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value in (None, "") or (isinstance(value, list | dict) and not value):
        raise ValidationError({key: ["Missing value"]})
    if not isinstance(value, str | int | float):
        raise ValidationError({key: ["must be text"]})
    return str(value).strip()
