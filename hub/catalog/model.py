"""The catalog record (DCAT-AP.de dataset) and the one function that validates it.

Every way of registering a dataset — YAML files, the CLI, the spreadsheet import, the CKAN API,
the web workspace — builds a plain dict and passes it through `validate`, so a rule lives in one
place. Codes are normalised on the way in (a licence may be given as "dl-by-de/2.0", its URI or
its German title; a frequency as "MONTHLY" or "monatlich").
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from hub.catalog.links import CONTACT, SCHEME, WEB, email_problem, link_problem
from hub.catalog.vocab import ACCESS_LEVELS, Vocabularies
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.access import Viewer

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
NAMESPACE = uuid.UUID("6f1c2b1e-4d0a-5b7e-9a53-2c1e0f3d8a11")  # stable ids from slugs
SOURCE_SYSTEMS = ("GIS", "HKR", "RIS", "Fachverfahren", "Tabellenkalkulation", "Sonstiges")
STORE_FACTS = ("version", "rows", "schema", "store_modified", "created", "changed",
               "revision")
ORIGINS = ("yaml", "cli", "api", "inventory", "pipeline", "harvest", "web")
STATES = ("active", "draft", "deleted")  # deleted: kept, but out of every list and feed
FIELDS = ("id", "name", "title", "description", "publisher", "license", "attribution",
          "access", "restricted_to", "data_held", "access_note", "personal_data", "keywords",
          "themes", "contact", "creator", "frequency", "issued", "modified", "temporal",
          "spatial_ags", "bbox", "source_system", "conforms_to", "landing_page", "edition",
          "translations", "distributions", "extras", "state", "origin", "source_url")


class RecordInvalid(HubError):
    """A record breaks the catalog's rules; `errors` maps each field to its problem."""

    def __init__(self, where: str, errors: dict[str, str]):
        self.where, self.errors = where, errors
        listed = "; ".join(f"{k}: {v}" for k, v in errors.items())
        super().__init__(f"{where}: {listed}" if where else listed)


@dataclass
class Distribution:
    """A way to get the data: a download (one format) or an API endpoint."""

    title: str
    format: str  # EU file-type code, or "" when unknown
    url: str  # absolute http(s), or the hub's path of a file uploaded to it (`upload_path`)
    kind: str = "download"  # download | api
    media_type: str = ""
    description: str = ""
    id: str = ""  # stable: kept across edits (CKAN's resource id)
    size: int | None = None  # bytes
    hash: str = ""
    created: str | None = None
    modified: str | None = None
    upload: str = ""  # file name of a file uploaded to the hub (then `url` points at it)


@dataclass
class Record:
    """One dataset of the district, whether or not the hub holds its data."""

    id: str
    name: str
    title: str
    description: str
    publisher: str
    license: str
    access: str = "public"
    attribution: str = ""
    restricted_to: list[str] = field(default_factory=list)
    data_held: bool = True  # False: metadata only ("Dateninventur"); see access_note
    access_note: str = ""  # who holds the data and how to ask for it
    personal_data: bool = False
    keywords: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)
    contact: dict[str, str] = field(default_factory=dict)  # name, email, url, phone
    creator: dict[str, str] = field(default_factory=dict)  # name, email (CKAN's author)
    frequency: str = "UNKNOWN"
    issued: str | None = None
    modified: str | None = None
    temporal: dict[str, str] = field(default_factory=dict)
    spatial_ags: list[str] = field(default_factory=list)
    bbox: list[float] | None = None
    source_system: str = ""
    conforms_to: str = ""
    landing_page: str = ""
    edition: str = ""  # the publisher's version label (CKAN's `version`)
    translations: dict[str, dict[str, str]] = field(default_factory=dict)  # en/dsb: title, desc
    distributions: list[Distribution] = field(default_factory=list)
    extras: dict[str, str] = field(default_factory=dict)  # further key/value pairs (CKAN extras)
    state: str = "active"  # active | draft | deleted
    origin: str = "yaml"
    source_url: str = ""  # the original record of a harvested dataset
    # facts from the store's current version, filled in by `link`; never set by hand
    version: int | None = None
    rows: int | None = None
    schema: dict[str, Any] | None = None
    store_modified: str | None = None
    # bookkeeping of the catalog: when the record was registered and last changed (its data's
    # new versions included); never set by hand
    created: str | None = None
    changed: str | None = None
    revision: int | None = None  # counts the record's writes (optimistic concurrency)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def curated(self) -> dict[str, Any]:
        """The record as registered, without the facts that come from the store."""
        data = asdict(self)
        for key in STORE_FACTS:
            data.pop(key)
        return data

    @property
    def last_modified(self) -> str | None:
        """The later of the record's `modified` and its data's last version."""
        dates = [d for d in (self.modified, self.store_modified) if d]
        return max(dates) if dates else None

    def visible_to(self, viewer: Viewer) -> bool:
        return viewer.may_see(self.access, self.restricted_to)

    def served(self) -> list[Distribution]:
        """The registered distributions and, when the hub holds the data, its own: one
        download per format of the current version (`/downloads/{name}/latest.{ext}`) and the
        OGC API – Features collection; ids derive from the record's, so they are stable."""
        if self.version is None or not self.data_held:
            return list(self.distributions)
        name = quote(self.name)
        own = [Distribution(
            title=f"{self.title} ({label}, aktuelle Version)", format=code,
            url=f"/downloads/{name}/latest.{kind}", media_type=media_type,
            description=f"{label} der jeweils aktuellen Version; jede Version einzeln unter "
                        f"/downloads/{name}/v<N>.{kind}",
            id=hub_download_id(self.id, kind), created=self.store_modified,
            modified=self.store_modified)
            for kind, label, code, media_type in HUB_FILES]
        own.append(Distribution(
            title=f"{self.title} (OGC API – Features)", format="OGC_API_FEATURES",
            url=f"/ogc/collections/{name}", kind="api",
            description="Geodienst nach OGC API – Features (GeoJSON, HTML; Filter, Seiten, "
                        "Koordinatensysteme)",
            id=hub_download_id(self.id, "ogc"), created=self.store_modified,
            modified=self.store_modified))
        return [*self.distributions, *own]


