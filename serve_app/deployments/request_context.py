"""The request id inside a replica: explicit, or from Ray Serve's request context.

Ray Serve's proxy copies the ``X-Request-ID`` header (set by the client, or generated
by the proxy, and reused by the ingress's middleware) into a request context that
follows every handle call, so deployments that receive no id can still log it.
"""

from __future__ import annotations


def current_request_id(explicit: str = "") -> str:
    """``explicit`` when given, else Serve's request id for this call ("" outside one)."""
    if explicit:
        return explicit
    try:
        from ray.serve.context import _get_serve_request_context

        return str(_get_serve_request_context().request_id or "")
    except Exception:  # private API: never fail a request over a log field
        return ""
