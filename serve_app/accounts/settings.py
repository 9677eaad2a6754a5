"""Settings of the accounts domain: ``Settings.accounts`` (env ``SERVE_APP_ACCOUNTS__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class AccountSettings(BaseModel):
    """Credits, sessions, tokens, password hashing and rate limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Credits one ``POST /api/analyze`` costs (admins pay nothing).
    analysis_cost: int = Field(default=10, ge=0)
    #: Signs session cookies (32+ characters). Unset: a random key is generated once
    #: per data directory (file ``session_secret``, mode 0600); set it when ingress
    #: replicas do not share a data directory.
    session_secret: SecretStr | None = None
    session_ttl_s: int = Field(default=14 * 24 * 3600, ge=60)
    #: Mark cookies ``Secure`` (set it whenever the service is served over HTTPS).
    cookie_secure: bool = False
    session_cookie: str = Field(default="serve_app_session", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    csrf_cookie: str = Field(default="csrf_token", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    #: API token secrets start with this, so leaked ones are easy to recognise.
    token_prefix: str = Field(default="sa_", pattern=r"^[a-z][a-z0-9]{0,7}_$")
    #: argon2id cost parameters (tests lower them; production keeps the defaults).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    #: Request budget per API token or login session: sustained rate and burst.
    rate_limit_per_s: float = Field(default=5.0, gt=0)
    rate_limit_burst: int = Field(default=30, ge=1)
    #: Login attempts per username and client address.
    login_rate_per_minute: float = Field(default=5.0, gt=0)
    login_burst: int = Field(default=5, ge=1)
    #: ``POST /analyze/`` without credentials from loopback, when the service listens
    #: on loopback only and trusts no proxy (the embedded default); off in production
    #: profiles. Such stories are rate-limited per address, not charged, and logged.
    anonymous_story: bool = True
    anonymous_story_per_minute: float = Field(default=10.0, gt=0)
    anonymous_story_burst: int = Field(default=5, ge=1)
    #: Failed authentications (invalid API tokens) per client address; valid tokens
    #: never spend from it.
    failed_auth_per_minute: float = Field(default=30.0, gt=0)
    failed_auth_burst: int = Field(default=10, ge=1)
    #: Share the rate limits above (API requests, logins, failed authentications) and
    #: the per-user in-flight caps (``admission.*``) among all ingress replicas through
    #: Redis, e.g. ``redis://127.0.0.1:6379/0``. Unset: each replica limits on its own,
    #: so N replicas allow N times each budget.
    redis_url: str | None = None
    #: When Redis does not answer: ``open`` lets requests through (logged; in-flight
    #: caps per replica), ``closed`` refuses them with 503 + ``Retry-After``.
    redis_outage: Literal["open", "closed"] = "open"
    #: A reservation (or an in-flight idempotency key) older than this is abandoned:
    #: its credits are released, the key may be reused. Keep it above the longest request.
    reservation_timeout_s: int = Field(default=3600, ge=60)
    #: Credit holds and ``Idempotency-Key`` claims of running requests are renewed by
    #: their process every third of this; once a process is gone (a killed ingress
    #: replica) they are released, and the key freed, this long after its last renewal.
    #: The same for the in-flight leases in Redis (``redis_url``).
    hold_lease_s: int = Field(default=30, ge=3)
    #: Completed ``Idempotency-Key`` responses are kept this long for replay.
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=60)

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(
                "session_secret needs at least 32 characters (e.g. openssl rand -hex 32)"
            )
        return value


class AdmissionSettings(BaseModel):
    """What one caller may hold of the ingress at once (env ``SERVE_APP_ADMISSION__*``).

    Request bodies are read under deadlines, so slow or stalled uploads cannot keep
    the ingress's request slots; callers without valid credentials share a small
    number of body slots; each user has caps on requests and bytes in flight.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A request body that sends nothing for this long is cut off (408).
    body_idle_timeout_s: float = Field(default=15.0, gt=0)
    #: After ``body_grace_s``, a body must keep arriving at this average rate (408).
    body_min_bytes_per_s: int = Field(default=32 * 1024, ge=1)
    body_grace_s: float = Field(default=10.0, ge=0)
    #: Request bodies read at once from callers without valid credentials (503 beyond).
    max_anonymous_bodies: int = Field(default=8, ge=1)
    #: Request bodies one user may send at once, and their declared bytes (429 beyond).
    max_requests_in_flight_per_user: int = Field(default=4, ge=1)
    max_bytes_in_flight_per_user: int = Field(default=256 * 1024 * 1024, ge=1)
    #: ``Retry-After`` of the refusals above.
    retry_after_s: int = Field(default=2, ge=1)
