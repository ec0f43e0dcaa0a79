"""Server-side sessions of signed-in browsers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    if "sessions" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(
            "sessions",
            sa.Column("hash", TEXT, primary_key=True),
            sa.Column("user", TEXT, sa.ForeignKey("users.name"), nullable=False),
            sa.Column("stage", TEXT, nullable=False),
            sa.Column("csrf", TEXT, nullable=False),
            sa.Column("created", TEXT, nullable=False),
            sa.Column("seen", TEXT, nullable=False),
        )
    op.create_index("ix_sessions_user", "sessions", ["user"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_sessions_user", "sessions")
    op.drop_table("sessions")
