"""Token-bucket rate limits: the protocol, and buckets in process memory.

With :class:`InMemoryLimits` each ingress replica keeps its own buckets: with N
replicas behind Serve's proxy, a caller gets up to N times the configured budget. That
is the embedded default's trade-off; :mod:`serve_app.accounts.redis_limits` shares
the buckets through Redis (``accounts.redis_url``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from serve_app.errors import RateLimited


class RateLimiter(Protocol):
    def hit(self, key: str) -> None:
        """Spend one unit of ``key``'s budget.

        Raises:
            RateLimited: the budget is exhausted (``retry_after_s`` says when to retry).
        """
        ...


def exhausted(what: str, tokens: float, rate_per_s: float) -> RateLimited:
    """The error for a bucket holding ``tokens`` (< 1) that refills at ``rate_per_s``."""
    retry_after = max(1, math.ceil((1.0 - tokens) / rate_per_s))
    return RateLimited(f"too many {what}; retry in {retry_after} s", retry_after_s=retry_after)


class LimiterFactory(Protocol):
    def bucket(self, name: str, rate_per_s: float, burst: int, *, what: str) -> RateLimiter:
        """A limiter whose keys live in namespace ``name`` (``what`` names them in errors)."""
        ...


class TokenBucketLimiter:
    """``burst`` requests at once, refilled at ``rate_per_s``; thread-safe.

    At most ``max_keys`` buckets are kept (least recently used ones are dropped), so
    a flood of distinct keys cannot exhaust memory.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        what: str = "requests",
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._what = what
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        if not allowed:
            raise exhausted(self._what, tokens, self.rate_per_s)


class InMemoryLimits:
    """:class:`LimiterFactory` of :class:`TokenBucketLimiter` (this process only)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def bucket(self, name: str, rate_per_s: float, burst: int, *, what: str) -> RateLimiter:
        return TokenBucketLimiter(rate_per_s, burst, what=what, clock=self._clock)


class LoginLimiter:
    """Login attempts per (username, client address), and per address overall."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        limits: LimiterFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        rate = per_minute / 60.0
        limits = limits or InMemoryLimits(clock)
        self._per_user = limits.bucket("login", rate, burst, what="login attempts")
        # One address may try several accounts, but not spray thousands of them.
        self._per_address = limits.bucket(
            "login-address", rate * 4, burst * 4, what="login attempts from this address"
        )

    def hit(self, username: str, address: str) -> None:
        """Spend one attempt; raises :class:`RateLimited` when either budget is out."""
        self._per_address.hit(address)
        self._per_user.hit(f"{username.strip().lower()[:64]}\x00{address}")
