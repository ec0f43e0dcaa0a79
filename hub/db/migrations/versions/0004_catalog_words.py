"""The catalog's full-text index as a plain table both backends query alike (issue 14):
`catalog_words` replaces SQLite's FTS5 table `catalog_text`. The catalog fills it from the
records when it next opens (`INDEX_VERSION` in hub/catalog/index.py changed).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TEXT = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
CATALOG_TEXT = ("CREATE VIRTUAL TABLE IF NOT EXISTS catalog_text USING fts5("
                "title, description, keywords, resources, other, "
                "tokenize = 'unicode61 remove_diacritics 0', prefix = '3 5')")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS catalog_text")
    if "catalog_words" not in sa.inspect(bind).get_table_names():
        op.create_table(
            "catalog_words",
            sa.Column("rid", sa.Integer, primary_key=True),
            sa.Column("field", TEXT, primary_key=True),
            sa.Column("pos", sa.Integer, primary_key=True),
            sa.Column("word", TEXT, nullable=False),
        )
    op.create_index("catalog_words_word", "catalog_words", ["word", "field", "rid"],
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_index("catalog_words_word", "catalog_words")
    op.drop_table("catalog_words")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(CATALOG_TEXT)  # filled by the catalog of that hub (its index version)
