"""The job queue, the organisations' to-do items and the e-mail reminders sent (hub/jobs/).

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
FLOAT = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    # A store whose `alembic_version` is missing (made before migrations, see 0001) is
    # stamped at the baseline and brought up again: what exists already is kept.
    made = set(sa.inspect(op.get_bind()).get_table_names())
    if "jobs" not in made:
        _jobs()
    if "todos" not in made:
        _todos()
    if "reminders" not in made:
        _reminders()
    op.create_index("jobs_state_created", "jobs", ["state", "created"], if_not_exists=True)
    op.create_index("jobs_one_writer", "jobs", ["dataset"], unique=True, if_not_exists=True,
                    sqlite_where=sa.text("state = 'running'"),
                    postgresql_where=sa.text("state = 'running'"))
    op.create_index("todos_open", "todos", ["dataset", "kind"], unique=True, if_not_exists=True,
                    sqlite_where=sa.text("resolved IS NULL"),
                    postgresql_where=sa.text("resolved IS NULL"))


def _jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", TEXT, primary_key=True),
        sa.Column("kind", TEXT, nullable=False),
        sa.Column("params", TEXT, nullable=False),
        sa.Column("organization", TEXT, nullable=False),
        sa.Column("dataset", TEXT),
        sa.Column("submitted_by", TEXT, nullable=False),
        sa.Column("state", TEXT, nullable=False),
        sa.Column("progress", FLOAT, nullable=False, server_default=sa.text("0")),
        sa.Column("message", TEXT, nullable=False, server_default=""),
        sa.Column("result", TEXT),
        sa.Column("error", TEXT),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default=sa.text("3")),
        sa.Column("claimed_by", TEXT),
        sa.Column("heartbeat", TEXT),
        sa.Column("lease_expires", TEXT),
        sa.Column("created", TEXT, nullable=False),
        sa.Column("started", TEXT),
        sa.Column("finished", TEXT),
    )


def _todos() -> None:
    op.create_table(
        "todos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organization", TEXT, nullable=False),
        sa.Column("dataset", TEXT, nullable=False),
        sa.Column("kind", TEXT, nullable=False),
        sa.Column("since", TEXT, nullable=False),
        sa.Column("detail", TEXT, nullable=False, server_default=""),
        sa.Column("resolved", TEXT),
        sqlite_autoincrement=True,
    )


def _reminders() -> None:
    op.create_table(
        "reminders",
        sa.Column("dataset", TEXT, primary_key=True),
        sa.Column("kind", TEXT, primary_key=True),
        sa.Column("period", TEXT, primary_key=True),
        sa.Column("recipient", TEXT, nullable=False),
        sa.Column("sent", TEXT, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reminders")
    op.drop_index("todos_open", "todos")
    op.drop_table("todos")
    op.drop_index("jobs_one_writer", "jobs")
    op.drop_index("jobs_state_created", "jobs")
    op.drop_table("jobs")
