"""CKAN-compatible Action API v3 (see ../shared/reference/ckan-dcat.md §1-2)."""
