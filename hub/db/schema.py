"""Every table of the hub's database, in one place (SQLAlchemy Core).

This is the schema at the newest migration (hub/db/migrations/); a change here goes with a
new migration. Text columns compare byte-wise on PostgreSQL too (collation "C"), as SQLite's
do, so names sort and ISO timestamps compare the same on both backends.

The catalog's full-text index (`catalog_words`) is a plain table both backends query with the
same SQL, so search answers alike on each (see hub.catalog.index).
"""

from __future__ import annotations

from sqlalchemy import (
    REAL,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import postgresql

metadata = MetaData()

TEXT = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
FLOAT = Double().with_variant(REAL(), "sqlite")


def _text(name: str, *args: object, **kwargs: object) -> Column:
    return Column(name, TEXT, *args, **kwargs)


# -- the version store (hub/store/versions.py) ----------------------------------------------------

datasets = Table(
    "datasets", metadata,
    _text("name", primary_key=True),
    _text("title", nullable=False),
    _text("organization", nullable=False),
    _text("access", nullable=False),
    _text("update_frequency", nullable=False),
    _text("pipeline", nullable=False),
    _text("attribution", nullable=False, server_default=""),
    Column("current_version", Integer),
    _text("created", nullable=False),
    _text("updated", nullable=False),
)

versions = Table(
    "versions", metadata,
    _text("dataset", ForeignKey("datasets.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    _text("checksum", nullable=False),
    _text("schema", nullable=False),
    _text("bbox"),
    _text("geometry_types"),
    _text("source_crs"),
    _text("source_fingerprint", nullable=False),
    _text("source_state", nullable=False),
    _text("pipeline_hash", nullable=False),
    _text("started", nullable=False),
    _text("finished", nullable=False),
    _text("run_by", nullable=False),
    _text("report", nullable=False),
    Column("purged", Integer, nullable=False, server_default=text("0")),
    _text("broken"),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    _text("dataset", nullable=False),
    _text("at", nullable=False),
    _text("kind", nullable=False),
    Column("version", Integer),
    _text("who", nullable=False),
    _text("detail", nullable=False, server_default=""),
    sqlite_autoincrement=True,
)

# -- accounts (hub/accounts.py) -------------------------------------------------------------------

users = Table(
    "users", metadata,
    _text("name", primary_key=True),
    _text("id", nullable=False, unique=True),
    _text("fullname", nullable=False, server_default=""),
    _text("email", nullable=False, server_default=""),
    _text("organization", nullable=False),
    _text("role", nullable=False),
    _text("state", nullable=False, server_default="active"),
    _text("created", nullable=False),
    _text("password"),       # its Argon2id hash; None: cannot sign in with a password
    _text("totp_secret"),    # the confirmed TOTP secret (base32); None: no second factor
    _text("totp_pending"),   # a secret being enrolled, until a code from it confirms it
    Column("totp_step", Integer),  # the last time step whose code was accepted (no replays)
)

# One-time recovery codes for a user's second factor, by their SHA-256 (random, 80 bits).
recovery_codes = Table(
    "recovery_codes", metadata,
    _text("hash", primary_key=True),
    _text("user", ForeignKey("users.name"), nullable=False, index=True),
    _text("created", nullable=False),
    _text("used"),
)

tokens = Table(
    "tokens", metadata,
    _text("id", primary_key=True),
    _text("user", ForeignKey("users.name"), nullable=False),
    _text("name", nullable=False),
    _text("hash", nullable=False, unique=True),
    _text("created", nullable=False),
    _text("expires"),
    _text("last_used"),
    _text("revoked"),
)

# Signed-in browsers (hub/web/session.py): by the SHA-256 of the cookie's random id.
sessions = Table(
    "sessions", metadata,
    _text("hash", primary_key=True),
    _text("user", ForeignKey("users.name"), nullable=False, index=True),
    _text("stage", nullable=False),  # how far the sign-in is (hub.web.session: SIGNED_IN, …)
    _text("csrf", nullable=False),   # the token every unsafe request of the session carries
    _text("created", nullable=False),
    _text("seen", nullable=False),
)

# -- the catalog (hub/catalog/index.py, load.py; hub/api/ckan/harvest.py) ------------------------

catalog_records = Table(
    "catalog_records", metadata,
    Column("rid", Integer, primary_key=True),
    _text("id", nullable=False, unique=True),
    _text("name", nullable=False, unique=True),
    _text("record", nullable=False),
    _text("title_sort", nullable=False),
    _text("access", nullable=False),
    _text("modified"),
    Column("minx", FLOAT), Column("miny", FLOAT), Column("maxx", FLOAT), Column("maxy", FLOAT),
    _text("created", nullable=False),
    _text("updated", nullable=False),
    _text("state", nullable=False, server_default="active"),
    Column("revision", Integer, nullable=False, server_default=text("1")),
)

catalog_facets = Table(
    "catalog_facets", metadata,
    Column("rid", Integer, nullable=False),
    _text("facet", nullable=False),
    _text("value", nullable=False),
    Index("catalog_facets_rid", "rid", "facet"),
    Index("catalog_facets_value", "facet", "value", "rid"),
)

catalog_organizations = Table(
    "catalog_organizations", metadata,
    _text("id", primary_key=True),
    _text("organization", nullable=False),
    _text("created", nullable=False),
)

catalog_meta = Table(
    "catalog_meta", metadata,
    _text("key", primary_key=True),
    _text("value", nullable=False),
)

# What `hub catalog load` last wrote into each record (the base of its three-way merge).
catalog_loads = Table(
    "catalog_loads", metadata,
    _text("id", primary_key=True),
    _text("source", nullable=False),
    _text("fields", nullable=False),
    _text("loaded", nullable=False),
)

harvest_sources = Table(
    "harvest_sources", metadata,
    _text("url", primary_key=True),
    _text("organization"),
    _text("last_started", nullable=False),
    _text("last_finished", nullable=False),
    Column("datasets", Integer, nullable=False),
)


# Rebuilt from the records (not backed up): the facets and the full-text index.
DERIVED_TABLES = ("catalog_facets", "catalog_words")  # catalog_words: below
# The tables that hold state, which a backup takes.
STATE_TABLES = tuple(sorted(name for name in metadata.tables if name not in DERIVED_TABLES))


# -- the catalog's full-text index (issue 14, seam2; hub/catalog/index.py) -----------------------

# Every folded word of a record's text columns (title, description, keywords, resources,
# other) at its position in the column: words match by prefix (a range on `word`), phrases
# by consecutive positions. Derived from the records, like the facets.
catalog_words = Table(
    "catalog_words", metadata,
    Column("rid", Integer, primary_key=True),
    _text("field", primary_key=True),
    Column("pos", Integer, primary_key=True),
    _text("word", nullable=False),
    Index("catalog_words_word", "word", "field", "rid"),
)
