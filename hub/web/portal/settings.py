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
    return {"site_name": str(site), **{key: raw.get(key) or {} for key in SECTIONS}}
