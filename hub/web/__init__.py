"""Web surfaces of the hub."""
