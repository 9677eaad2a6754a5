"""Anonymous local use of the Story API (``POST /analyze/`` without credentials).

The ImgStory API document promises that local use needs no authentication. That holds
only where nobody else can reach the service: the setting is on
(``accounts.anonymous_story``, on in the embedded default, off in the production
profiles), the service listens on loopback only, no proxy is trusted (behind a reverse
proxy every request looks local, so a request that carries forwarding headers is never
anonymous) and the request comes from a loopback address. Anonymous stories are
rate-limited per address, never charged, and logged.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Mapping

from serve_app.accounts.rate_limit import TokenBucketLimiter
from serve_app.accounts.settings import AccountSettings

logger = logging.getLogger("serve_app.accounts.anonymous")

#: Headers a reverse proxy adds; their presence means the peer address is not the client.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP addresses (never for wildcard binds)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AnonymousStory:
    """Decides whether one credential-less story request may run, and limits them."""

    def __init__(
        self,
        settings: AccountSettings,
        listen_host: str | None,
        *,
        trusted_proxies: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = settings.anonymous_story and is_loopback(listen_host) and not trusted_proxies
        self._limiter = TokenBucketLimiter(
            settings.anonymous_story_per_minute / 60.0,
            settings.anonymous_story_burst,
            what="anonymous stories",
            clock=clock,
        )

    def admits(self, peer: str | None, headers: Mapping[str, str]) -> bool:
        """Whether this request may run without credentials (spends one unit if so).

        Raises:
            RateLimited: the address's anonymous budget is spent.
        """
        if not self.enabled or not is_loopback(peer):
            return False
        if any(name in headers for name in FORWARDING_HEADERS):
            return False
        self._limiter.hit(f"anonymous:{peer}")
        logger.info("anonymous local story request from %s (not charged)", peer)
        return True
