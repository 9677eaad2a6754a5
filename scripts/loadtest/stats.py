"""Per-kind request counts, status codes and latencies of one run.

A *request* here is one logical HTTP call: the first attempt plus any retries after a
503 (see :mod:`scripts.loadtest.client`). Its status is the last answer's; its latency
runs from the first attempt to the last answer, waits included. Percentiles are over
successful (2xx) requests only, so fast 402s do not flatter an endpoint.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scripts.bench.common import percentile_ms

#: Status recorded when no HTTP answer came back (connection error, timeout).
NO_ANSWER = 0


@dataclass
class KindStats:
    """Everything recorded for one request kind (e.g. ``analyze:image``)."""

    kind: str
    statuses: Counter[int] = field(default_factory=Counter)
    ok_latencies_s: list[float] = field(default_factory=list)
    #: 503 answers that a later retry of the same request got past.
    retried_503: int = 0
    #: Requests still 503 after every retry.
    failed_503: int = 0

    def record(self, status: int, latency_s: float, seen_503: int) -> None:
        """One request: its final ``status`` and the 503 answers its attempts got."""
        self.statuses[status] += 1
        if 200 <= status < 300:
            self.ok_latencies_s.append(latency_s)
        if status == 503:
            self.failed_503 += 1
        else:
            self.retried_503 += seen_503

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def client_errors(self) -> dict[int, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if 400 <= s < 500}

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)

    @property
    def no_answer(self) -> int:
        return self.statuses[NO_ANSWER]

    def percentile_ms(self, q: float) -> float:
        return percentile_ms(self.ok_latencies_s, q)

    def to_json(self, wall_s: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "client_errors": {str(s): n for s, n in self.client_errors.items()},
            "server_errors": self.server_errors,
            "server_errors_by_status": {
                str(s): n for s, n in sorted(self.statuses.items()) if s >= 500
            },
            "no_answer": self.no_answer,
            "retried_503": self.retried_503,
            "failed_503": self.failed_503,
            "p50_ms": round(self.percentile_ms(50), 1),
            "p95_ms": round(self.percentile_ms(95), 1),
            "p99_ms": round(self.percentile_ms(99), 1),
            "rps": round(self.requests / wall_s, 3) if wall_s > 0 else 0.0,
        }


@dataclass
class Recorder:
    """All kinds of one run, plus the number of HTTP attempts made."""

    kinds: dict[str, KindStats] = field(default_factory=dict)
    #: HTTP attempts (retries included), checked against the request budget.
    attempts: int = 0
    anomaly_count: int = 0
    #: Short descriptions of 5xx answers and lost requests (for the report), bounded.
    failures: list[str] = field(default_factory=list)
    #: Answers that break a promise of the API although their status is fine (a repeat
    #: of an ``Idempotency-Key`` that is not a replay, a results file that does not
    #: match its job, ...); any of them fails the run.
    anomalies: list[str] = field(default_factory=list)
    max_failures_kept: int = 50

    def anomaly(self, text: str) -> None:
        if len(self.anomalies) < self.max_failures_kept:
            self.anomalies.append(text[:300])
        self.anomaly_count += 1

    def record(
        self, kind: str, status: int, latency_s: float, seen_503: int = 0, note: str = ""
    ) -> None:
        self.kinds.setdefault(kind, KindStats(kind)).record(status, latency_s, seen_503)
        if (status >= 500 or status == NO_ANSWER) and len(self.failures) < self.max_failures_kept:
            self.failures.append(f"{kind}: {status or 'no answer'} {note}".strip()[:300])

    def total(self) -> KindStats:
        """Every kind summed into one row (``kind`` = ``total``)."""
        out = KindStats("total")
        for stats in self.kinds.values():
            out.statuses.update(stats.statuses)
            out.ok_latencies_s.extend(stats.ok_latencies_s)
            out.retried_503 += stats.retried_503
            out.failed_503 += stats.failed_503
        return out

    @property
    def server_errors(self) -> int:
        return sum(s.server_errors for s in self.kinds.values())

    @property
    def no_answer(self) -> int:
        return sum(s.no_answer for s in self.kinds.values())
