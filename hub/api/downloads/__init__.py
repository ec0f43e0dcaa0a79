"""Downloads of every stored version: `downloads_router(store, viewer, about=...)`.

A package of its own rather than part of `hub.api.ogc`: downloads are whole files with their
own URL space (`/downloads/...`) and caching rules, while the OGC API pages through filtered
features; the two share only the store's current-version listing and the catalog's facts.

Modules: `routes` (URLs, access, headers), `http` (validators, 304s, Cache-Control, gzip),
`formats` (formats, licence terms), `columns` (batched reading, vectorised text encoders),
`geojson` and `csv_text` (streamed formats), `exports` (GeoPackage, FlatGeobuf, GeoParquet
and the gzipped GeoJSON and CSV: files built once per version).
"""

from hub.api.downloads.formats import FORMATS, Format, Terms
from hub.api.downloads.routes import downloads_router

__all__ = ["FORMATS", "Format", "Terms", "downloads_router"]
