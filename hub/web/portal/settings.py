"""The portal's configuration: `catalog/portal.yaml` (site name, imprint, privacy notice,
accessibility statement with the BITV feedback contact)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hub.errors import HubError

FILE = "portal.yaml"
SECTIONS = ("operator", "privacy", "accessibility")


def load(catalog_dir: Path, district_name: str) -> dict[str, Any]:
    """The portal's settings; raises `HubError` naming the file and key when one is wrong.
    Without the file the portal runs with the district's name and no legal pages' facts."""
    path = catalog_dir / FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    except yaml.YAMLError as exc:
        raise HubError(f"{path}: YAML syntax error: {exc}") from None
    if not isinstance(raw, dict):
        raise HubError(f"{path}: expected a mapping of settings, found {type(raw).__name__}")
    for key in SECTIONS:
        if not isinstance(raw.get(key, {}), dict):
            raise HubError(f"{path}: {key}: expected a mapping")
    site = raw.get("site_name") or (f"Offene Daten – {district_name}" if district_name
                                    else "Offene Daten")
    return {"site_name": str(site), "basemap": _basemap(path, raw.get("basemap") or {}),
            **{key: raw.get(key) or {} for key in SECTIONS}}


def _basemap(path: Path, raw: Any) -> dict[str, str]:
    """`basemap`: `url` (a raster tile template on the hub itself: a path with {z}/{x}/{y}) and
    its `attribution`; none: the maps show the district's boundaries as base."""
    if not isinstance(raw, dict):
        raise HubError(f"{path}: basemap: expected a mapping with url and attribution")
    url, attribution = str(raw.get("url") or ""), str(raw.get("attribution") or "")
    if url and (not url.startswith("/") or url.startswith("//")
                or not all(p in url for p in ("{z}", "{x}", "{y}"))):
        raise HubError(f"{path}: basemap: url: a path on the hub with {{z}}, {{x}} and {{y}} "
                       f"expected (no request may leave the hub), got {url!r}")
    if url and not attribution:
        raise HubError(f"{path}: basemap: attribution: required with a url")
    return {"url": url, "attribution": attribution}
