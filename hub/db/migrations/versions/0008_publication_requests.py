"""Publication requests of the workspace (an editor asks, a publisher approves).

Revision ID: 0008
Revises: 0007 (0003 in the brief; chained after ws-audit's 0007, merged into this branch)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    if "publication_requests" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(
            "publication_requests",
            sa.Column("record", TEXT, primary_key=True),
            sa.Column("target", TEXT, nullable=False),
            sa.Column("requested_by", TEXT, nullable=False),
            sa.Column("requested", TEXT, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("publication_requests")
