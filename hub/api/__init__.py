"""The hub's machine interfaces (CKAN Action API, OGC APIs), each a router factory."""
