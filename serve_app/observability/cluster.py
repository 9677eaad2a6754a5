"""System load for ``GET /api/stats``: CPU and RAM (psutil), GPUs (NVML), work in flight.

Memory figures are GB (2**30 bytes) as floats. Without an NVIDIA driver NVML fails
to initialise and the GPU list is simply empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import psutil

from serve_app.observability.cpu import CpuMeter

logger = logging.getLogger(__name__)

GB = float(2**30)


@dataclass(frozen=True)
class GpuStats:
    name: str
    memory_used: float
    memory_total: float
    utilization: float


@dataclass(frozen=True)
class NodeStats:
    """One Ray node's figures, as a :class:`ClusterStatsProvider` reports them."""

    node_id: str
    address: str
    alive: bool
    cpu_percent: float
    ram_used: float
    ram_total: float
    gpus: list[GpuStats] = field(default_factory=list)


@dataclass(frozen=True)
class DeploymentStats:
    """One Serve deployment: replicas and the requests queued or running on them."""

    app: str
    name: str
    status: str
    replicas: int
    target_replicas: int
    ongoing_requests: float
    queued_requests: float


@dataclass(frozen=True)
class ClusterStats:
    nodes: list[NodeStats] = field(default_factory=list)
    deployments: list[DeploymentStats] = field(default_factory=list)


class ClusterStatsProvider(Protocol):
    """Per-node and per-deployment figures; implemented in the Ray layer."""

    async def cluster_stats(self) -> ClusterStats: ...


class InFlight:
    """Counts operations in progress in this process (``status: Busy`` while > 0)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """``with in_flight.track(): ...`` (works in sync and async code)."""
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1


class GpuProbe:
    """Reads GPUs through NVML; initialises once and remembers when there is none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: bool | None = None

    def _init(self) -> bool:
        if self._ready is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                self._ready = True
            except Exception as exc:  # no library, no driver, no device
                logger.info("no NVIDIA GPUs visible (%s)", type(exc).__name__)
                self._ready = False
        return self._ready

    def read(self) -> list[GpuStats]:
        with self._lock:
            if not self._init():
                return []
            import pynvml

            try:
                gpus = []
                for i in range(pynvml.nvmlDeviceGetCount()):
                    handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                    name = pynvml.nvmlDeviceGetName(handle)
                    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                    usage = pynvml.nvmlDeviceGetUtilizationRates(handle)
                    gpus.append(
                        GpuStats(
                            name=name.decode() if isinstance(name, bytes) else str(name),
                            memory_used=round(float(memory.used) / GB, 3),
                            memory_total=round(float(memory.total) / GB, 3),
                            utilization=float(usage.gpu),
                        )
                    )
                return gpus
            except Exception:
                logger.warning("reading GPU figures through NVML failed", exc_info=True)
                return []


def system_stats(in_flight: int, gpus: list[GpuStats], cpu_percent: float) -> dict[str, Any]:
    """The ``GET /api/stats`` body (without the optional cluster keys)."""
    memory = psutil.virtual_memory()
    return {
        "status": "Busy" if in_flight > 0 else "Idle",
        "gpu_count": len(gpus),
        "gpus": [asdict(g) for g in gpus],
        "cpu_percent": cpu_percent,
        "ram_used": round(float(memory.total - memory.available) / GB, 3),
        "ram_total": round(float(memory.total) / GB, 3),
    }


def cluster_fields(stats: ClusterStats) -> dict[str, Any]:
    """The optional ``nodes`` and ``deployments`` keys."""
    return {
        "nodes": [asdict(n) for n in stats.nodes],
        "deployments": [asdict(d) for d in stats.deployments],
    }


async def collect_stats(
    in_flight: InFlight,
    probe: GpuProbe,
    cpu: CpuMeter,
    provider: ClusterStatsProvider | None = None,
) -> dict[str, Any]:
    """Everything ``GET /api/stats`` returns; Busy also when the cluster reports work."""
    body = await asyncio.to_thread(
        lambda: system_stats(in_flight.count, probe.read(), cpu.percent())
    )
    if provider is None:
        return body
    try:
        cluster = await provider.cluster_stats()
    except Exception:
        logger.warning("cluster stats provider failed", exc_info=True)
        cluster = ClusterStats()
    if any(d.ongoing_requests > 0 or d.queued_requests > 0 for d in cluster.deployments):
        body["status"] = "Busy"
    body.update(cluster_fields(cluster))
    return body
