"""The HTTP proxy's X-Forwarded-For trust, as uvicorn (Serve's proxy server) applies it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from serve_app.config import Settings
from serve_app.net.proxy_trust import (
    PROXY_TRUST_VARIABLE,
    UVICORN_DEFAULT_TRUST,
    proxy_trust_environment,
    proxy_trust_in_effect,
    proxy_trust_mismatch,
)


async def client_seen_by_app(trusted: str, peer: str, forwarded_for: str) -> str:
    """The client address an app behind uvicorn's proxy-header middleware sees."""
    seen: list[str] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen.append(scope["client"][0])

    middleware = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
    scope = {
        "type": "http",
        "client": (peer, 50000),
        "scheme": "http",
        "headers": [(b"x-forwarded-for", forwarded_for.encode())],
    }
    await middleware(scope, None, None)  # type: ignore[arg-type]
    return seen[0]


async def test_no_trusted_proxy_keeps_the_socket_peer() -> None:
    env = proxy_trust_environment([])
    assert env == {PROXY_TRUST_VARIABLE: ""}
    assert await client_seen_by_app(env[PROXY_TRUST_VARIABLE], "127.0.0.1", "203.0.113.9") == (
        "127.0.0.1"
    )


async def test_uvicorn_default_believes_loopback_peers() -> None:
    """What the service guards against: the default lets a local client pick its address."""
    default = ",".join(UVICORN_DEFAULT_TRUST)
    assert await client_seen_by_app(default, "127.0.0.1", "203.0.113.9") == "203.0.113.9"


async def test_a_trusted_network_names_the_client() -> None:
    trusted = proxy_trust_environment(["10.0.0.0/8"])[PROXY_TRUST_VARIABLE]
    assert await client_seen_by_app(trusted, "10.1.2.3", "198.51.100.7") == "198.51.100.7"
    assert await client_seen_by_app(trusted, "192.0.2.1", "198.51.100.7") == "192.0.2.1"


def test_trust_in_effect_and_mismatch() -> None:
    assert proxy_trust_in_effect({}) == UVICORN_DEFAULT_TRUST
    assert proxy_trust_in_effect({PROXY_TRUST_VARIABLE: ""}) == ()
    assert proxy_trust_mismatch([], {PROXY_TRUST_VARIABLE: ""}) is None
    message = proxy_trust_mismatch([], {})
    assert message is not None and "127.0.0.1" in message and PROXY_TRUST_VARIABLE in message
    assert proxy_trust_mismatch(["10.0.0.1"], {PROXY_TRUST_VARIABLE: " 10.0.0.1 "}) is None


def test_setting_accepts_addresses_and_networks_only() -> None:
    settings = Settings(http={"trusted_proxies": ["10.0.0.0/8", "::1", "192.0.2.4"]})
    assert settings.http.trusted_proxies == ["10.0.0.0/8", "::1", "192.0.2.4"]
    with pytest.raises(ValidationError):
        Settings(http={"trusted_proxies": ["proxy.example"]})
