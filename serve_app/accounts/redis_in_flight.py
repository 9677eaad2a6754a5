"""Per-user in-flight caps shared by every ingress replica, as leases in Redis.

Each user with requests in flight has one hash, ``<KEY_PREFIX><user id>``: one field
per admitted request (a random lease id) whose value is ``<bytes>:<expiry>``, the
expiry in milliseconds on Redis's clock. Lua scripts admit and grow atomically: they
drop the expired leases, sum the others and check both caps. The process holding a
lease renews it every third of ``lease_s`` (``accounts.hold_lease_s``, on the beat of
:class:`~serve_app.accounts.leases.HoldLeases`) and deletes it when the request ends; a
replica that dies stops renewing, and its leases stop counting ``lease_s`` after their
last renewal. The hash expires with its newest lease, so idle users leave no keys.

Why leases rather than counters: a count a dead replica added with ``INCRBY`` stays
forever, and keys of their own per lease expire but cannot be summed atomically (no
``KEYS``/``SCAN`` in a hot path). A hash per user holds both; the request cap (a few
dozen) bounds each scan. A sorted set of expiries would need a second key for bytes.

Bodies of unknown length reserve bytes in steps of :data:`GROW_STEP_BYTES`, so a
chunked upload costs one Redis call per step, not per chunk.

When Redis does not answer (``accounts.redis_outage``): ``open`` admits under the
replica's own in-process caps (as without Redis); ``closed`` refuses with 503.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from serve_app.accounts.in_flight import (
    InFlightCaps,
    Lease,
    bytes_cap,
    refusal,
    requests_cap,
)
from serve_app.accounts.redis_limits import RedisLimits

#: Keys are ``<KEY_PREFIX><user id>``.
KEY_PREFIX = "serve_app:inflight:"
#: Bytes a body of unknown length reserves ahead, per Redis call.
GROW_STEP_BYTES = 1024 * 1024

# KEYS[1] the user's hash, ARGV[1] a lease id left out of the sums. Drops expired
# leases; leaves now (ms), requests and bytes of the others.
_SCAN = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local leases = redis.call('HGETALL', KEYS[1])
local requests, bytes = 0, 0
for i = 1, #leases, 2 do
  local size, expires = string.match(leases[i + 1], '^(%d+):(%d+)$')
  if tonumber(expires) <= now then
    redis.call('HDEL', KEYS[1], leases[i])
  elseif leases[i] ~= ARGV[1] then
    requests = requests + 1
    bytes = bytes + tonumber(size)
  end
end
"""

_COUNT = _SCAN + "return {requests, bytes}\n"

