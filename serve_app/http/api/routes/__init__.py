"""Routers, one module per resource; each route parses, calls one function, wraps."""
