"""OGC API – Features over the store: `ogc_router(store, viewer)` gives the FastAPI router.

Modules: `features` (routes and documents), `params` (query parameters and their 400s),
`cql2` (CQL2 text filters: parser) and `cql2_eval` (their evaluation with Arrow kernels),
`tiles` (OGC API – Tiles: vector tiles, clusters, tile cache) and `mvt` (the MVT encoder),
`crs` (Part 2 coordinate systems), `datasets` (current versions, re-read after commits),
`facts` (access in force and catalog facts per dataset, kept per catalog state),
`layer` (per-version in-memory data, index and selections),
`geojson` (vectorised encoding), `openapi` (the `/api` document), `html` (German pages),
`caching` (ETags, Cache-Control, 304s), `work` (expensive work off the event loop: worker
pool, cost budget, deadlines).
"""

from hub.api.ogc.features import BUSIEST, About, ogc_router
from hub.api.ogc.layer import LayerCache
from hub.api.ogc.params import Limits

__all__ = ["BUSIEST", "About", "LayerCache", "Limits", "ogc_router"]
