"""Per-user caps on requests and request-body bytes in flight: the protocol, and
the caps in process memory.

A request is admitted (or refused with :class:`RateLimited`) before its body is read,
so memory and disk cannot grow with one user's parallel uploads. With
:class:`InFlightCaps` each ingress replica counts its own requests (N replicas allow N
times the caps); :mod:`serve_app.accounts.redis_in_flight` shares them through Redis
(``accounts.redis_url``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from serve_app.errors import RateLimited


class Lease(Protocol):
    """One admitted request; ``release`` it exactly once when it ends (more is harmless)."""

    def grow(self, extra: int) -> None:
        """Count ``extra`` more bytes (bodies of unknown length).

        Raises:
            RateLimited: the user's byte cap would be exceeded.
        """
        ...

    def release(self) -> None: ...


class InFlightLimits(Protocol):
    """Caps on what each user has in flight."""

    max_requests: int
    max_bytes: int

    def admit(self, user_id: int, declared_bytes: int) -> Lease:
        """Count one request of ``declared_bytes`` for ``user_id``.

        Raises:
            RateLimited: a cap would be exceeded (nothing is counted).
            BackendUnavailable: the shared counts are unavailable and the outage
                policy is ``closed``.
        """
        ...

    def in_flight(self, user_id: int) -> tuple[int, int]:
        """``(requests, bytes)`` the user has in flight."""
        ...


@dataclass
class _Usage:
    requests: int = 0
    bytes: int = 0


class InFlightCaps:
    """At most ``max_requests`` bodies and ``max_bytes`` body bytes per user at once."""

    def __init__(self, max_requests: int, max_bytes: int, retry_after_s: int = 2) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self._retry_after_s = retry_after_s
        self._usage: dict[int, _Usage] = {}
        self._lock = threading.Lock()

    def admit(self, user_id: int, declared_bytes: int) -> InFlightLease:
        """Count one request of ``declared_bytes`` for ``user_id``.

        Raises:
            RateLimited: the user already has ``max_requests`` requests or would
                exceed ``max_bytes`` in flight (nothing is counted).
        """
        with self._lock:
            usage = self._usage.setdefault(user_id, _Usage())
            if usage.requests >= self.max_requests:
                self._refuse(requests_cap(self.max_requests))
            self._check_bytes(usage, declared_bytes)
            usage.requests += 1
            usage.bytes += declared_bytes
        return InFlightLease(self, user_id, declared_bytes)

    def in_flight(self, user_id: int) -> tuple[int, int]:
        """``(requests, bytes)`` the user has in flight."""
        with self._lock:
            usage = self._usage.get(user_id, _Usage())
            return usage.requests, usage.bytes

    def _grow(self, lease: InFlightLease, extra: int) -> None:
        with self._lock:
            usage = self._usage[lease.user_id]
            self._check_bytes(usage, extra)
            usage.bytes += extra
            lease.bytes += extra

    def _release(self, lease: InFlightLease) -> None:
        with self._lock:
            usage = self._usage[lease.user_id]
            usage.requests -= 1
            usage.bytes -= lease.bytes
            if usage.requests == 0:
                del self._usage[lease.user_id]

    def _check_bytes(self, usage: _Usage, extra: int) -> None:
        if usage.bytes + extra > self.max_bytes:
            self._refuse(bytes_cap(self.max_bytes))

    def _refuse(self, what: str) -> None:
        raise refusal(what, self._retry_after_s)


def refusal(what: str, retry_after_s: int) -> RateLimited:
    """The 429 for a cap described by ``what``."""
    return RateLimited(f"{what}; retry in {retry_after_s} s", retry_after_s=retry_after_s)


def requests_cap(max_requests: int) -> str:
    return f"at most {max_requests} uploads at once per user"


def bytes_cap(max_bytes: int) -> str:
    return f"at most {max_bytes // (1024 * 1024)} MiB of uploads in flight per user"


@dataclass
class InFlightLease:
    """One admitted request; :meth:`release` it exactly once when it ends."""

    caps: InFlightCaps
    user_id: int
    bytes: int
    _released: bool = field(default=False, repr=False)

    def grow(self, extra: int) -> None:
        """Count ``extra`` more bytes (bodies of unknown length); may raise RateLimited."""
        self.caps._grow(self, extra)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.caps._release(self)
