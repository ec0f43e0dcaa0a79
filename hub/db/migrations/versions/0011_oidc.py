"""Identities at the district's OpenID Connect provider linked to users (hub/accounts.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    if "identities" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(
            "identities",
            sa.Column("issuer", TEXT, primary_key=True),
            sa.Column("subject", TEXT, primary_key=True),
            sa.Column("user", TEXT, sa.ForeignKey("users.name"), nullable=False),
            sa.Column("linked", TEXT, nullable=False),
        )
    op.create_index("ix_identities_user", "identities", ["user"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_identities_user", "identities")
    op.drop_table("identities")
