"""The audit trail (hash-chained, append-only) and the daily usage counts.

Revision ID: 0007
Revises: 0005 (re-chained after the merge with ws-jobs)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    present = sa.inspect(op.get_bind()).get_table_names()
    if "audit" not in present:
        op.create_table(
            "audit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("at", TEXT, nullable=False),
            sa.Column("actor", TEXT, nullable=False),
            sa.Column("action", TEXT, nullable=False),
            sa.Column("subject", TEXT, nullable=False),
            sa.Column("before", TEXT),
            sa.Column("after", TEXT),
            sa.Column("prev_hash", TEXT, nullable=False, unique=True),
            sa.Column("hash", TEXT, nullable=False, unique=True),
        )
    op.create_index("ix_audit_subject", "audit", ["subject"], if_not_exists=True)
    op.create_index("ix_audit_actor", "audit", ["actor"], if_not_exists=True)
    if "usage" not in present:
        op.create_table(
            "usage",
            sa.Column("day", TEXT, primary_key=True),
            sa.Column("dataset", TEXT, primary_key=True),
            sa.Column("kind", TEXT, primary_key=True),
            sa.Column("count", sa.Integer, nullable=False),
        )
    op.create_index("ix_usage_dataset", "usage", ["dataset", "day"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_usage_dataset", "usage")
    op.drop_table("usage")
    op.drop_index("ix_audit_actor", "audit")
    op.drop_index("ix_audit_subject", "audit")
    op.drop_table("audit")
