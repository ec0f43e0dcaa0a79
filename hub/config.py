"""Settings: where the project and the store are, the district's extent, limits.

Read from the environment (HUB_ROOT, HUB_STORE, HUB_DATABASE_URL, HUB_RETENTION, HUB_HTTP_TIMEOUT,
HUB_MAX_SOURCE_BYTES, HUB_MAX_UPLOAD_BYTES, HUB_BASE_URL, HUB_MAX_*_SHARE, HUB_CATALOG,
HUB_TOTP_ROLES, HUB_STORAGE_URL, HUB_OIDC_*) and from
`catalog/district.yaml` of the project root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from hub.errors import PipelineError
from hub.ingest.geometry import Extent
from hub.ingest.guard import Limits
from hub.ingest.sources import FetchSettings

if TYPE_CHECKING:
    from hub.db import Database

DATABASE_SCHEMES = ("postgresql://", "postgresql+psycopg://")  # of HUB_DATABASE_URL


@dataclass(frozen=True)
class OidcSettings:
    """Sign-in with the district's OpenID Connect provider (hub/oidc.py), from HUB_OIDC_*:
    the issuer (its discovery document is `<issuer>/.well-known/openid-configuration`), this
    hub's client id and secret there, the scopes asked for, the button's label, and the
    `amr` / `acr` values of the provider that count as a second factor (none by default: then a
    role in HUB_TOTP_ROLES also needs the hub's own TOTP after the provider)."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"
    label: str = "Dienstkonto"
    mfa_amr: frozenset[str] = frozenset()
    mfa_acr: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OidcSettings | None:
        """The settings, or None when HUB_OIDC_ISSUER is unset (no OpenID Connect sign-in)."""
        issuer = env.get("HUB_OIDC_ISSUER", "").strip()
        if not issuer:
            return None
        if not issuer.startswith(("https://", "http://")):
            raise PipelineError(f"HUB_OIDC_ISSUER={issuer!r}: expected the provider's "
                                "https:// URL (its issuer, as its discovery document names it)")
        client_id = env.get("HUB_OIDC_CLIENT_ID", "").strip()
        secret = env.get("HUB_OIDC_CLIENT_SECRET", "")
        if not client_id or not secret:
            raise PipelineError("HUB_OIDC_ISSUER is set: HUB_OIDC_CLIENT_ID and "
                                "HUB_OIDC_CLIENT_SECRET are needed too (this hub's client at "
                                "the provider)")
        scopes = " ".join(env.get("HUB_OIDC_SCOPES", cls.scopes).replace(",", " ").split())
        if "openid" not in scopes.split():
            raise PipelineError(f"HUB_OIDC_SCOPES={scopes!r}: must contain 'openid'")
        return cls(issuer=issuer, client_id=client_id, client_secret=secret, scopes=scopes,
                   label=env.get("HUB_OIDC_LABEL", "").strip() or cls.label,
                   mfa_amr=_words(env.get("HUB_OIDC_MFA_AMR", "")),
                   mfa_acr=_words(env.get("HUB_OIDC_MFA_ACR", "")))


@dataclass(frozen=True)
class Settings:
    root: Path
    store: Path
    retention: int = 10
    fetch: FetchSettings = field(default_factory=FetchSettings)
    district: str = ""
    extent: Extent | None = None
    max_upload: int = 100 << 20  # bytes of one file uploaded through the API
    base_url: str = ""  # public URL of the hub (default: the URL a request came to)
    # Roles that must sign in with a second factor (HUB_TOTP_ROLES, comma-separated).
    totp_roles: frozenset[str] = frozenset()
    guard: Limits = field(default_factory=Limits)  # against near-empty versions
    # False only when asked for explicitly (HUB_CATALOG=none): serve the store without a
    # catalog, by the pipelines' access alone; otherwise a catalog that cannot be opened is
    # an error, never a reason to fall back to the pipelines' access (see hub.access)
    catalog: bool = True
    # The database (HUB_DATABASE_URL, PostgreSQL); "": the SQLite file in the store's folder
    database_url: str = ""

    def database(self) -> Database:
        """The store's database: PostgreSQL at `database_url`, else the store's SQLite file."""
        from hub.db import Database

        return Database(self.database_url) if self.database_url else \
            Database.for_store(self.store)
    # Sign-in with the district's OpenID Connect provider (HUB_OIDC_*); None: not offered
    oidc: OidcSettings | None = None
    # Where the versions' files live (HUB_STORAGE_URL): "" = the store folder, or
    # s3://bucket/prefix (hub.storage; the store opens it from the same variable)
    storage_url: str = ""

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    @property
    def schemas_dir(self) -> Path:
        return self.root / "schemas"


def load_settings(root: Path | str | None = None, store: Path | str | None = None) -> Settings:
    root = Path(root or os.environ.get("HUB_ROOT") or Path.cwd()).resolve()
    store = Path(store or os.environ.get("HUB_STORE") or root / "store").resolve()
    district, extent = "", None
    district_file = root / "catalog" / "district.yaml"
    if district_file.exists():
        try:
            spec = yaml.safe_load(district_file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise PipelineError(f"{district_file}: YAML syntax error: {exc}") from None
        district = str(spec.get("name", ""))
        if spec.get("bbox"):
            extent = Extent.around(spec["bbox"], float(spec.get("extent_buffer_km", 5)))
    catalog = os.environ.get("HUB_CATALOG", "").strip()
    if catalog not in ("", "none"):
        raise PipelineError(f"HUB_CATALOG={catalog!r}: the only value is 'none' (serve the "
                            "store without a catalog); leave it unset to use catalog/")
    database_url = os.environ.get("HUB_DATABASE_URL", "").strip()
    if database_url and not database_url.startswith(DATABASE_SCHEMES):
        raise PipelineError("HUB_DATABASE_URL: expected postgresql://USER@HOST/NAME (or "
                            "postgresql+psycopg://…); leave it unset for the store's SQLite "
                            "file")
    try:
        return Settings(
            root=root, store=store,
            retention=int(os.environ.get("HUB_RETENTION", 10)),
            fetch=FetchSettings(
                timeout=float(os.environ.get("HUB_HTTP_TIMEOUT", 30)),
                max_bytes=int(os.environ.get("HUB_MAX_SOURCE_BYTES", 20 << 30)),
                allow=tuple(os.environ.get("HUB_FETCH_ALLOW", "").replace(",", " ").split())),
            district=district, extent=extent,
            max_upload=int(os.environ.get("HUB_MAX_UPLOAD_BYTES", 100 << 20)),
            base_url=os.environ.get("HUB_BASE_URL", "").rstrip("/"),
            guard=Limits.from_env(), catalog=catalog != "none", database_url=database_url,
            totp_roles=_roles(os.environ.get("HUB_TOTP_ROLES", "")),
            storage_url=_storage_url(os.environ.get("HUB_STORAGE_URL", "")),
            oidc=OidcSettings.from_env(os.environ))
    except ValueError as exc:
        raise PipelineError(f"invalid setting in the environment: {exc}") from None


def _storage_url(value: str) -> str:
    if value and not value.startswith("s3://"):
        raise PipelineError(f"HUB_STORAGE_URL={value!r}: use s3://<bucket>/<prefix>, or leave "
                            "it unset to keep the files in the store folder")
    return value


def _words(value: str) -> frozenset[str]:
    return frozenset(value.replace(",", " ").split())


def _roles(value: str) -> frozenset[str]:
    from hub.access import ROLES

    roles = frozenset(r.strip() for r in value.split(",") if r.strip())
    if unknown := sorted(roles - set(ROLES)):
        raise PipelineError(f"HUB_TOTP_ROLES: unknown role(s) {', '.join(unknown)} (roles: "
                            f"{', '.join(ROLES)})")
    return roles
