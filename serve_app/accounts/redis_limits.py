"""Rate limits shared by every ingress replica, as token buckets in Redis.

One Lua script per hit refills and spends a bucket atomically, on Redis's clock, so
replicas on different machines agree; buckets expire once full again. When Redis does
not answer, ``accounts.redis_outage`` decides: ``open`` lets requests through (each
replica logs it), ``closed`` refuses them with 503 + ``Retry-After``. After a failure
Redis is left alone for :data:`OUTAGE_BACKOFF_S`, so an outage costs one timeout per
replica and period, not one per request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from serve_app.accounts.rate_limit import RateLimiter, exhausted
from serve_app.errors import BackendUnavailable

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds without Redis calls after one failed (the outage policy applies meanwhile).
OUTAGE_BACKOFF_S = 2.0
#: Connect and read timeout of each Redis call, in seconds.
REDIS_TIMEOUT_S = 0.25
#: Keys are ``<KEY_PREFIX><bucket name>:<key>``.
KEY_PREFIX = "serve_app:limit:"

# KEYS[1] bucket; ARGV rate (tokens/s), burst. Returns {allowed, tokens left}.
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""

Outage = Literal["open", "closed"]


class RedisLimits:
    """:class:`~serve_app.accounts.rate_limit.LimiterFactory` over one Redis server."""

    def __init__(self, url: str, outage: Outage = "open", *, client: Any = None) -> None:
        import redis

        self.outage = outage
        self.client: redis.Redis = client or redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._script = self.client.register_script(_BUCKET_SCRIPT)
        self._redis_error = redis.RedisError
        self._down_until = 0.0
        self._lock = threading.Lock()

    def bucket(self, name: str, rate_per_s: float, burst: int, *, what: str) -> RateLimiter:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        return RedisTokenBucket(self, f"{KEY_PREFIX}{name}:", rate_per_s, burst, what)

    def spend(self, key: str, rate_per_s: float, burst: int) -> tuple[bool, float] | None:
        """One unit of ``key``'s bucket: (allowed, tokens left), or None if Redis is down."""
        answer = self.call(lambda: self._script(keys=[key], args=[rate_per_s, burst]))
        if answer is None:
            return None
        allowed, tokens = answer
        return bool(int(allowed)), float(tokens)

    def call(self, command: Callable[[], T]) -> T | None:
        """``command()`` (Redis calls), or None while Redis does not answer.

        A failure starts :data:`OUTAGE_BACKOFF_S` without Redis calls (logged once).
        """
        if time.monotonic() < self._down_until:
            return None
        try:
            return command()
        except self._redis_error as exc:
            with self._lock:
                first = time.monotonic() >= self._down_until
                self._down_until = time.monotonic() + OUTAGE_BACKOFF_S
            if first:
                logger.warning(
                    "Redis limits unavailable (%s): requests are %s for %.0f s",
                    type(exc).__name__,
                    "let through" if self.outage == "open" else "refused",
                    OUTAGE_BACKOFF_S,
                )
            return None

    def unavailable(self) -> BackendUnavailable:
        """The error of the ``closed`` outage policy."""
        return BackendUnavailable(
            "rate limits are unavailable; retry shortly", retry_after_s=math.ceil(OUTAGE_BACKOFF_S)
        )


class RedisTokenBucket:
    """One namespace of buckets in Redis; ``hit`` as in :class:`TokenBucketLimiter`."""

    def __init__(
        self, limits: RedisLimits, prefix: str, rate_per_s: float, burst: int, what: str
    ) -> None:
        self._limits = limits
        self._prefix = prefix
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._what = what

    def hit(self, key: str) -> None:
        """Spend one unit of ``key``'s shared budget.

        Raises:
            RateLimited: the budget is exhausted (on every replica at once).
            BackendUnavailable: Redis does not answer and ``redis_outage`` is ``closed``.
        """
        answer = self._limits.spend(self._prefix + key, self.rate_per_s, self.burst)
        if answer is None:
            if self._limits.outage == "closed":
                raise self._limits.unavailable()
            return
        allowed, tokens = answer
        if not allowed:
            raise exhausted(self._what, tokens, self.rate_per_s)
