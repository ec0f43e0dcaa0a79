"""CKAN's dicts (package, resource, organisation, group, tag, licence) from catalog records, and
a package dict back into a record: the one place where CKAN's field names meet the catalog's.

Fields CKAN has no top-level key for travel as `extras` in the conventions of ckanext-dcat,
ckanext-spatial and GovData's ckanext-dcatde (`frequency`, `spatial`, `politicalGeocodingURI`,
`contributorID`, `licenseAttributionByText`, …), so harvesters and other CKANs understand them.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hub.catalog import District
from hub.catalog.dcat import GEOCODING, KEYS, LEVELS
from hub.catalog.links import hub_link
from hub.catalog.model import Distribution, Record
from hub.catalog.vocab import Organization, Term, Vocabularies

NAMESPACE = uuid.UUID("0b6a1f4e-2c57-5d1a-9e0f-6c3b7a2d4e81")  # ids of orgs, groups, tags
# extras that are computed from other fields: shown, never stored from input
DERIVED_EXTRAS = ("contributorID", "politicalGeocodingLevelURI")
# record field -> CKAN field, for naming fields in validation errors
ERROR_FIELDS = {"description": "notes", "license": "license_id", "publisher": "owner_org",
                "keywords": "tags", "themes": "groups", "landing_page": "url",
                "edition": "version", "bbox": "spatial", "distributions": "resources",
                "access": "access_level", "spatial_ags": "politicalGeocodingURI",
                "attribution": "licenseAttributionByText", "source_url": "metadata_original_html",
                "contact.email": "maintainer_email", "contact.url": "maintainer_url",
                "creator.email": "author_email"}

# package and resource fields that hold text: a list or an object there is an error, not text
TEXT_FIELDS = ("id", "name", "title", "notes", "url", "version", "license_id", "author",
               "author_email", "maintainer", "maintainer_email", "owner_org", "state", "type")
RESOURCE_TEXT_FIELDS = ("id", "url", "name", "description", "format", "mimetype", "hash")


@dataclass(frozen=True)
class Site:
    """What the dicts need besides the record: the public base URL and the vocabularies."""

    url: str  # without a trailing slash
    vocab: Vocabularies
    district: District

    def absolute(self, url: str) -> str:
        """A stored link made absolute; "" for one that may not be a link (`hub_link`)."""
        return hub_link(self.url, url) or ""


@functools.lru_cache(maxsize=1 << 16)
def derived_id(kind: str, name: str) -> str:
    """Stable UUIDs for things the catalog names by code (organisations, groups, tags)."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


def ckan_time(stamp: str | None) -> str | None:
    """A hub timestamp (`2026-11-23T23:17:25.123Z`) as CKAN writes them (naive UTC, µs)."""
    if not stamp:
        return None
    if len(stamp) <= 10:
        return f"{stamp}T00:00:00"
    base, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{base}.{(fraction + '000000')[:6]}"


# -- catalog -> CKAN ------------------------------------------------------------------------

def package(record: Record, site: Site) -> dict[str, Any]:
    vocab = site.vocab
    licence = vocab.licenses.find(record.license)
    org = vocab.organizations.get(record.publisher)
    tags = [tag(k) for k in record.keywords]
    groups = [group(vocab.themes.get(code), site) for code in record.themes]
    resources = [resource(d, record, i, site) for i, d in enumerate(record.served())]
    return {
        "id": record.id, "name": record.name, "title": record.title,
        "notes": record.description, "url": landing_page(record, site),
        "version": record.edition or None,
        "author": record.creator.get("name"), "author_email": record.creator.get("email"),
        "maintainer": record.contact.get("name"),
        "maintainer_email": record.contact.get("email"),
        "license_id": record.license,
        "license_title": licence.label if licence else record.license,
        "license_url": licence.extra.get("url", "") if licence else "",
        "isopen": bool(licence and licence.extra.get("open")),
        "owner_org": derived_id("organization", record.publisher),
        "organization": organization(org, site) if org else None,
        "private": record.access != "public", "state": record.state, "type": "dataset",
        "metadata_created": ckan_time(record.created),
        "metadata_modified": ckan_time(record.changed),
        "creator_user_id": None,
        "tags": tags, "num_tags": len(tags), "groups": groups,
        "extras": [{"key": k, "value": v} for k, v in sorted(extras(record, site).items())],
        "resources": resources, "num_resources": len(resources),
        "relationships_as_object": [], "relationships_as_subject": [],
        "hub_revision": record.revision,  # send back as `if_revision` (hub.api.ckan.write)
    }


def landing_page(record: Record, site: Site) -> str:
    """The record's own landing page, or its page on this hub (as in DCAT)."""
    return site.absolute(record.landing_page) or f"{site.url}/datasets/{quote(record.name)}"


