"""What one hostile run does, and the thresholds it is judged by."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
#: Hard caps, whatever the command line says: the run is bounded in time and count.
MAX_DURATION_S = 600.0
MAX_SLOW_CONNECTIONS = 200
MAX_UPLOADS = 40
MAX_UPLOAD_BYTES = 100 * MIB


@dataclass(frozen=True)
class HostileConfig:
    """One run's shape and pass thresholds.

    Attributes:
        duration_s: How long the hostile traffic and the paid traffic run.
        slow_anonymous: Slow-body connections without credentials, held open (each is
            reopened when the service closes it) for the whole run.
        slow_authenticated: The same with a valid API token (of a user of their own).
        declared_bytes: ``Content-Length`` a slow body declares.
        first_bytes: Body bytes it sends at once; then half the connections stall
            and half trickle one byte every ``trickle_every_s``.
        uploads: Parallel large uploads per round, all from one user.
        upload_bytes: Size of each (a valid MP4 padded with a ``free`` box).
        kill_at_s: When the Ingress replica is SIGKILLed (``None``: never).
        concurrency: Workers of the paid traffic.
        probe_interval_s: Pause between two ``/healthz`` probes.
        probe_timeout_s: A probe without a 200 in this time failed.
        kill_grace_s: After ``/healthz`` answers again, how long answers to requests
            that were in flight at the kill may still be 5xx or missing.
        max_rss_growth_mib: Largest allowed peak-over-baseline RSS of a process role.
        max_probe_latency_s: Largest allowed ``/healthz`` latency outside the kill window.
        max_restart_s: Longest allowed window without ``/healthz`` after the kill.
        seed: Seed of the paid traffic's random choices.
    """

    duration_s: float = 150.0
    slow_anonymous: int = 70
    slow_authenticated: int = 50
    declared_bytes: int = 50 * MIB
    first_bytes: int = 1024
    trickle_every_s: float = 2.0
    uploads: int = 20
    upload_bytes: int = 32 * MIB
    kill_at_s: float | None = 60.0
    concurrency: int = 4
    probe_interval_s: float = 0.5
    probe_timeout_s: float = 5.0
    kill_grace_s: float = 5.0
    max_rss_growth_mib: float = 512.0
    max_probe_latency_s: float = 3.0
    max_restart_s: float = 60.0
    seed: int = 15

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration_s must be in (0, {MAX_DURATION_S:g}]")
        if not 0 <= self.slow_anonymous + self.slow_authenticated <= MAX_SLOW_CONNECTIONS:
            raise ValueError(f"at most {MAX_SLOW_CONNECTIONS} slow connections")
        if min(self.slow_anonymous, self.slow_authenticated, self.uploads) < 0:
            raise ValueError("counts must be >= 0")
        if self.uploads > MAX_UPLOADS:
            raise ValueError(f"at most {MAX_UPLOADS} parallel uploads")
        if not 0 < self.upload_bytes <= MAX_UPLOAD_BYTES:
            raise ValueError(f"upload_bytes must be in (0, {MAX_UPLOAD_BYTES}]")
        if not 0 < self.first_bytes < self.declared_bytes:
            raise ValueError("first_bytes must be in (0, declared_bytes)")
        if self.kill_at_s is not None and not 0 < self.kill_at_s < self.duration_s:
            raise ValueError("kill_at_s must fall inside the run")
        if not 1 <= self.concurrency <= 32:
            raise ValueError("concurrency must be between 1 and 32")
        if self.probe_interval_s <= 0 or self.probe_timeout_s <= 0 or self.trickle_every_s <= 0:
            raise ValueError("intervals and timeouts must be > 0")
