"""The hub's machine interfaces (OGC API, CKAN API, …), each a router factory."""
