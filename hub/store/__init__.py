"""The versioned store (immutable GeoParquet versions, SQLite version log)."""

from hub.store.versions import Dataset, Draft, Store, Version

__all__ = ["Dataset", "Draft", "Store", "Version"]
