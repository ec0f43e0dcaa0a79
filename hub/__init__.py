"""District data hub: ingest, store, catalog and publish the open data of a German district.

From Python: `hub.open(path_or_url)` (see `hub.client`); its errors are `hub.ClientError` and
its subclasses. Both are imported on first use, so `import hub` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_CLIENT = ("open", "ClientError", "NotAHub", "NotFound", "VersionRemoved", "InvalidQuery",
           "InvalidFilter", "InvalidRecord", "NotAllowed")


def __getattr__(name: str) -> Any:
    if name in _CLIENT:
        import hub.client

        return getattr(hub.client, name)
    raise AttributeError(f"module 'hub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_CLIENT])
