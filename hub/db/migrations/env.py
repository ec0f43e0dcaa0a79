"""Alembic's entry point: runs the migrations on the connection hub.db.migrate hands over
(inside its transaction and lock); there is no alembic.ini and no URL here."""

from __future__ import annotations

from alembic import context

from hub.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