# The hub's own downloads of data it holds: kind (= file extension), label, EU file-type code
# or the catalog's own format code where the EU table has none (FLATGEOBUF, see
# catalog/vocabularies/formats.yaml), media type (only IANA-registered ones: DCAT makes an IANA
# URI of it). `hub.api.downloads` serves them.
HUB_FILES = (("geojson", "GeoJSON", "GEOJSON", "application/geo+json"),
             ("csv", "CSV", "CSV", "text/csv"),
             ("gpkg", "GeoPackage", "GPKG", "application/geopackage+sqlite3"),
             ("parquet", "GeoParquet", "PARQUET", "application/vnd.apache.parquet"),
             ("fgb", "FlatGeobuf", "FLATGEOBUF", ""))
HUB_DOWNLOADS = (*(kind for kind, *_ in HUB_FILES), "ogc")  # kinds, for stable resource ids


def hub_download_id(record_id: str, kind: str) -> str:
    """The stable id of one of the hub's own downloads of a record's data."""
    return str(uuid.uuid5(uuid.UUID(record_id), f"hub:{kind}"))


ALL_STATES = ("active", "draft", "deleted")


def upload_path(record_id: str, distribution_id: str) -> str:
    """Where the hub serves a file uploaded to a distribution (a path on this hub)."""
    return f"/dataset/{record_id}/resource/{distribution_id}/download/"


