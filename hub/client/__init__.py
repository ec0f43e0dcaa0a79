"""The hub from Python: `hub.open(path_or_url)` returns one object for everything.

    >>> import hub
    >>> h = hub.open(HUB)  # a project folder ("." after `make demo`) or a hub's URL
    >>> "pflege" in h.names()
    True
    >>> hospize = h.read("pflege", filter="art = 'Hospiz'")  # a GeoDataFrame in WGS 84
    >>> sorted(set(hospize["art"]))
    ['Hospiz']
    >>> h.sql("SELECT count(*) FROM pflege WHERE plaetze > 0").fetchone()[0] > 0
    True
    >>> h.read("nichts-da")
    Traceback (most recent call last):
    ...
    hub.client.errors.NotFound: no dataset named 'nichts-da'

A local project folder is read (and, with the right role, changed) through the same core
functions as the `hub` commands and the web APIs; a URL is read-only, through the hub's public
APIs. Who is asking decides what is seen: locally the operator (everything) unless `as_user`
or `token` name a user; remotely exactly what `token` may see (anonymous: the public data).
A dataset the caller may not see raises `NotFound`, exactly like one that does not exist.

Reading (`Hub.read`, `Hub.arrow`, `Hub.relation`) takes a version number (default: the
current one), a `bbox` (minlon, minlat, maxlon, maxlat) and a CQL2 text `filter`; `Hub.sql`
runs DuckDB SQL (spatial functions loaded) over the datasets, a given version as `"name@N"`.
`Hub.explore` and `Hub.map` make folium maps that render without internet access.
"""

from __future__ import annotations

from pathlib import Path

from hub.client.base import DatasetInfo, Hub, VersionInfo
from hub.client.errors import (
    ClientError,
    InvalidFilter,
    InvalidQuery,
    InvalidRecord,
    NotAHub,
    NotAllowed,
    NotFound,
    VersionRemoved,
)


def open(path_or_url: str | Path, token: str | None = None,
         as_user: str | None = None) -> Hub:
    """Open a hub: a local project folder (or its store folder), or a hub's URL.

    `token`: an API token (remotely sent as the APIs take it; locally it names its user).
    `as_user`: locally, see and act exactly as that user (by login name); remotely the token
    decides, so `as_user` is refused there. Raises `NotAHub` for a path or URL that is not a
    hub.
    """
    text = str(path_or_url)
    if text.startswith(("http://", "https://")):
        if as_user is not None:
            raise NotAllowed("as_user is for a local store; over HTTP the token decides "
                             "what is seen")
        from hub.client.remote import RemoteHub

        return RemoteHub(text, token)
    from hub.client.local import LocalHub

    return LocalHub(Path(path_or_url), as_user=as_user, token=token)


__all__ = ["ClientError", "DatasetInfo", "Hub", "InvalidFilter", "InvalidQuery",
           "InvalidRecord", "NotAHub", "NotAllowed", "NotFound", "VersionInfo",
           "VersionRemoved", "open"]
