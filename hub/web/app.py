"""The hub's web server: for now a minimal, correct view of the public datasets.

Only datasets whose pipeline says `access: public` are visible; anything else answers 404, the
same as a dataset that does not exist, so nothing reveals what is internal.
"""

from __future__ import annotations

import html
import json
from typing import Any

import pyarrow.parquet as pq
import shapely
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from hub import __version__
from hub.config import Settings
from hub.errors import StoreError
from hub.store.versions import Store, Version


def create_app(settings: Settings) -> FastAPI:
    store = Store(settings.store)
    app = FastAPI(title="District data hub", version=__version__)

    def public(name: str) -> Version:
        try:
            dataset = store.dataset(name)
        except StoreError:
            dataset = None
        version = store.current(name) if dataset and dataset.access == "public" else None
        if version is None:
            raise HTTPException(404, f"no public dataset named {name!r}")
        return version

    def summary(name: str) -> dict[str, Any]:
        v = public(name)
        d = store.dataset(name)
        return {"name": d.name, "title": d.title, "organization": d.organization,
                "attribution": d.attribution,
                "update_frequency": d.update_frequency, "version": v.version, "rows": v.rows,
                "checksum": v.checksum, "bbox": v.bbox, "geometry_types": v.geometry_types,
                "source_crs": v.source_crs, "modified": v.finished,
                "file_rows": pq.ParquetFile(v.data_file).metadata.num_rows}

    @app.get("/api/datasets")
    def list_datasets() -> list[dict[str, Any]]:
        return [summary(d.name) for d in store.datasets()
                if d.access == "public" and d.current_version]

    @app.get("/api/datasets/{name}")
    def show_dataset(name: str) -> dict[str, Any]:
        return summary(name)

    @app.get("/api/datasets/{name}/features")
    def features(name: str, limit: int = Query(100, ge=1, le=10_000),
                 offset: int = Query(0, ge=0)) -> Response:
        v = public(name)
        table = pq.read_table(v.data_file).slice(offset, limit)
        rows = table.drop_columns([c for c in ("geometry", "bbox") if c in table.column_names])
        geoms = (shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
                 if "geometry" in table.column_names else [None] * table.num_rows)
        out = [{"type": "Feature", "properties": props,
                "geometry": json.loads(shapely.to_geojson(g)) if g is not None else None}
               for props, g in zip(rows.to_pylist(), geoms, strict=True)]
        body = {"type": "FeatureCollection", "features": out, "version": v.version}
        return Response(json.dumps(body, default=str), media_type="application/geo+json")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        items = "".join(
            f'<li><a href="/api/datasets/{html.escape(d["name"])}">{html.escape(d["title"])}</a>'
            f' — {d["rows"]:,} Datensätze, Version {d["version"]}, Stand '
            f'{html.escape(d["modified"][:10])}'
            + (f'<br><small>Quelle: {html.escape(d["attribution"])}</small>'
               if d["attribution"] else "") + "</li>"
            for d in list_datasets())
        return (f'<!doctype html><html lang="de"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(settings.district or 'Datenhub')}</title></head><body>"
                f"<main><h1>Offene Daten – {html.escape(settings.district or 'Datenhub')}</h1>"
                f"<ul>{items or '<li>Noch keine öffentlichen Datensätze.</li>'}</ul>"
                f"</main></body></html>")

    return app
