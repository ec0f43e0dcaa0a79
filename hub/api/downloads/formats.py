"""The download formats, and the licence facts every file carries where its format allows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

# Bumped whenever the bytes the hub writes for the same version change (encoder fixes, new
# metadata): it is part of every ETag and export file name, so caches never mix revisions.
REVISION = 1


@dataclass(frozen=True)
class Format:
    """One file format the hub offers for every version of every dataset."""

    ext: str
    media_type: str
    title: str
    streamed: bool  # made per request from Arrow batches; else a file built once per version
    compressible: bool  # gzip on request (text formats only; files are served with Range)


FORMATS: dict[str, Format] = {f.ext: f for f in (
    Format("geojson", "application/geo+json", "GeoJSON", streamed=True, compressible=True),
    Format("csv", "text/csv; charset=utf-8", "CSV", streamed=True, compressible=True),
    Format("gpkg", "application/geopackage+sqlite3", "GeoPackage", False, False),
    Format("parquet", "application/vnd.apache.parquet", "GeoParquet", False, False),
    Format("fgb", "application/flatgeobuf", "FlatGeobuf", False, False),
)}


@dataclass(frozen=True)
class Terms:
    """What a file says about itself: title, licence and the attribution its licence requires.

    Taken from the catalog record (licence, attribution) and the store (title, and the
    pipeline's attribution when the catalog has none)."""

    title: str = ""
    license_url: str = ""
    license_title: str = ""
    attribution: str = ""

    @property
    def digest(self) -> str:
        """A short hash of the terms: part of ETags and export names, since files embed them."""
        text = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def metadata(self) -> dict[str, str]:
        """The non-empty terms as key/value metadata (GeoPackage, FlatGeobuf, GeoParquet)."""
        return {k: v for k, v in (("title", self.title), ("license", self.license_url),
                                  ("license_title", self.license_title),
                                  ("attribution", self.attribution)) if v}

    def sentence(self) -> str:
        """One line for description fields: "Lizenz: … (URL). Quellenangabe: …"."""
        parts = []
        if self.license_title or self.license_url:
            licence = self.license_title or self.license_url
            if self.license_url and self.license_title:
                licence += f" ({self.license_url})"
            parts.append(f"Lizenz: {licence}.")
        if self.attribution:
            parts.append(f"Quellenangabe: {self.attribution}")
        return " ".join(parts)
