"""Sign-in: users' password hashes and TOTP second factor, and their recovery codes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
USER_COLUMNS = ("password", "totp_secret", "totp_pending")


def upgrade() -> None:
    """Adds what the database lacks (like the baseline, it may meet a store that a newer hub
    made and an older one left without its migration record)."""
    inspect = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspect.get_columns("users")}
    with op.batch_alter_table("users") as users:
        for name in USER_COLUMNS:
            if name not in present:
                users.add_column(sa.Column(name, TEXT))
        if "totp_step" not in present:
            users.add_column(sa.Column("totp_step", sa.Integer))
    if "recovery_codes" not in inspect.get_table_names():
        op.create_table(
            "recovery_codes",
            sa.Column("hash", TEXT, primary_key=True),
            sa.Column("user", TEXT, sa.ForeignKey("users.name"), nullable=False),
            sa.Column("created", TEXT, nullable=False),
            sa.Column("used", TEXT),
        )
    op.create_index("ix_recovery_codes_user", "recovery_codes", ["user"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_recovery_codes_user", "recovery_codes")
    op.drop_table("recovery_codes")
    with op.batch_alter_table("users") as users:
        for name in (*USER_COLUMNS, "totp_step"):
            users.drop_column(name)
