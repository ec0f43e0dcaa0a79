"""A whole version as one GeoJSON FeatureCollection, written batch by batch.

The collection's foreign members come first (name, version, title, license, attribution), so
a reader sees the terms before the features. Feature ids follow the OGC API: the schema's
primary key when it is one field, else the 1-based row number.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa

from hub.api.downloads.columns import Source, buffer_bytes, geojson_geometries, join, json_values
from hub.api.downloads.formats import Terms


def id_field(source: Source) -> str | None:
    """The schema's primary key when it is one attribute (the OGC API's feature ids)."""
    key = source.version.schema.get("primaryKey")
    keys = [key] if isinstance(key, str) else list(key or [])
    return keys[0] if len(keys) == 1 and keys[0] in source.attributes else None


def head(source: Source, terms: Terms) -> bytes:
    v = source.version
    members = {"type": "FeatureCollection", "name": v.dataset, "version": v.version,
               "updated": v.finished, **{k: val for k, val in (
                   ("title", terms.title), ("license", terms.license_url),
                   ("license_title", terms.license_title),
                   ("attribution", terms.attribution)) if val}}
    return orjson.dumps(members)[:-1] + b',"features":['


def stream(source: Source, terms: Terms, id_field: str | None) -> Iterator[bytes]:
    """The document in chunks of one batch each (a few MB at most)."""
    yield head(source, terms)
    first, row = True, 0
    names = source.attributes
    keys = [orjson.dumps(n).decode() + ":" for n in names]
    for batch in source.batches():
        n = batch.num_rows
        if n == 0:
            continue
        if id_field is not None:
            ids = json_values(batch.column(id_field))
        else:
            ids = pa.array(np.arange(row + 1, row + n + 1)).cast(pa.string())
        geometry = (geojson_geometries(batch.column("geometry")) if source.has_geometry
                    else "null")
        props: list[pa.Array | str] = []
        for i, (key, name) in enumerate(zip(keys, names, strict=True)):
            props += ["," + key if i else key, json_values(batch.column(name))]
        text = join(',\n{"type":"Feature","id":', ids, ',"geometry":', geometry,
                    ',"properties":{', *props, "}}")
        chunk = buffer_bytes(text)
        yield chunk[1:] if first else chunk  # no comma before the first feature
        first, row = False, row + n
    yield b"\n]}\n"
