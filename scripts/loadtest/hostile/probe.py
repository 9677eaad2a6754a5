"""``GET /healthz`` every ``interval_s`` for the whole run: latency and failures.

Each probe runs on a fresh connection (as a load balancer's health check does), so
a probe is not stuck behind a connection the service has closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Probe:
    """One probe: when it started (monotonic), how long it took, what came back."""

    at: float
    latency_s: float
    status: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class ProbeLog:
    probes: list[Probe] = field(default_factory=list)

    def first_ok_after(self, at: float) -> Probe | None:
        return next((p for p in self.probes if p.at >= at and p.ok), None)

    def outside(self, start: float, end: float) -> list[Probe]:
        """Probes that ended before ``start`` or started after ``end``."""
        return [p for p in self.probes if not _overlaps(p, start, end)]

    def inside(self, start: float, end: float) -> list[Probe]:
        """Probes in flight at some time in ``[start, end]`` (e.g. at the kill)."""
        return [p for p in self.probes if _overlaps(p, start, end)]


def _overlaps(probe: Probe, start: float, end: float) -> bool:
    return probe.at + probe.latency_s >= start and probe.at <= end


async def probe_health(
    base_url: str, interval_s: float, timeout_s: float, stop: asyncio.Event, log: ProbeLog
) -> None:
    """Probe until ``stop``; failures are recorded, never raised."""
    url = base_url.rstrip("/") + "/healthz"
    async with httpx.AsyncClient(
        timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=0)
    ) as http:
        while not stop.is_set():
            began = time.monotonic()
            try:
                response = await http.get(url)
                probe = Probe(began, time.monotonic() - began, response.status_code)
            except httpx.HTTPError as exc:
                probe = Probe(began, time.monotonic() - began, 0, type(exc).__name__)
            log.probes.append(probe)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, interval_s - probe.latency_s))
