"""Pipeline definitions saved in the workspace (every save a revision, with who and when).

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    tables = sa.inspect(op.get_bind()).get_table_names()
    if "pipeline_definitions" not in tables:
        op.create_table(
            "pipeline_definitions",
            sa.Column("dataset", TEXT, primary_key=True),
            sa.Column("revision", sa.Integer, primary_key=True),
            sa.Column("text", TEXT, nullable=False),
            sa.Column("saved_by", TEXT, nullable=False),
            sa.Column("saved", TEXT, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("pipeline_definitions")
