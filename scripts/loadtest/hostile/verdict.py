"""The conditions a hostile run must meet, and its report as markdown and JSON.

Pass conditions:

* ``/healthz`` answered 200 within ``probe_timeout_s`` every time outside the
  *restart window* (the kill until the first 200 after it), no slower than
  ``max_probe_latency_s``, and the window lasted at most ``max_restart_s``;
* no 5xx or lost answer of the paid traffic or the uploads outside the restart
  window widened by ``kill_grace_s`` (requests in flight at the kill fail with it),
  except *refusal resets*: a large upload whose connection was reset while the
  client was still sending its body. The service answers a refused upload (429)
  before reading the body and the proxy then closes the connection with the body
  unread, which resets it; a client that sends its body eagerly often loses the 429.
  They are counted and reported, and the upload is retried under its key;
* no slow body was held past the service's body deadlines (``max_slow_hold_s``);
* each process role's private memory (RSS less shared pages: Ray's object store,
  bounded by its own size, is mapped into the processes that pass large objects)
  peaked within ``max_rss_growth_mib`` of its baseline; RSS is reported too;
* no orphan file once the leases have run out;
* every user's credits reconcile (balance, ledger, observed charges; nothing left
  ``reserved``), and no API promise was broken (anomalies).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from scripts.bench.common import percentile_ms
from scripts.loadtest.hostile.config import HostileConfig
from scripts.loadtest.hostile.orphans import DiskState
from scripts.loadtest.hostile.probe import ProbeLog
from scripts.loadtest.hostile.processes import PRIVATE, Kill, MemoryLog
from scripts.loadtest.hostile.slow_bodies import SlowTally
from scripts.loadtest.hostile.uploads import KIND as UPLOAD_KIND
from scripts.loadtest.hostile.uploads import UploadTally
from scripts.loadtest.reconcile import Reconciliation
from scripts.loadtest.stats import NO_ANSWER, Recorder

#: httpx errors of a connection the server reset or closed while the body was sent.
RESET_ERRORS = ("ReadError", "WriteError", "RemoteProtocolError")


@dataclass
class TimedRecorder(Recorder):
    """A :class:`Recorder` that also notes when each 5xx or lost answer arrived."""

    failure_times: list[tuple[float, str, int, str]] = field(default_factory=list)

    def record(
        self, kind: str, status: int, latency_s: float, seen_503: int = 0, note: str = ""
    ) -> None:
        super().record(kind, status, latency_s, seen_503, note)
        if status >= 500 or status == NO_ANSWER:
            self.failure_times.append((time.monotonic(), kind, status, note[:160]))


def is_refusal_reset(kind: str, status: int, note: str) -> bool:
    """A large upload that got no answer because its connection was reset."""
    return kind == UPLOAD_KIND and status == NO_ANSWER and note.startswith(RESET_ERRORS)


@dataclass(frozen=True)
class Window:
    """The restart window: from the kill to the first ``/healthz`` 200 after it."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class HostileReport:
    config: HostileConfig
    began: float
    traffic_s: float
    settle_s: float
    max_slow_hold_s: float
    kill: Kill | None
    window: Window | None
    probes: ProbeLog
    recorder: TimedRecorder
    slow: list[SlowTally]
    uploads: UploadTally
    memory: MemoryLog
    disk: DiskState
    reconciliation: Reconciliation
    load_failures: list[str] = field(default_factory=list)

    # -- figures --------------------------------------------------------------------

    def _span(self, grace: float = 0.0) -> tuple[float, float]:
        if self.window is None:
            return (float("inf"), float("-inf"))
        return (self.window.start, self.window.end + grace)

    def steady_probes(self) -> dict[str, Any]:
        probes = self.probes.outside(*self._span())
        latencies = [p.latency_s for p in probes if p.ok]
        return {
            "probes": len(probes),
            "failed": sum(not p.ok for p in probes),
            "max_s": round(max(latencies, default=0.0), 3),
            "p99_ms": round(percentile_ms(latencies, 99), 1),
            "p50_ms": round(percentile_ms(latencies, 50), 1),
        }

    def window_probes(self) -> dict[str, Any]:
        probes = self.probes.inside(*self._span())
        return {"probes": len(probes), "failed": sum(not p.ok for p in probes)}

    def _outside(self) -> list[tuple[float, str, int, str]]:
        start, end = self._span(self.config.kill_grace_s)
        return [f for f in self.recorder.failure_times if not start <= f[0] <= end]

    def refusal_resets(self) -> list[tuple[float, str, int, str]]:
        """Large uploads reset outside the restart window (see the module docstring)."""
        return [f for f in self._outside() if is_refusal_reset(*f[1:])]

    def failures_outside(self) -> list[tuple[float, str, int, str]]:
        return [f for f in self._outside() if not is_refusal_reset(*f[1:])]

    def failures_inside(self) -> int:
        return len(self.recorder.failure_times) - len(self._outside())

    @property
    def failures(self) -> list[str]:
        c, out = self.config, []
        steady = self.steady_probes()
        if steady["failed"]:
            out.append(f"/healthz failed {steady['failed']} times outside the restart window")
        if steady["max_s"] > c.max_probe_latency_s:
            out.append(f"/healthz took {steady['max_s']} s (> {c.max_probe_latency_s:g} s)")
        if c.kill_at_s is not None and self.kill is None:
            out.append("the Ingress was not killed")
        if self.kill is not None and self.window is None:
            out.append("/healthz never answered again after the kill")
        if self.window is not None and self.window.seconds > c.max_restart_s:
            out.append(f"restart window {self.window.seconds:.1f} s > {c.max_restart_s:g} s")
        outside = self.failures_outside()
        if outside:
            kinds = sorted({f"{kind} {status or 'no answer'}" for _, kind, status, _ in outside})
            out.append(f"{len(outside)} 5xx/lost answers outside the restart window: {kinds}")
        for tally in self.slow:
            if max(tally.max_held_s, tally.max_unanswered_s) > self.max_slow_hold_s:
                out.append(
                    f"a slow {tally.label} body was held {tally.max_held_s:.0f} s "
                    f"(> {self.max_slow_hold_s:g} s)"
                )
        for role in self.memory.baseline:
            if role.endswith(PRIVATE) and self.memory.growth(role) > c.max_rss_growth_mib:
                out.append(f"{role} memory grew {self.memory.growth(role):.0f} MiB")
        if self.disk.orphan_count:
            out.append(f"{self.disk.orphan_count} orphan files ({self.disk.orphan_bytes} bytes)")
        if not self.reconciliation.credits_ok:
            out.append("credits do not reconcile")
        if self.recorder.anomaly_count:
            out.append(f"{self.recorder.anomaly_count} anomalies (broken API promises)")
        if self.uploads.succeeded == 0 and c.uploads:
            out.append("no large upload succeeded")
        return out + self.load_failures

    @property
    def passed(self) -> bool:
        return not self.failures

    # -- output ---------------------------------------------------------------------

    def rows(self) -> list[tuple[str, str]]:
        c, steady, window = self.config, self.steady_probes(), self.window_probes()
        rows = [
            ("traffic", f"{self.traffic_s:.0f} s, then {self.settle_s:.0f} s settle"),
            (
                "/healthz outside restart window",
                f"{steady['probes']} probes, {steady['failed']} failed, p50 "
                f"{steady['p50_ms']} ms, p99 {steady['p99_ms']} ms, max {steady['max_s']} s",
            ),
        ]
        if self.kill is not None:
            secs = f"{self.window.seconds:.1f} s" if self.window else "never recovered"
            rows.append(
                (
                    "Ingress SIGKILL",
                    f"pid {self.kill.pid} at {self.kill.at - self.began:.0f} s; /healthz back "
                    f"after {secs} ({window['failed']}/{window['probes']} probes failed)",
                )
            )
        total = self.recorder.total()
        rows.append(
            (
                "paid traffic + uploads",
                f"{total.requests} requests, {total.ok} ok, 4xx {total.client_errors}, "
                f"5xx/lost in window {self.failures_inside()}, outside "
                f"{len(self.failures_outside())}, upload refusal resets "
                f"{len(self.refusal_resets())}",
            )
        )
        for tally in self.slow:
            rows.append(
                (
                    f"slow bodies ({tally.label})",
                    f"{tally.opened} opened, peak {tally.peak_open} open, ended by "
                    f"{dict(tally.outcomes)}, longest held {tally.max_held_s:.1f} s "
                    f"(open at the end: up to {tally.max_unanswered_s:.1f} s)",
                )
            )
        up = self.uploads
        rows.append(
            (
                f"large uploads ({c.uploads} x {c.upload_bytes // (1024 * 1024)} MB)",
                f"{up.rounds} rounds, {up.succeeded} done, attempts {dict(up.attempts)}, "
                f"gave up {dict(up.gave_up)}, p50 {percentile_ms(up.latencies_s, 50):.0f} ms",
            )
        )
        for role in sorted(self.memory.baseline):
            rows.append(
                (
                    f"{'memory' if role.endswith(PRIVATE) else 'RSS'} {role}",
                    f"{self.memory.baseline[role]:.0f} -> peak {self.memory.peak[role]:.0f} "
                    f"MiB (+{self.memory.growth(role):.0f}), end {self.memory.last[role]:.0f}",
                )
            )
        rows.append(
            (
                "orphan files",
                f"{self.disk.orphan_count} {self.disk.counts()}; "
                f"unfinished chunked uploads {self.disk.unfinished_uploads}, claims left "
                f"{self.disk.claims}",
            )
        )
        for user in self.reconciliation.users:
            rows.append(
                (
                    f"credits {user.role} {user.username}",
                    f"start {user.start}, charged {user.charged}, api {user.api_balance}, "
                    f"db {user.db_balance}, ledger {user.ledger_sum}, reserved "
                    f"{user.open_reservations}, unknown {user.unknown_outcomes}"
                    + (f" PROBLEMS {user.problems}" if user.problems else ""),
                )
            )
        if self.recorder.anomalies:
            rows.append(("anomalies", "; ".join(self.recorder.anomalies)[:600]))
        rows.append(("verdict", "PASS" if self.passed else "FAIL: " + "; ".join(self.failures)))
        return rows

    def markdown(self) -> str:
        lines = ["| check | figures |", "|---|---|"]
        lines += [f"| {name} | {value.replace('|', '/')} |" for name, value in self.rows()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": self.failures,
            "rows": dict(self.rows()),
            "restart_window_s": self.window.seconds if self.window else None,
            "steady_probes": self.steady_probes(),
            "memory": {
                "baseline": self.memory.baseline,
                "peak": self.memory.peak,
                "last": self.memory.last,
                "peak_per_10_s": self.memory.series,
            },
            "anomalies": self.recorder.anomalies,
            "failed_probes": [
                {
                    "at_s": round(p.at - self.began, 1),
                    "latency_s": round(p.latency_s, 2),
                    "status": p.status,
                    "error": p.error,
                }
                for p in self.probes.probes
                if not p.ok
            ],
            "orphans": self.disk.orphans,
            "failures_outside_window": [
                {"at_s": round(at - self.began, 1), "kind": kind, "status": status, "note": note}
                for at, kind, status, note in self.failures_outside()
            ],
            "reconciliation": self.reconciliation.to_json(),
        }
