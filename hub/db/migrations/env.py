"""Alembic's entry point: runs the migrations on the connection hub.db.migrate hands over
(inside its transaction and lock); there is no alembic.ini and no URL here."""

from __future__ import annotations

from alembic import context

from hub.db.schema import metadata, outside_metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite",
                  include_name=lambda name, kind, _: not outside_metadata(name, kind))
with context.begin_transaction():
    context.run_migrations()