# ARGV lease, bytes, max requests, max bytes, ttl ms. Returns 1, or 0 (too many
# requests), or -1 (too many bytes).
_ADMIT = (
    _SCAN
    + """
if requests >= tonumber(ARGV[3]) then return 0 end
if bytes + tonumber(ARGV[2]) > tonumber(ARGV[4]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d', tonumber(ARGV[2]), now + ARGV[5]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""
)

# ARGV lease, bytes needed, bytes wanted, max bytes, ttl ms. Returns the bytes granted
# (wanted if they fit, else needed), or -1.
_GROW = (
    _SCAN
    + """
local granted = tonumber(ARGV[3])
if bytes + granted > tonumber(ARGV[4]) then granted = tonumber(ARGV[2]) end
if bytes + granted > tonumber(ARGV[4]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d', granted, now + ARGV[5]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return granted
"""
)

# ARGV lease, bytes, ttl ms: the lease again (also after Redis lost it).
_RENEW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d', tonumber(ARGV[2]), now + ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


class RedisInFlightCaps:
    """:class:`~serve_app.accounts.in_flight.InFlightLimits` shared through Redis.

    Call :meth:`renew` every third of ``lease_s`` (the ingress hooks it into its
    :class:`~serve_app.accounts.leases.HoldLeases` beat).
    """

    def __init__(
        self,
        limits: RedisLimits,
        max_requests: int,
        max_bytes: int,
        retry_after_s: int = 2,
        *,
        lease_s: float = 30.0,
    ) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.lease_s = lease_s
        self._limits = limits
        self._retry_after_s = retry_after_s
        self._ttl_ms = max(1, round(lease_s * 1000))
        client = limits.client
        self._admit = client.register_script(_ADMIT)
        self._grow = client.register_script(_GROW)
        self._renew = client.register_script(_RENEW)
        self._count = client.register_script(_COUNT)
        #: Counts while Redis is down under the ``open`` policy.
        self._local = InFlightCaps(max_requests, max_bytes, retry_after_s)
        self._live: dict[str, RedisLease] = {}
        self._lock = threading.Lock()

    def admit(self, user_id: int, declared_bytes: int) -> Lease:
        lease = RedisLease(self, user_id, uuid.uuid4().hex, declared_bytes, declared_bytes)
        args: list[str | int] = [
            lease.id,
            declared_bytes,
            self.max_requests,
            self.max_bytes,
            self._ttl_ms,
        ]
        answer = self._limits.call(lambda: self._admit(keys=[lease.key], args=args))
        if answer is None:
            if self._limits.outage == "closed":
                raise self._limits.unavailable()
            return self._local.admit(user_id, declared_bytes)
        if int(answer) == 0:
            raise refusal(requests_cap(self.max_requests), self._retry_after_s)
        if int(answer) < 0:
            raise refusal(bytes_cap(self.max_bytes), self._retry_after_s)
        with self._lock:
            self._live[lease.id] = lease
        return lease

    def in_flight(self, user_id: int) -> tuple[int, int]:
        """``(requests, bytes)`` of the user's live leases (bytes as reserved)."""
        key = f"{KEY_PREFIX}{user_id}"
        answer = self._limits.call(lambda: self._count(keys=[key], args=[""]))
        if answer is None:
            return self._local.in_flight(user_id)
        requests, reserved = answer
        return int(requests), int(reserved)

    def renew(self) -> None:
        """Extend the leases of this process by ``lease_s`` (re-adding lost ones)."""
        with self._lock:
            live = [(lease.key, lease.id, lease.reserved) for lease in self._live.values()]
        if not live:
            return

        def renew_all() -> None:
            pipe = self._limits.client.pipeline(transaction=False)
            for key, lease_id, reserved in live:
                self._renew(keys=[key], args=[lease_id, reserved, self._ttl_ms], client=pipe)
            pipe.execute()

        self._limits.call(renew_all)

    def _grow_lease(self, lease: RedisLease, extra: int) -> None:
        used = lease.bytes + extra
        if used > self.max_bytes:
            raise refusal(bytes_cap(self.max_bytes), self._retry_after_s)
        if used > lease.reserved:
            wanted = min(self.max_bytes, max(used, lease.reserved + GROW_STEP_BYTES))
            args: list[str | int] = [lease.id, used, wanted, self.max_bytes, self._ttl_ms]
            answer = self._limits.call(lambda: self._grow(keys=[lease.key], args=args))
            if answer is None:
                if self._limits.outage == "closed":
                    raise self._limits.unavailable()
            elif int(answer) < 0:
                raise refusal(bytes_cap(self.max_bytes), self._retry_after_s)
            else:
                lease.reserved = int(answer)
        lease.bytes = used

    def _release(self, lease: RedisLease) -> None:
        with self._lock:
            self._live.pop(lease.id, None)
        # Unanswered: the lease expires on its own.
        self._limits.call(lambda: self._limits.client.hdel(lease.key, lease.id))


@dataclass
class RedisLease:
    """One request counted in Redis; ``bytes`` used, ``reserved`` as counted there."""

    caps: RedisInFlightCaps
    user_id: int
    id: str
    bytes: int
    reserved: int
    _released: bool = field(default=False, repr=False)

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.user_id}"

    def grow(self, extra: int) -> None:
        self.caps._grow_lease(self, extra)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.caps._release(self)
