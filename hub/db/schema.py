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

# Identities at the district's OpenID Connect provider linked to a user (hub/accounts.py): by
# the provider's issuer and its subject id (`sub`, stable and unique per issuer).
identities = Table(
    "identities", metadata,
    _text("issuer", primary_key=True),
    _text("subject", primary_key=True),
    _text("user", ForeignKey("users.name"), nullable=False, index=True),
    _text("linked", nullable=False),
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

# -- ws-audit: the audit trail (hub/audit.py) and usage counts (hub/usage.py) ------------------

# Append-only, hash-chained: each entry's hash covers its content and the previous entry's hash
# (`prev_hash` is unique, so the chain cannot fork; ids are consecutive, gaps mean deletions).
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    _text("at", nullable=False),
    _text("actor", nullable=False),
    _text("action", nullable=False),
    _text("subject", nullable=False),
    _text("before"),  # JSON
    _text("after"),   # JSON
    _text("prev_hash", nullable=False, unique=True),
    _text("hash", nullable=False, unique=True),
    Index("ix_audit_subject", "subject"),
    Index("ix_audit_actor", "actor"),
)

# Requests per dataset per day (no IP addresses, no user agents): what the server counted in
# memory, added up at each flush. `kind`: view, download, api, tile.
usage = Table(
    "usage", metadata,
    _text("day", primary_key=True),
    _text("dataset", primary_key=True),
    _text("kind", primary_key=True),
    Column("count", Integer, nullable=False),
    Index("ix_usage_dataset", "dataset", "day"),
)

# -- ws-publish: publication requests (hub/catalog/publication.py) ------------------------------

# An editor's open request to publish a record (one per record), until a publisher approves it
# or the record is withdrawn; the publication state itself is the record's (state, access).
publication_requests = Table(
    "publication_requests", metadata,
    _text("record", primary_key=True),  # the record's id
    _text("target", nullable=False),     # internal | public
    _text("requested_by", nullable=False),
    _text("requested", nullable=False),
)



# -- ws-jobs: the job queue, the to-do lists and the reminders (hub/jobs/) -------------------------

# One row per job (hub.jobs.queue). A running job holds a lease (claimed_by, lease_expires),
# renewed by its worker's heartbeat; a job whose lease expired is taken again. At most one job
# per dataset runs at a time (the partial unique index: one writer per dataset, on every
# machine that shares the database).
jobs = Table(
    "jobs", metadata,
    _text("id", primary_key=True),
    _text("kind", nullable=False),
    _text("params", nullable=False),        # JSON
    _text("organization", nullable=False),  # whose job it is (who may see it)
    _text("dataset"),                       # the dataset it writes, if any
    _text("submitted_by", nullable=False),
    _text("state", nullable=False),         # queued, running, done, failed
    Column("progress", FLOAT, nullable=False, server_default=text("0")),
    _text("message", nullable=False, server_default=""),
    _text("result"),                        # JSON, when done
    _text("error"),                         # when failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False, server_default=text("3")),
    _text("claimed_by"),
    _text("heartbeat"),
    _text("lease_expires"),
    _text("created", nullable=False),
    _text("started"),
    _text("finished"),
    Index("jobs_state_created", "state", "created"),
    Index("jobs_one_writer", "dataset", unique=True,
          sqlite_where=text("state = 'running'"), postgresql_where=text("state = 'running'")),
)

# An organisation's open to-do items the worker found ("new file due"); resolved when done.
todos = Table(
    "todos", metadata,
    Column("id", Integer, primary_key=True),
    _text("organization", nullable=False),
    _text("dataset", nullable=False),
    _text("kind", nullable=False),          # file_due
    _text("since", nullable=False),
    _text("detail", nullable=False, server_default=""),
    _text("resolved"),
    Index("todos_open", "dataset", "kind", unique=True,
          sqlite_where=text("resolved IS NULL"), postgresql_where=text("resolved IS NULL")),
    sqlite_autoincrement=True,
)

# E-mail reminders sent: at most one per dataset, kind and period.
reminders = Table(
    "reminders", metadata,
    _text("dataset", primary_key=True),
    _text("kind", primary_key=True),        # stale, file_due
    _text("period", primary_key=True),      # the due date the reminder is about
    _text("recipient", nullable=False),
    _text("sent", nullable=False),
)

# -- ws-upload: pipeline definitions saved in the workspace (hub/ingest/definitions.py) -----------

# Every save is a new revision (who, when); the newest revision of a dataset is in force.
pipeline_definitions = Table(
    "pipeline_definitions", metadata,
    _text("dataset", primary_key=True),
    Column("revision", Integer, primary_key=True),
    _text("text", nullable=False),       # the YAML, exactly as a file in pipelines/
    _text("saved_by", nullable=False),
    _text("saved", nullable=False),
)

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

# -- i11 (issue 11): public aggregates an admin allowed (hub/ingest/allowances.py) -------------

# A derived dataset that may be public although this input is not: an admin's decision beside
# the input owner's `public_derivatives` (hub.access.check_derivation accepts either).
public_aggregates = Table(
    "public_aggregates", metadata,
    _text("input", primary_key=True),    # the non-public dataset read
    _text("derived", primary_key=True),  # the public derived dataset
    _text("allowed_by", nullable=False),
    _text("allowed", nullable=False),
    _text("reason", nullable=False, server_default=""),
)

# Rebuilt from the records (not backed up): the facets and the full-text index.
DERIVED_TABLES = ("catalog_facets", "catalog_words")
# The tables that hold state, which a backup takes.
STATE_TABLES = tuple(sorted(name for name in metadata.tables if name not in DERIVED_TABLES))
