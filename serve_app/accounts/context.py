"""Everything the accounts routes need, built once per ingress process."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from serve_app.accounts.credits import Credits
from serve_app.accounts.idempotency import IdempotencyStore
from serve_app.accounts.in_flight import InFlightCaps, InFlightLimits
from serve_app.accounts.leases import HoldLeases
from serve_app.accounts.passwords import Passwords
from serve_app.accounts.rate_limit import (
    InMemoryLimits,
    LimiterFactory,
    LoginLimiter,
    RateLimiter,
)
from serve_app.accounts.redis_in_flight import RedisInFlightCaps
from serve_app.accounts.redis_limits import RedisLimits
from serve_app.accounts.sessions import LoginSessions, SessionSigner, load_or_create_secret
from serve_app.accounts.settings import AccountSettings
from serve_app.accounts.tokens import ApiTokens
from serve_app.accounts.users import FIRST_ADMIN_HINT, count_admins
from serve_app.observability.cluster import ClusterStatsProvider, GpuProbe, InFlight
from serve_app.observability.cpu import CpuMeter
from serve_app.storage.db import Database, database_url_for, migrate

logger = logging.getLogger(__name__)


class Maintenance:
    """Releases abandoned reservations and purges old records, at most every ``interval_s``."""

    def __init__(
        self,
        credits: Credits,
        idempotency: IdempotencyStore,
        sessions: LoginSessions,
        settings: AccountSettings,
        interval_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credits = credits
        self._idempotency = idempotency
        self._sessions = sessions
        self._settings = settings
        self._interval_s = interval_s
        self._clock = clock
        self._next = clock() + interval_s
        self._lock = threading.Lock()

    def due(self) -> bool:
        """True (once per interval, for one caller) when it is time to :meth:`run`."""
        with self._lock:
            now = self._clock()
            if now < self._next:
                return False
            self._next = now + self._interval_s
            return True

    def run(self) -> None:
        try:
            self._credits.release_stale(dt.timedelta(seconds=self._settings.reservation_timeout_s))
            self._idempotency.purge(dt.timedelta(seconds=self._settings.idempotency_ttl_s))
            self._sessions.purge()
        except Exception:
            logger.warning("accounts maintenance failed; will retry", exc_info=True)


@dataclass(frozen=True)
class AccountsContext:
    """Services, limiters and counters of the accounts domain for one app."""

    database: Database
    settings: AccountSettings
    passwords: Passwords
    signer: SessionSigner
    tokens: ApiTokens
    sessions: LoginSessions
    credits: Credits
    idempotency: IdempotencyStore
    api_limiter: RateLimiter
    login_limiter: LoginLimiter
    #: Failed authentications per client address (429 once spent).
    auth_failures: RateLimiter
    in_flight: InFlight
    gpu_probe: GpuProbe
    maintenance: Maintenance
    leases: HoldLeases
    #: The Redis server the limits are shared through (``accounts.redis_url``), if any.
    redis: RedisLimits | None = None
    stats_provider: ClusterStatsProvider | None = None
    #: System CPU over a sliding window, shared by every ``GET /api/stats`` poller.
    cpu_meter: CpuMeter = field(default_factory=CpuMeter)

    @classmethod
    def build(
        cls,
        database: Database,
        settings: AccountSettings,
        session_key: bytes,
        *,
        stats_provider: ClusterStatsProvider | None = None,
        limits: LimiterFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> AccountsContext:
        """Wire the services over an already migrated ``database``.

        Rate limits come from ``limits``; by default from Redis when
        ``settings.redis_url`` is set (shared by all replicas), else in process memory.
        """
        if limits is None:
            limits = (
                RedisLimits(settings.redis_url, settings.redis_outage)
                if settings.redis_url
                else InMemoryLimits(clock)
            )
        credits = Credits(database)
        stale = dt.timedelta(seconds=settings.hold_lease_s)
        idempotency = IdempotencyStore(database, stale_after=stale)
        sessions = LoginSessions(database, dt.timedelta(seconds=settings.session_ttl_s))
        return cls(
            database=database,
            settings=settings,
            passwords=Passwords(settings),
            signer=SessionSigner(session_key),
            tokens=ApiTokens(database, settings.token_prefix),
            sessions=sessions,
            credits=credits,
            idempotency=idempotency,
            api_limiter=limits.bucket(
                "api", settings.rate_limit_per_s, settings.rate_limit_burst, what="requests"
            ),
            login_limiter=LoginLimiter(
                settings.login_rate_per_minute, settings.login_burst, limits=limits
            ),
            auth_failures=limits.bucket(
                "failed-auth",
                settings.failed_auth_per_minute / 60.0,
                settings.failed_auth_burst,
                what="failed authentications from this address",
            ),
            in_flight=InFlight(),
            gpu_probe=GpuProbe(),
            maintenance=Maintenance(credits, idempotency, sessions, settings, clock=clock),
            leases=HoldLeases(credits, idempotency, settings.hold_lease_s),
            redis=limits if isinstance(limits, RedisLimits) else None,
            stats_provider=stats_provider,
        )

    def in_flight_caps(
        self, max_requests: int, max_bytes: int, retry_after_s: int
    ) -> InFlightLimits:
        """Per-user in-flight caps: in Redis like the rate limits (leases renewed on
        the :class:`HoldLeases` beat, ``hold_lease_s`` long), else in process memory."""
        if self.redis is None:
            return InFlightCaps(max_requests, max_bytes, retry_after_s)
        caps = RedisInFlightCaps(
            self.redis, max_requests, max_bytes, retry_after_s, lease_s=self.settings.hold_lease_s
        )
        self.leases.add_hook(caps.renew)
        return caps

    def close(self) -> None:
        self.leases.stop()
        self.database.dispose()


class AccountsConfig(Protocol):
    """The accounts' slice of the service settings (``serve_app.config.Settings`` fits)."""

    @property
    def database_url(self) -> str | None: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def accounts(self) -> AccountSettings: ...


def open_accounts(
    settings: AccountsConfig, *, stats_provider: ClusterStatsProvider | None = None
) -> AccountsContext:
    """Connect to the configured database, migrate it, and build the context.

    Call once per ingress process (each Ray replica builds its own). Starts the
    thread that renews the process's credit holds (:class:`HoldLeases`).
    """
    database = Database(database_url_for(settings.database_url, settings.data_dir))
    migrate(database)
    accounts = settings.accounts
    if accounts.session_secret is not None:
        key = accounts.session_secret.get_secret_value().encode()
    else:
        if not database.is_sqlite:
            logger.warning(
                "no SERVE_APP_ACCOUNTS__SESSION_SECRET set: session cookies are signed with a "
                "key generated in %s; replicas that do not share it reject each other's cookies",
                settings.data_dir,
            )
        key = load_or_create_secret(settings.data_dir)
    context = AccountsContext.build(database, accounts, key, stats_provider=stats_provider)
    context.maintenance.run()
    context.leases.start()
    if count_admins(database) == 0:
        logger.warning(FIRST_ADMIN_HINT)
    return context