def stable_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def validate(data: dict[str, Any], vocab: Vocabularies, where: str = "") -> Record:
    """Check and normalise a record; every problem is reported with its field, all at once."""
    errors: dict[str, str] = {}
    unknown = set(data) - set(FIELDS) - {"title_en", "title_dsb", "description_en",
                                         "description_dsb"}
    if unknown:
        errors["record"] = f"unknown field(s) {', '.join(sorted(unknown))}"
    name = str(data.get("name") or "").strip()
    if not SLUG.match(name):
        errors["name"] = (f"{name!r} must be a slug (lower-case letters, digits, - and _)"
                          if name else "is required")
    for key in ("title", "description"):
        if not str(data.get(key) or "").strip():
            errors[key] = "is required"

    def code(key: str, vocabulary: Any, required: bool, default: str | None = None) -> str:
        raw = str(data.get(key) or "").strip()
        if not raw:
            if required:
                errors[key] = "is required"
            return default or ""
        term = vocabulary.find(raw)
        if term is None:
            errors[key] = f"unknown {key} {raw!r}"
            return raw
        return term.code

    publisher_raw = str(data.get("publisher") or "").strip()
    publisher = vocab.organization(publisher_raw) if publisher_raw else None
    if not publisher_raw:
        errors["publisher"] = "is required"
    elif publisher is None:
        errors["publisher"] = (f"unknown organisation {publisher_raw!r} "
                               "(see catalog/organizations.yaml)")
    license_code = code("license", vocab.licenses, required=True)
    frequency = code("frequency", vocab.frequencies, required=False, default="UNKNOWN")
    access = code("access", vocab.access, required=False, default="public")
    if access and access not in ACCESS_LEVELS and "access" not in errors:
        errors["access"] = f"must be one of {', '.join(ACCESS_LEVELS)}"
    themes = []
    for raw in _list(data.get("themes")):
        term = vocab.themes.find(raw)
        if term is None:
            errors["themes"] = f"unknown theme {raw!r} (use EU data-theme codes such as TRAN)"
        else:
            themes.append(term.code)
    restricted_to = []
    for raw in _list(data.get("restricted_to")):
        org = vocab.organization(raw)
        if org is None:
            errors["restricted_to"] = f"unknown organisation {raw!r}"
        else:
            restricted_to.append(org.id)
    if access == "restricted" and not restricted_to and "restricted_to" not in errors:
        errors["restricted_to"] = "name the organisations that may see a restricted dataset"
    if access == "restricted" and publisher is not None and publisher.id not in restricted_to:
        restricted_to.append(publisher.id)  # the owner always sees its own data
    for key in ("issued", "modified"):
        if data.get(key) and _date(data[key]) is None:
            errors[key] = f"{data[key]!r} is not a date (YYYY-MM-DD)"
    temporal = {k: str(v) for k, v in (data.get("temporal") or {}).items() if v}
    for k, v in temporal.items():
        if k not in ("start", "end") or _date(v) is None:
            errors["temporal"] = "give start and/or end as dates (YYYY-MM-DD)"
    ags = [str(a) for a in _list(data.get("spatial_ags"))]
    if any(not (a.isdigit() and len(a) in (2, 3, 5, 8, 9, 12)) for a in ags):
        errors["spatial_ags"] = ("AGS/ARS are 2, 3, 5, 8, 9 or 12 digits "
                                 "(e.g. 12062 or 12062092)")
    bbox = data.get("bbox")
    if bbox is not None and not (isinstance(bbox, list | tuple) and len(bbox) == 4
                                 and all(isinstance(v, int | float) for v in bbox)
                                 and bbox[0] <= bbox[2] and bbox[1] <= bbox[3]):
        errors["bbox"] = "must be [min lon, min lat, max lon, max lat]"
    source_system = str(data.get("source_system") or "")
    if source_system and source_system not in SOURCE_SYSTEMS:
        matches = [s for s in SOURCE_SYSTEMS if s.lower() == source_system.lower()]
        source_system = matches[0] if matches else "Sonstiges"
    origin = str(data.get("origin") or "yaml")
    if origin not in ORIGINS:
        errors["origin"] = f"must be one of {', '.join(ORIGINS)}"
    record_id = str(data.get("id") or stable_id(name))
    if not _is_uuid(record_id):
        errors["id"] = f"{record_id!r} is not a UUID"
    distributions = _distributions(data.get("distributions"), vocab, record_id, errors)
    state = str(data.get("state") or "active")
    if state not in STATES:
        errors["state"] = f"must be one of {', '.join(STATES)}"
    extras = data.get("extras") or {}
    if not isinstance(extras, dict) or not all(
            isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in extras.items()):
        errors["extras"] = "must map names to text values"
    elif clash := sorted(set(extras) & set(FIELDS)):
        errors["extras"] = f"{', '.join(clash)}: use the record field, not an extra"
    for key in ("contact", "creator"):
        if not isinstance(data.get(key) or {}, dict):
            errors[key] = "must map name, email, … to text values"
            continue
        people = _texts(data.get(key))
        if people.get("email") and (problem := email_problem(people["email"])):
            errors[f"{key}.email"] = problem
        if people.get("url") and (problem := link_problem(people["url"], CONTACT)):
            errors[f"{key}.url"] = problem
    for key in ("landing_page", "source_url"):
        if data.get(key) and (problem := link_problem(str(data[key]))):
            errors[key] = problem
    conforms_to = str(data.get("conforms_to") or "").strip()
    if SCHEME.match(conforms_to) and (problem := link_problem(conforms_to)):
        errors["conforms_to"] = problem + " (or the name of a schema)"
    edition = str(data.get("edition") or "").strip()
    if len(edition) > 100:
        errors["edition"] = "at most 100 characters"
    data_held = _bool(data.get("data_held", True))
    if not data_held and not str(data.get("access_note") or "").strip():
        errors["access_note"] = ("a metadata-only record must say who holds the data and how "
                                 "to ask for it")
    license_term = vocab.licenses.find(license_code) if license_code else None
    attribution = str(data.get("attribution") or "").strip()
    if license_term is not None and license_term.extra.get("attribution") and not attribution:
        attribution = publisher.name if publisher else ""
    if errors:
        raise RecordInvalid(where, errors)
    translations = {lang: {k: str(data[f"{k}_{lang}"]) for k in ("title", "description")
                           if data.get(f"{k}_{lang}")}
                    for lang in ("en", "dsb")}
    translations = {k: v for k, v in translations.items() if v} | dict(
        data.get("translations") or {})
    return Record(
        id=record_id, name=name,
        title=str(data["title"]).strip(), description=str(data["description"]).strip(),
        publisher=publisher.id if publisher else "", license=license_code,
        access=access, attribution=attribution, restricted_to=restricted_to,
        data_held=data_held, access_note=str(data.get("access_note") or "").strip(),
        personal_data=_bool(data.get("personal_data", False)),
        keywords=[k.strip() for k in _list(data.get("keywords")) if k.strip()],
        themes=themes, contact=_person(data.get("contact")), creator=_person(data.get("creator")),
        frequency=frequency, issued=_iso(data.get("issued")), modified=_iso(data.get("modified")),
        temporal=temporal, spatial_ags=ags, bbox=list(bbox) if bbox else None,
        source_system=source_system, conforms_to=conforms_to,
        landing_page=str(data.get("landing_page") or ""), edition=edition,
        translations=translations, distributions=distributions, extras=dict(extras),
        state=state, origin=origin,
        source_url=str(data.get("source_url") or ""))


