"""Baseline: the schema of the hub before migrations (issues 1–10).

On a new database it creates every table. On a store made before migrations existed (SQLite,
no `alembic_version`) it keeps every table that is there, rows and definition untouched,
applies the column changes older hubs made on open (attribution, broken, the catalog's row
ids, states and revisions) and creates only the tables that store lacks; Alembic then stamps
the store with this revision.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
FLOAT = sa.Double().with_variant(sa.REAL(), "sqlite")


def _text(name: str, *args: object, **kwargs: object) -> sa.Column:
    return sa.Column(name, TEXT, *args, **kwargs)


TABLES: dict[str, tuple] = {
    "datasets": (
        _text("name", primary_key=True),
        _text("title", nullable=False),
        _text("organization", nullable=False),
        _text("access", nullable=False),
        _text("update_frequency", nullable=False),
        _text("pipeline", nullable=False),
        _text("attribution", nullable=False, server_default=""),
        sa.Column("current_version", sa.Integer),
        _text("created", nullable=False),
        _text("updated", nullable=False),
    ),
    "versions": (
        _text("dataset", sa.ForeignKey("datasets.name"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
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
        sa.Column("purged", sa.Integer, nullable=False, server_default=sa.text("0")),
        _text("broken"),
    ),
    "events": (
        sa.Column("id", sa.Integer, primary_key=True),
        _text("dataset", nullable=False),
        _text("at", nullable=False),
        _text("kind", nullable=False),
        sa.Column("version", sa.Integer),
        _text("who", nullable=False),
        _text("detail", nullable=False, server_default=""),
    ),
    "catalog_records": (
        sa.Column("rid", sa.Integer, primary_key=True),
        _text("id", nullable=False, unique=True),
        _text("name", nullable=False, unique=True),
        _text("record", nullable=False),
        _text("title_sort", nullable=False),
        _text("access", nullable=False),
        _text("modified"),
        sa.Column("minx", FLOAT), sa.Column("miny", FLOAT),
        sa.Column("maxx", FLOAT), sa.Column("maxy", FLOAT),
        _text("created", nullable=False),
        _text("updated", nullable=False),
        _text("state", nullable=False, server_default="active"),
        sa.Column("revision", sa.Integer, nullable=False, server_default=sa.text("1")),
    ),
    "catalog_facets": (
        sa.Column("rid", sa.Integer, nullable=False),
        _text("facet", nullable=False),
        _text("value", nullable=False),
    ),
    "catalog_organizations": (
        _text("id", primary_key=True),
        _text("organization", nullable=False),
        _text("created", nullable=False),
    ),
    "catalog_meta": (
        _text("key", primary_key=True),
        _text("value", nullable=False),
    ),
    "catalog_loads": (
        _text("id", primary_key=True),
        _text("source", nullable=False),
        _text("fields", nullable=False),
        _text("loaded", nullable=False),
    ),
    "users": (
        _text("name", primary_key=True),
        _text("id", nullable=False, unique=True),
        _text("fullname", nullable=False, server_default=""),
        _text("email", nullable=False, server_default=""),
        _text("organization", nullable=False),
        _text("role", nullable=False),
        _text("state", nullable=False, server_default="active"),
        _text("created", nullable=False),
    ),
    "tokens": (
        _text("id", primary_key=True),
        _text("user", sa.ForeignKey("users.name"), nullable=False),
        _text("name", nullable=False),
        _text("hash", nullable=False, unique=True),
        _text("created", nullable=False),
        _text("expires"),
        _text("last_used"),
        _text("revoked"),
    ),
    "harvest_sources": (
        _text("url", primary_key=True),
        _text("organization"),
        _text("last_started", nullable=False),
        _text("last_finished", nullable=False),
        sa.Column("datasets", sa.Integer, nullable=False),
    ),
}
OPTIONS = {"events": {"sqlite_autoincrement": True}}
INDEXES = {"catalog_facets_rid": ("catalog_facets", ["rid", "facet"]),
           "catalog_facets_value": ("catalog_facets", ["facet", "value", "rid"])}
CATALOG_TEXT = ("CREATE VIRTUAL TABLE IF NOT EXISTS catalog_text USING fts5("
                "title, description, keywords, resources, other, "
                "tokenize = 'unicode61 remove_diacritics 0', prefix = '3 5')")


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        _bring_forward(bind)
    present = set(sa.inspect(bind).get_table_names())
    for name, columns in TABLES.items():
        if name not in present:
            op.create_table(name, *columns, **OPTIONS.get(name, {}))
    for index, (table, columns) in INDEXES.items():
        op.create_index(index, table, columns, if_not_exists=True)
    if sqlite:
        op.execute(CATALOG_TEXT)


def _bring_forward(bind: sa.Connection) -> None:
    """The changes hubs before migrations made to their own tables when they opened a store."""

    def columns(table: str) -> set[str]:
        return {row[1] for row in bind.exec_driver_sql(f"PRAGMA table_info({table})")}

    datasets, versions = columns("datasets"), columns("versions")
    if datasets and "attribution" not in datasets:
        op.execute("ALTER TABLE datasets ADD COLUMN attribution TEXT NOT NULL DEFAULT ''")
    if versions and "broken" not in versions:
        op.execute("ALTER TABLE versions ADD COLUMN broken TEXT")
    records = columns("catalog_records")
    if records and "rid" not in records:  # before integer row keys: the index is rebuilt
        for table in ("catalog_records", "catalog_facets", "catalog_text"):
            op.execute(f"DROP TABLE IF EXISTS {table}")
        records = set()
    if records and "state" not in records:
        op.execute("ALTER TABLE catalog_records ADD COLUMN state TEXT NOT NULL "
                   "DEFAULT 'active'")
    if records and "revision" not in records:
        op.execute("ALTER TABLE catalog_records ADD COLUMN revision INTEGER NOT NULL "
                   "DEFAULT 1")
    text = columns("catalog_text")
    if text and "title" not in text:
        op.execute("DROP TABLE catalog_text")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS catalog_text")
    for name in reversed(TABLES):
        op.drop_table(name)