def extras(record: Record, site: Site) -> dict[str, str]:
    """Everything CKAN has no field for, as key/value strings (see the module docstring)."""
    out = dict(record.extras)
    if record.access != "public":
        out["access_level"] = record.access
    if record.restricted_to:
        out["restricted_to"] = ",".join(record.restricted_to)
    frequency = site.vocab.frequencies.find(record.frequency)
    if frequency is not None and record.frequency != "UNKNOWN":
        out["frequency"] = frequency.uri or frequency.code
    for key in ("issued", "modified", "conforms_to", "source_system", "access_note"):
        if getattr(record, key):
            out[key] = str(getattr(record, key))
    for key in ("start", "end"):
        if record.temporal.get(key):
            out[f"temporal_{key}"] = record.temporal[key]
    if record.bbox:
        minx, miny, maxx, maxy = record.bbox
        out["spatial"] = json.dumps({"type": "Polygon", "coordinates": [[
            [minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]]})
    ags = record.spatial_ags or [site.district.ags]
    out["politicalGeocodingURI"] = json.dumps([f"{GEOCODING}{KEYS[len(a)]}/{a}" for a in ags])
    out["politicalGeocodingLevelURI"] = \
        f"{GEOCODING}Level/{LEVELS.get(min(len(a) for a in ags), 'administrativeDistrict')}"
    if site.district.contributor_id:
        out["contributorID"] = json.dumps([site.district.contributor_id])
    if record.attribution:
        out["licenseAttributionByText"] = record.attribution
    if not record.data_held:
        out["data_held"] = "false"
    if record.personal_data:
        out["personal_data"] = "true"
    for key in ("url", "phone"):
        if record.contact.get(key):
            out[f"maintainer_{'tel' if key == 'phone' else key}"] = record.contact[key]
    if record.source_url:
        out["metadata_original_html"] = record.source_url
    for lang, text in record.translations.items():
        for key, ckan_key in (("title", "title"), ("description", "notes")):
            if text.get(key):
                out[f"{ckan_key}_{lang}"] = text[key]
    return out


def resource(d: Distribution, record: Record, position: int, site: Site) -> dict[str, Any]:
    fmt, mimetype = resource_format(d, site.vocab)
    return {"id": d.id, "package_id": record.id, "url": site.absolute(d.url), "name": d.title,
            "description": d.description, "format": fmt, "mimetype": mimetype,
            "mimetype_inner": None, "size": d.size, "hash": d.hash,
            "created": ckan_time(d.created), "last_modified": ckan_time(d.modified),
            "metadata_modified": ckan_time(d.modified or d.created or record.changed),
            "position": position, "state": "active",
            "url_type": "upload" if d.upload else None, "resource_type": d.kind,
            "cache_url": None, "cache_last_updated": None, "datastore_active": False}


def resource_format(d: Distribution, vocab: Vocabularies) -> tuple[str, str | None]:
    """CKAN's `format` and `mimetype` of a distribution: the EU file-type code where the EU
    table has one, else the format's title as CKAN portals write it (`FlatGeobuf`, `OGC API
    Features`); the IANA media type, else the type the URL is served with."""
    term = vocab.formats.find(d.format)
    if term is None:
        return d.format, d.media_type or None
    return (term.code if term.uri else str(term.extra.get("title") or term.code),
            d.media_type or term.extra.get("mimetype") or None)


def organization(org: Organization, site: Site, package_count: int | None = None
                 ) -> dict[str, Any]:
    out = {"id": derived_id("organization", org.id), "name": org.id, "title": org.name,
           "display_name": org.name, "description": org.description,
           "image_url": "", "image_display_url": "", "created": None,
           "is_organization": True, "approval_status": "approved", "state": "active",
           "type": "organization"}
    if package_count is not None:
        out["package_count"] = package_count
    return out


def group(term: Term, site: Site, package_count: int | None = None) -> dict[str, Any]:
    """An EU data theme as a CKAN group (named by its lower-case code, as GovData does)."""
    name = term.code.lower()
    out = {"id": derived_id("group", name), "name": name, "title": term.label,
           "display_name": term.label, "description": term.extra.get("en", ""),
           "image_url": "", "image_display_url": "", "created": None,
           "is_organization": False, "approval_status": "approved", "state": "active",
           "type": "group", "uri": term.uri}
    if package_count is not None:
        out["package_count"] = package_count
    return out


def tag(name: str) -> dict[str, Any]:
    return {"id": derived_id("tag", name), "name": name, "display_name": name,
            "state": "active", "vocabulary_id": None}


def licence(term: Term) -> dict[str, Any]:
    return {"id": term.code, "title": term.label, "url": term.extra.get("url", ""),
            "status": "active", "family": "", "maintainer": "",
            "od_conformance": "approved" if term.extra.get("open") else "not reviewed",
            "osd_conformance": "not reviewed", "domain_content": True, "domain_data": True,
            "domain_software": False, "is_generic": term.code.startswith("other-")}


# -- CKAN -> catalog ------------------------------------------------------------------------

class PackageInvalid(ValueError):
    """Problems found before the record is validated, keyed by CKAN field."""

    def __init__(self, errors: dict[str, list[Any]]):
        self.errors = errors
        super().__init__(str(errors))


def record_data(pkg: dict[str, Any], site: Site, old: Record | None) -> dict[str, Any]:
    """The record a package dict describes, as input for `hub.catalog.model.validate`.

    `old` is the record being replaced (its uploads and hub downloads are kept by id).
    """
    errors: dict[str, list[Any]] = {
        key: ["must be a string, not a list or an object"] for key in TEXT_FIELDS
        if isinstance(pkg.get(key), dict | list)}
    vocab = site.vocab
    data: dict[str, Any] = {
        "name": _text(pkg.get("name")), "title": _text(pkg.get("title")),
        "description": _text(pkg.get("notes")), "landing_page": _text(pkg.get("url")),
        "edition": _text(pkg.get("version")), "license": _text(pkg.get("license_id")),
        "creator": {"name": _text(pkg.get("author")), "email": _text(pkg.get("author_email"))},
        "contact": {"name": _text(pkg.get("maintainer")),
                    "email": _text(pkg.get("maintainer_email"))},
        "state": _text(pkg.get("state")) or "active",
    }
    if pkg.get("id"):
        data["id"] = _text(pkg["id"])
    if data["landing_page"] == f"{site.url}/datasets/{quote(data['name'])}":
        data["landing_page"] = ""  # this hub's own page: not stored
    if _text(pkg.get("type")) not in ("", "dataset"):
        errors["type"] = [f"only datasets are kept here, not {pkg['type']!r}"]
    owner = _text(pkg.get("owner_org"))
    if owner:
        org = find_organization(owner, vocab)
        data["publisher"] = org.id if org else owner
    data["keywords"] = []
    for t in _items(pkg.get("tags"), "tags", errors):
        tag_name = t.get("name") if isinstance(t, dict) else t
        if isinstance(tag_name, dict | list):
            errors["tags"] = ["each tag is a string or an object with a string name"]
        else:
            data["keywords"].append(_text(tag_name))
    themes = []
    for g in _items(pkg.get("groups"), "groups", errors):
        key = _text(g.get("name") or g.get("id")) if isinstance(g, dict) else _text(g)
        term = find_group(key, vocab)
        if term is None:
            errors["groups"] = [f"unknown group {key!r}: groups are the EU data themes "
                                f"({', '.join(c.lower() for c in vocab.themes.codes())})"]
        else:
            themes.append(term.code)
    data["themes"] = themes
    data["access"] = "public"
    pairs = _extras(pkg.get("extras"), errors)
    if _bool(pkg.get("private")):
        level = pairs.get("access_level", "internal")
        data["access"] = level if level in ("internal", "restricted") else "internal"
    data["restricted_to"] = [o for o in pairs.pop("restricted_to", "").split(",") if o]
    pairs.pop("access_level", None)
    for key in DERIVED_EXTRAS:
        pairs.pop(key, None)
    for key in ("frequency", "issued", "modified", "conforms_to", "source_system",
                "access_note"):
        if key in pairs:
            data[key] = pairs.pop(key)
    temporal = {k: pairs.pop(f"temporal_{k}") for k in ("start", "end")
                if f"temporal_{k}" in pairs}
    data["temporal"] = temporal
    if "spatial" in pairs:
        data["bbox"] = _bbox(pairs.pop("spatial"), errors)
    if "politicalGeocodingURI" in pairs:
        data["spatial_ags"] = _geocoding(pairs.pop("politicalGeocodingURI"), site, errors)
    if "licenseAttributionByText" in pairs:
        data["attribution"] = pairs.pop("licenseAttributionByText")
    data["data_held"] = pairs.pop("data_held", "true").lower() != "false"
    data["personal_data"] = pairs.pop("personal_data", "false").lower() == "true"
    for key, contact_key in (("maintainer_url", "url"), ("maintainer_tel", "phone")):
        if key in pairs:
            data["contact"][contact_key] = pairs.pop(key)
    if "metadata_original_html" in pairs:
        data["source_url"] = pairs.pop("metadata_original_html")
    translations: dict[str, dict[str, str]] = {}
    for key in [k for k in pairs if k.split("_")[0] in ("title", "notes") and "_" in k]:
        field, lang = key.split("_", 1)
        if lang in ("en", "dsb"):
            translations.setdefault(lang, {})[
                "description" if field == "notes" else "title"] = pairs.pop(key)
    data["translations"] = translations
    data["extras"] = pairs
    data["distributions"] = [
        distribution_data(r, old, i, errors)
        for i, r in enumerate(_items(pkg.get("resources"), "resources", errors))
        if not (old and old.version is not None and isinstance(r, dict)
                and r.get("id") in {d.id for d in old.served()[len(old.distributions):]})]
    if errors:
        raise PackageInvalid(errors)
    return data


def distribution_data(res: Any, old: Record | None, position: int,
                      errors: dict[str, list[Any]]) -> dict[str, Any]:
    """One CKAN resource as a distribution dict; an upload stays attached to its id."""
    if not isinstance(res, dict):
        errors["resources"] = [f"resource {position + 1} must be an object"]
        return {}
    if bad := [k for k in RESOURCE_TEXT_FIELDS if isinstance(res.get(k), dict | list)]:
        errors["resources"] = [f"resource {position + 1}: {', '.join(bad)} must be a string"]
    previous = next((d for d in (old.distributions if old else []) if d.id == res.get("id")),
                    None)
    upload = previous.upload if previous and res.get("url_type") == "upload" else ""
    url = previous.url if upload else _text(res.get("url")) or (previous.url if previous
                                                                  else "")
    return {"id": _text(res.get("id")), "url": url,
            "title": _text(res.get("name")), "description": _text(res.get("description")),
            "format": _text(res.get("format")), "media_type": _text(res.get("mimetype")),
            "size": res.get("size"), "hash": _text(res.get("hash")),
            "created": res.get("created") or (previous.created if previous else None),
            "modified": res.get("last_modified"),
            "kind": "api" if res.get("resource_type") == "api" else "download",
            "upload": upload}


def find_organization(key: str, vocab: Vocabularies) -> Organization | None:
    """By CKAN id (the derived UUID), by name (the catalog's id) or by title."""
    organizations = vocab.organizations
    for org in organizations.values():
        if key == derived_id("organization", org.id):
            return org
    return vocab.organization(key)


def find_group(key: str, vocab: Vocabularies) -> Term | None:
    for term in vocab.themes.terms:
        if key in (derived_id("group", term.code.lower()), term.code.lower()):
            return term
    return vocab.themes.find(key)


def error_field(field: str) -> str:
    """The CKAN name of a record field, for validation errors."""
    base, _, rest = field.partition("[")
    return ERROR_FIELDS.get(base, base) + (f"[{rest}" if rest else "")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _items(value: Any, key: str, errors: dict[str, list[Any]]) -> list[Any]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            errors[key] = ["must be a list (JSON)"]
            return []
    if not isinstance(value, list):
        errors[key] = ["must be a list"]
        return []
    return value


def _extras(value: Any, errors: dict[str, list[Any]]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in _items(value, "extras", errors):
        if not isinstance(item, dict) or not _text(item.get("key")):
            errors["extras"] = ["each extra needs a key and a value"]
            continue
        if item.get("deleted"):
            continue
        value_ = item.get("value")
        pairs[_text(item["key"])] = value_ if isinstance(value_, str) else json.dumps(value_)
    return pairs


def _bbox(text: str, errors: dict[str, list[Any]]) -> list[float] | None:
    """The extent of a GeoJSON geometry (ckanext-spatial's `spatial` extra)."""
    try:
        geometry = json.loads(text)
        coords = list(_coordinates(geometry["coordinates"]))
        xs, ys = [c[0] for c in coords], [c[1] for c in coords]
        box = [min(xs), min(ys), max(xs), max(ys)]
    except (ValueError, KeyError, TypeError, IndexError):
        errors["spatial"] = ["must be a GeoJSON geometry with lon/lat coordinates"]
        return None
    if not (-180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90):
        errors["spatial"] = ["coordinates must be longitude/latitude (WGS 84)"]
        return None
    return box


def _coordinates(value: Any):
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        yield float(value[0]), float(value[1])
    elif isinstance(value, list):
        for item in value:
            yield from _coordinates(item)
    else:
        raise TypeError("not a coordinate array")


def _geocoding(text: str, site: Site, errors: dict[str, list[Any]]) -> list[str]:
    """AGS keys from dcatde politicalGeocodingURIs (the district's own key means "all")."""
    try:
        uris = json.loads(text) if text.strip().startswith("[") else [text]
    except json.JSONDecodeError:
        errors["politicalGeocodingURI"] = ["must be a JSON list of URIs"]
        return []
    keys = [str(u).rstrip("/").rsplit("/", 1)[-1] for u in uris]
    return [] if keys == [site.district.ags] else keys
