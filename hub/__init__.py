"""District data hub: ingest, store, catalog and publish the open data of a German district."""

__version__ = "0.1.0"
