"""Public aggregates an admin allowed (hub/ingest/allowances.py).

Revision ID: 0010
Revises: 0008 (the lead re-chains the migrations of this wave at merge)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    if "public_aggregates" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(
            "public_aggregates",
            sa.Column("input", TEXT, primary_key=True),
            sa.Column("derived", TEXT, primary_key=True),
            sa.Column("allowed_by", TEXT, nullable=False),
            sa.Column("allowed", TEXT, nullable=False),
            sa.Column("reason", TEXT, nullable=False, server_default=""),
        )


def downgrade() -> None:
    op.drop_table("public_aggregates")
