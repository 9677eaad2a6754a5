"""HTTP clients of the service's APIs (need the `client` extra: httpx)."""
