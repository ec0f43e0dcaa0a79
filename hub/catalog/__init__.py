"""The metadata catalog (DCAT-AP.de): records, vocabularies, search, quality, exports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from hub.access import owner_id
from hub.catalog.index import Catalog
from hub.catalog.model import AGS_FORMS, valid_ags
from hub.catalog.vocab import Vocabularies
from hub.config import Settings
from hub.errors import HubError
from hub.store.versions import Store


@dataclass
class District:
    """Settings of the district from `catalog/district.yaml` used by the catalog."""

    name: str
    ags: str
    default_license: str
    contributor_id: str
    org: str  # organisation id of the district itself (publisher of the catalog)
    raw: dict[str, Any]


def open_catalog(settings: Settings) -> tuple[Catalog, Vocabularies, District]:
    """The store's catalog with the project's vocabularies and district settings."""
    catalog_dir = settings.root / "catalog"
    raw = yaml.safe_load((catalog_dir / "district.yaml").read_text(encoding="utf-8")) \
        if (catalog_dir / "district.yaml").exists() else {}
    catalog = Catalog(Store(settings.store, settings.database()))
    vocab = Vocabularies(catalog_dir, catalog.organizations)
    # (called inside the catalog's lock: the organisations of the YAML file by id or name,
    # those registered at run time by id)
    catalog.owner_of = lambda organization: owner_id(organization, vocab, registered=False)
    org = next((o.id for o in vocab.organizations.values() if o.kind == "district"), "")
    ags = str(raw.get("ags", "") or "")
    if ags and not valid_ags(ags):
        raise HubError(f"{catalog_dir / 'district.yaml'}: ags {ags!r}: {AGS_FORMS}")
    district = District(str(raw.get("name", "")), ags,
                        str(raw.get("default_license", "")), str(raw.get("contributor_id", "")),
                        org, raw)
    return catalog, vocab, district


__all__ = ["Catalog", "District", "Vocabularies", "open_catalog"]
