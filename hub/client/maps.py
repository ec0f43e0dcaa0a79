"""Maps in notebooks: folium maps of datasets that need no internet access.

folium's pages load Leaflet, jQuery, Bootstrap and Font Awesome from CDNs by default. These
maps need only Leaflet, served by the hub itself (`/static/vendor/leaflet/`, vendored from the
npm registry) or, for a local store, embedded in the page as data: URLs. There is no basemap
(the demo has no network; a district sets its own): the layers themselves are the map, each
with its dataset's attribution in the corner.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branca.element import MacroElement
from jinja2 import Template

if TYPE_CHECKING:
    import folium
    import geopandas

VENDOR = Path(__file__).resolve().parents[1] / "web" / "static" / "vendor" / "leaflet"
STATIC_PATH = "/static/vendor/leaflet"  # where hub.web.app serves VENDOR
COLOURS = ("#1b6ca8", "#d1495b", "#2e8540", "#edae49", "#6a4c93", "#00798c")
TOOLTIP_FIELDS = 6


@dataclass(frozen=True)
class Assets:
    """Where the page loads Leaflet from."""

    js: str
    css: str


def served(base_url: str) -> Assets:
    """Leaflet as a hub serves it."""
    base = base_url.rstrip("/") + STATIC_PATH
    return Assets(f"{base}/leaflet.js", f"{base}/leaflet.css")


def embedded() -> Assets:
    """Leaflet inside the page (data: URLs): for maps of a local store, offline anywhere."""
    def data_url(name: str, media_type: str) -> str:
        encoded = base64.b64encode((VENDOR / name).read_bytes()).decode("ascii")
        return f"data:{media_type};base64,{encoded}"
    return Assets(data_url("leaflet.js", "text/javascript"), data_url("leaflet.css", "text/css"))


@dataclass
class Layer:
    """One layer of a map: its title, its features and the attribution it requires."""

    title: str
    frame: geopandas.GeoDataFrame
    attribution: str


def build(layers: list[Layer], assets: Assets, **style: Any) -> folium.Map:
    """A folium map of the layers (points as circles), zoomed to them, with their
    attributions; `style` overrides the path options (`color`, `weight`, `radius`, ...)."""
    import folium

    m = folium.Map(tiles=None, control_scale=True, zoom_start=9)
    m.default_js = [("leaflet", assets.js)]  # instead of folium's CDN links
    m.default_css = [("leaflet_css", assets.css)]
    bounds: list[list[float]] = []
    for i, layer in enumerate(layers):
        frame = layer.frame
        if "geometry" not in getattr(frame, "columns", ()) or frame.empty:
            continue
        colour = COLOURS[i % len(COLOURS)]
        options = {"color": colour, "weight": 1.5, "fillColor": colour, "fillOpacity": 0.35,
                   **style}
        radius = options.pop("radius", 5)
        fields = [c for c in frame.columns if c != "geometry"
                  and not str(frame[c].dtype).startswith(("datetime", "timestamp"))]
        folium.GeoJson(
            json.loads(frame.to_json(drop_id=True, to_wgs84=True, default=str)),
            name=layer.title,
            marker=folium.CircleMarker(radius=radius, fill=True),
            style_function=lambda _feature, o=options: o,
            tooltip=folium.GeoJsonTooltip(fields=fields[:TOOLTIP_FIELDS]) if fields else None,
        ).add_to(m)
        if layer.attribution:
            Attribution(layer.attribution).add_to(m)
        x0, y0, x1, y1 = (float(v) for v in frame.to_crs("OGC:CRS84").total_bounds)
        bounds += [[y0, x0], [y1, x1]]
    if bounds:
        lats, lons = [b[0] for b in bounds], [b[1] for b in bounds]
        m.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
    if len(layers) > 1:
        folium.LayerControl(collapsed=False).add_to(m)  # collapsed: an icon image
    return m


class Attribution(MacroElement):
    """Adds a text to the map's attribution control (HTML-escaped: the text is data)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.attributionControl"
        ".addAttribution({{ this.text|tojson }});"
        "{% endmacro %}")

    def __init__(self, text: str):
        super().__init__()
        self._name = "Attribution"
        self.text = html.escape(text)
