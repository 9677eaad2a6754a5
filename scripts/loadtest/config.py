"""What one load test run does: how long, how many at once, how much, which mix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Hard caps, whatever the command line says: the test is bounded in time and count.
MAX_DURATION_S = 900.0
MAX_CONCURRENCY = 64
MAX_REQUESTS = 100_000

#: Operation kinds a worker draws from, with their default weights.
#: ``job`` is one batch job: signed URL, upload, submit (polled in the background).
DEFAULT_MIX: Mapping[str, float] = MappingProxyType(
    {
        "analyze_image": 30,
        "analyze_video": 10,
        "analyze_chunked": 6,
        "story": 12,
        "job": 8,
        "stats": 14,
        "me": 5,
    }
)
OPERATIONS = frozenset(DEFAULT_MIX)


@dataclass(frozen=True)
class RetryPolicy:
    """How the client answers a 503: wait ``Retry-After`` (capped), try again (bounded).

    Attributes:
        max_retries: Further attempts after the first 503 (0: no retries).
        max_wait_s: Longest single wait, whatever ``Retry-After`` says.
    """

    max_retries: int = 3
    max_wait_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_retries <= 10:
            raise ValueError("max_retries must be between 0 and 10")
        if not 0 < self.max_wait_s <= 60:
            raise ValueError("max_wait_s must be in (0, 60]")


@dataclass(frozen=True)
class LoadConfig:
    """One run's bounds and traffic shape (every share is a probability in [0, 1]).

    Attributes:
        duration_s: How long workers start new operations.
        concurrency: Workers, each with at most one operation (one request) at a time.
        max_requests: HTTP attempts (retries and job polls included) after which no
            new operation starts; polls while draining are bounded by
            ``drain_timeout_s`` instead.
        mix: Weight per operation kind (see :data:`DEFAULT_MIX`).
        keyed_share: Paid requests sent with an ``Idempotency-Key``.
        repeat_share: Keyed successes re-sent with the same key (a replay is expected).
        concurrent_repeat_share: Keyed requests sent twice at once (one charge expected).
        drained_share: Paid operations made by the user whose credits run out.
        cancel_share: Jobs cancelled right after submission.
        captioner_share: Jobs that also run the VLM ``frame-captioner``.
        max_pending_jobs: Unfinished jobs at most; a worker draws again beyond it.
        poll_interval_s: Pause between two status polls of the unfinished jobs.
        drain_timeout_s: How long to wait for submitted jobs after the traffic.
        grace_s: How long operations still running at the deadline may finish.
        request_timeout_s: Client timeout of one HTTP request.
        story_language: ``language`` of most stories (the rest use the default, ``th``).
        seed: Seed of the random choices (the interleaving of workers still varies).
    """

    duration_s: float = 180.0
    concurrency: int = 8
    max_requests: int = 20_000
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    keyed_share: float = 0.5
    repeat_share: float = 0.2
    concurrent_repeat_share: float = 0.05
    drained_share: float = 0.15
    cancel_share: float = 0.1
    captioner_share: float = 0.2
    max_pending_jobs: int = 8
    poll_interval_s: float = 1.0
    drain_timeout_s: float = 180.0
    grace_s: float = 120.0
    request_timeout_s: float = 300.0
    story_language: str = "ja"
    seed: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration_s must be in (0, {MAX_DURATION_S:g}]")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
        if not 1 <= self.max_requests <= MAX_REQUESTS:
            raise ValueError(f"max_requests must be between 1 and {MAX_REQUESTS}")
        unknown = set(self.mix) - OPERATIONS
        if unknown:
            raise ValueError(f"unknown operations in mix: {sorted(unknown)}")
        if any(w < 0 for w in self.mix.values()) or sum(self.mix.values()) <= 0:
            raise ValueError("mix weights must be >= 0 and not all 0")
        shares = (
            self.keyed_share,
            self.repeat_share,
            self.concurrent_repeat_share,
            self.drained_share,
            self.cancel_share,
            self.captioner_share,
        )
        if not all(0 <= s <= 1 for s in shares):
            raise ValueError("shares must be between 0 and 1")
        if self.max_pending_jobs < 1:
            raise ValueError("max_pending_jobs must be at least 1")
        for name in ("poll_interval_s", "drain_timeout_s", "grace_s", "request_timeout_s"):
            if not 0 < getattr(self, name) <= MAX_DURATION_S:
                raise ValueError(f"{name} must be in (0, {MAX_DURATION_S:g}]")