def _distributions(items: Any, vocab: Vocabularies, record_id: str,
                   errors: dict[str, str]) -> list[Distribution]:
    """Distributions with EU format codes (guessed from the URL when not given) and ids."""
    out: list[Distribution] = []
    seen: set[str] = set()
    for i, d in enumerate(items or [], 1):
        if not isinstance(d, dict) or not d.get("url"):
            errors[f"distributions[{i}]"] = "needs at least a url"
            continue
        url, raw = str(d["url"]), str(d.get("format") or "").strip()
        fmt = vocab.formats.find(raw) if raw else vocab.format_of(url)
        if raw and fmt is None:
            errors[f"distributions[{i}].format"] = f"unknown format {raw!r}"
            continue
        size = d.get("size")
        if size not in (None, "") and not (str(size).isdigit()):
            errors[f"distributions[{i}].size"] = f"{size!r} is not a number of bytes"
            continue
        dist_id = str(d.get("id") or "") or str(uuid.uuid5(uuid.UUID(record_id), url)
                                                if _is_uuid(record_id) else uuid.uuid4())
        if problem := link_problem(url, WEB, upload_path(record_id, dist_id)):
            errors[f"distributions[{i}].url"] = problem + " (or a file uploaded to the hub)"
            continue
        while dist_id in seen:  # the same URL twice in one record
            dist_id = str(uuid.uuid5(uuid.UUID(dist_id), "again"))
        seen.add(dist_id)
        out.append(Distribution(
            title=str(d.get("title") or (fmt.code if fmt else "")), format=fmt.code if fmt else "",
            url=url, kind=str(d.get("kind", "download")),
            media_type=str(d.get("media_type") or (fmt.extra.get("media_type", "") if fmt
                                                   else "")),
            description=str(d.get("description") or ""), id=dist_id,
            size=int(size) if size not in (None, "") else None, hash=str(d.get("hash") or ""),
            created=d.get("created") or None, modified=d.get("modified") or None,
            upload=str(d.get("upload") or "")))
    return out


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _texts(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items() if v not in (None, "")} \
        if isinstance(value, dict) else {}


def _person(value: Any) -> dict[str, str]:
    """A contact or creator: texts, the e-mail address without a `mailto:` in front."""
    person = _texts(value)
    if person.get("email", "").lower().startswith("mailto:"):
        person["email"] = person["email"][len("mailto:"):]
    return person


def _list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,;]", value) if v.strip()]
    return [str(v) for v in value]


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "ja", "yes", "1", "x")
    return bool(value)


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _iso(value: Any) -> str | None:
    d = _date(value) if value else None
    return d.isoformat() if d else None
