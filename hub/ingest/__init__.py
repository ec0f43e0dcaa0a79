"""Ingestion: declarative pipelines that fetch, read, validate and reproject sources."""
