"""Who may use the Story API without credentials (local anonymous mode)."""

from __future__ import annotations

import pytest

from serve_app.accounts.anonymous import AnonymousStory, is_loopback
from serve_app.accounts.settings import AccountSettings
from serve_app.errors import RateLimited


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.org", False),
        (None, False),
    ],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_admits_loopback_peers_when_listening_on_loopback() -> None:
    policy = AnonymousStory(AccountSettings(), "127.0.0.1")
    assert policy.admits("127.0.0.1", {})
    assert not policy.admits("192.168.1.5", {})
    assert not policy.admits(None, {})


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded", "x-real-ip"])
def test_a_proxied_request_is_never_anonymous(header: str) -> None:
    policy = AnonymousStory(AccountSettings(), "127.0.0.1")
    assert not policy.admits("127.0.0.1", {header: "203.0.113.9"})


@pytest.mark.parametrize(
    ("settings", "listen_host", "trusted"),
    [
        (AccountSettings(anonymous_story=False), "127.0.0.1", ()),
        (AccountSettings(), "0.0.0.0", ()),
        (AccountSettings(), None, ()),
        (AccountSettings(), "127.0.0.1", ("127.0.0.1",)),
    ],
)
def test_off_unless_every_condition_holds(
    settings: AccountSettings, listen_host: str | None, trusted: tuple[str, ...]
) -> None:
    policy = AnonymousStory(settings, listen_host, trusted_proxies=trusted)
    assert not policy.enabled
    assert not policy.admits("127.0.0.1", {})


def test_rate_limited_per_address() -> None:
    now = [0.0]
    settings = AccountSettings(anonymous_story_per_minute=1, anonymous_story_burst=2)
    policy = AnonymousStory(settings, "::1", clock=lambda: now[0])
    assert policy.admits("::1", {}) and policy.admits("::1", {})
    with pytest.raises(RateLimited):
        policy.admits("::1", {})
    assert policy.admits("127.0.0.2", {})
    now[0] += 60
    assert policy.admits("::1", {})
