"""The persistence seam: every table of the hub goes through `Database` (SQLite by default,
PostgreSQL through psycopg 3), one schema (hub.db.schema) and versioned migrations
(hub.db.migrate, Alembic)."""

from hub.db.database import FILE, Database, DatabaseError, open_sqlite

__all__ = ["FILE", "Database", "DatabaseError", "open_sqlite"]
