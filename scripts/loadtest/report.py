"""The outcome of a run as a verdict, a text table, markdown and JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scripts.loadtest.config import LoadConfig
from scripts.loadtest.reconcile import Reconciliation
from scripts.loadtest.stats import KindStats, Recorder

RULES = (
    "Rules: 2xx is ok; 4xx are expected client errors (402 no credits, 409 a key still "
    "in flight, 429 rate or upload limits), reported by code, not failures. 5xx and "
    "requests without an answer are failures. A 503 is retried after its Retry-After "
    "(capped) a bounded number of times: '503 retried' counts 503s that a retry got "
    "past (not failures); a request still 503 after its retries is a 5xx failure. "
    "Latency percentiles are over 2xx answers, waits for retries included; req/s is "
    "requests over the traffic phase."
)
HEADER = (
    "kind",
    "requests",
    "ok",
    "4xx",
    "5xx",
    "503 retried",
    "no answer",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "req/s",
)


@dataclass
class Report:
    """Everything a run found; :attr:`failures` empty means it passed."""

    config: LoadConfig
    base_url: str
    started_utc: str
    traffic_s: float
    drain_s: float
    stopped_by: str
    recorder: Recorder
    jobs: dict[str, Any]
    reconciliation: Reconciliation

    @property
    def failures(self) -> list[str]:
        out = []
        r = self.recorder
        if r.server_errors:
            out.append(f"{r.server_errors} 5xx answers")
        if r.no_answer:
            out.append(f"{r.no_answer} requests got no answer")
        if r.anomaly_count:
            out.append(f"{r.anomaly_count} anomalies (broken API promises)")
        if self.jobs.get("failed"):
            out.append(f"{self.jobs['failed']} jobs failed: {self.jobs['failed_by_code']}")
        rec = self.reconciliation
        for user in rec.users:
            out += [f"{user.username}: {p}" for p in user.problems]
        if rec.unfinished_jobs:
            out.append(f"{len(rec.unfinished_jobs)} jobs not final after the drain")
        if rec.db_unfinished_jobs:
            out.append(f"{len(rec.db_unfinished_jobs)} jobs queued/running in the database")
        out += rec.problems
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def rows(self) -> list[KindStats]:
        kinds = sorted(self.recorder.kinds.values(), key=lambda k: k.kind)
        return [*kinds, self.recorder.total()]

    def cells(self, k: KindStats) -> tuple[str, ...]:
        errors = " ".join(f"{code}x{n}" for code, n in k.client_errors.items()) or "0"
        rps = k.requests / self.traffic_s if self.traffic_s > 0 else 0.0
        return (
            k.kind,
            str(k.requests),
            str(k.ok),
            errors,
            str(k.server_errors),
            str(k.retried_503),
            str(k.no_answer),
            f"{k.percentile_ms(50):.0f}",
            f"{k.percentile_ms(95):.0f}",
            f"{k.percentile_ms(99):.0f}",
            f"{rps:.2f}",
        )

    def table(self) -> str:
        lines = [HEADER, *(self.cells(k) for k in self.rows())]
        widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
        text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
        text.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(text)

    def markdown_table(self) -> str:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(self.cells(k)) + " |" for k in self.rows()]
        return "\n".join(lines)

    def credit_lines(self) -> list[str]:
        lines = []
        for u in self.reconciliation.users:
            db = (
                f", users.balance {u.db_balance}, ledger sum {u.ledger_sum}, "
                f"open reservations {u.open_reservations}"
                if self.reconciliation.db_checked
                else ""
            )
            verdict = "OK" if not u.problems else "MISMATCH: " + "; ".join(u.problems)
            lines.append(
                f"{u.username} ({u.role}): opening {u.start} - charged {u.charged} "
                f"(over {u.paid_operations} operations) = {u.expected}; "
                f"API balance {u.api_balance}{db} -> {verdict}"
            )
        return lines

    def job_line(self) -> str:
        j = self.jobs
        rec = self.reconciliation
        db = f", {rec.db_jobs} in the database" if rec.db_jobs is not None else ""
        return (
            f"jobs: {j['submitted']} submitted{db}: {j['succeeded']} succeeded, "
            f"{j['cancelled']} cancelled, {j['failed']} failed, "
            f"{len(rec.unfinished_jobs)} unfinished after the drain "
            f"({len(rec.db_unfinished_jobs)} queued/running in the database); "
            f"submit to final: median {j['median_submit_to_final_s']} s, "
            f"max {j['max_submit_to_final_s']} s; credits charged {j['credits_charged']}"
        )

    def text(self) -> str:
        c = self.config
        r = self.recorder
        total = r.total()
        lines = [
            f"load test of {self.base_url} started {self.started_utc} UTC: "
            f"{self.traffic_s:.0f} s of traffic (stopped by {self.stopped_by}), "
            f"{self.drain_s:.0f} s drain; concurrency {c.concurrency}, seed {c.seed}",
            "",
            self.table(),
            "",
            f"503 answers got past by retries: {total.retried_503}; "
            f"requests still 503 after retries: {total.failed_503}",
            self.job_line(),
            *self.credit_lines(),
            *(
                []
                if self.reconciliation.db_checked
                else ["no database checks (ledger, reservations, jobs): pass --database-url"]
            ),
            *(f"anomaly: {a}" for a in r.anomalies),
            *(f"failure: {f}" for f in r.failures[:10]),
            "",
            RULES,
            "",
            "PASSED" if self.passed else "FAILED: " + "; ".join(self.failures),
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        r = self.recorder
        return {
            "passed": self.passed,
            "failures": self.failures,
            "base_url": self.base_url,
            "started_utc": self.started_utc,
            "traffic_s": round(self.traffic_s, 2),
            "drain_s": round(self.drain_s, 2),
            "stopped_by": self.stopped_by,
            "config": {**asdict(self.config), "mix": dict(self.config.mix)},
            "kinds": {k.kind: k.to_json(self.traffic_s) for k in self.rows()},
            "attempts": r.attempts,
            "anomalies": r.anomalies,
            "failure_samples": r.failures,
            "jobs": self.jobs,
            "reconciliation": self.reconciliation.to_json(),
            "rules": RULES,
        }
