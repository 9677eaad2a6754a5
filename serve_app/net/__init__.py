"""Outbound HTTP to client-given URLs: the SSRF guard and the pinned, capped client."""
