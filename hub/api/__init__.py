"""Programming interfaces of the hub: CKAN Action API, OGC APIs."""
