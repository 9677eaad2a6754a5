"""Which reverse proxies may name the client: the HTTP proxy's ``X-Forwarded-For`` trust.

Ray Serve's HTTP proxy runs uvicorn, which replaces the socket's peer address with the
last untrusted ``X-Forwarded-For`` hop when the peer is in ``FORWARDED_ALLOW_IPS`` —
by default ``127.0.0.1,::1``. With that default any loopback client can claim to be
anyone, and every per-address limiter (logins, failed authentications, anonymous
stories) sees a new client per request. The service therefore starts Ray with the
variable set from the ``http.trusted_proxies`` setting (empty: the socket peer is the
client); uvicorn reads it in the proxy process when Serve starts, so it has to be in
the environment of whatever starts the Ray cluster.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence

#: The variable uvicorn reads for its trusted-proxy list.
PROXY_TRUST_VARIABLE = "FORWARDED_ALLOW_IPS"
#: What uvicorn trusts when the variable is unset.
UVICORN_DEFAULT_TRUST = ("127.0.0.1", "::1")


def proxy_trust_environment(trusted_proxies: Sequence[str]) -> dict[str, str]:
    """The environment that makes Serve's HTTP proxy trust exactly ``trusted_proxies``."""
    return {PROXY_TRUST_VARIABLE: ",".join(item.strip() for item in trusted_proxies)}


def proxy_trust_in_effect(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The proxies uvicorn would trust in a process with this environment."""
    value = environ.get(PROXY_TRUST_VARIABLE)
    if value is None:
        return UVICORN_DEFAULT_TRUST
    return tuple(item for item in (part.strip() for part in value.split(",")) if item)


def check_proxy_entry(entry: str) -> str:
    """``entry`` if it is an IP address or network (``10.0.0.0/8``); else ValueError."""
    ipaddress.ip_network(entry.strip(), strict=False)
    return entry.strip()


def proxy_trust_mismatch(
    configured: Sequence[str], environ: Mapping[str, str] = os.environ
) -> str | None:
    """Why this process's proxy trust differs from ``configured`` (None if it does not)."""
    in_effect = proxy_trust_in_effect(environ)
    if set(in_effect) == set(configured):
        return None
    return (
        f"Serve's HTTP proxy may trust X-Forwarded-For from {', '.join(in_effect) or 'nobody'}"
        f" but http.trusted_proxies is [{', '.join(configured)}]: per-address limits can be"
        f" evaded; start Ray with {PROXY_TRUST_VARIABLE}={','.join(configured)!r}"
        " (serve-app serve does)"
    )
