"""Cluster-wide figures for ``GET /api/stats``: per node and per deployment.

Node figures are sampled by a zero-CPU Ray task pinned to each alive node (psutil and
NVML there); deployment figures come from ``serve.status()`` plus the requests this
ingress replica has in flight to each deployment. Results are cached briefly so a
dashboard polling every few seconds costs one sample per node per period.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psutil
import ray
from ray import serve
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from serve_app.deployments.handles import DispatchCounter
from serve_app.observability.cluster import GB, ClusterStats, DeploymentStats, GpuProbe, NodeStats
from serve_app.observability.cpu import CpuMeter

SAMPLE_TIMEOUT_S = 3.0
CACHE_TTL_S = 2.0
#: How long a node's sampling task measures its CPU.
NODE_CPU_WINDOW_S = 0.5


@ray.remote(num_cpus=0)
def _sample_node() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    gpus = GpuProbe().read()
    return {
        "cpu_percent": CpuMeter(min_span_s=NODE_CPU_WINDOW_S).percent(),
        "ram_used": round(float(memory.total - memory.available) / GB, 3),
        "ram_total": round(float(memory.total) / GB, 3),
        "gpus": gpus,
    }


class RayClusterStats:
    """:class:`~serve_app.observability.cluster.ClusterStatsProvider` over Ray and Serve."""

    def __init__(self, app_name: str, dispatched: DispatchCounter) -> None:
        self._app_name = app_name
        self._dispatched = dispatched
        self._cached: tuple[float, ClusterStats] | None = None
        self._lock = asyncio.Lock()

    async def cluster_stats(self) -> ClusterStats:
        async with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > CACHE_TTL_S:
                nodes, deployments = await asyncio.gather(self._nodes(), self._deployments())
                self._cached = (now, ClusterStats(nodes=nodes, deployments=deployments))
            stats = self._cached[1]
        return stats

    async def _nodes(self) -> list[NodeStats]:
        nodes = [n for n in ray.nodes()]
        refs = {
            n["NodeID"]: _sample_node.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote()
            for n in nodes
            if n.get("Alive")
        }
        ready, _ = await asyncio.to_thread(
            ray.wait, list(refs.values()), num_returns=len(refs), timeout=SAMPLE_TIMEOUT_S
        )
        ready_set = set(ready)
        result = []
        for node in nodes:
            node_id = node["NodeID"]
            ref = refs.get(node_id)
            sample: dict[str, Any] = {}
            if ref is not None and ref in ready_set:
                sample = await ref
            result.append(
                NodeStats(
                    node_id=node_id,
                    address=str(node.get("NodeManagerAddress", "")),
                    alive=bool(node.get("Alive")) and bool(sample),
                    cpu_percent=sample.get("cpu_percent", 0.0),
                    ram_used=sample.get("ram_used", 0.0),
                    ram_total=sample.get("ram_total", 0.0),
                    gpus=sample.get("gpus", []),
                )
            )
        return result

    async def _deployments(self) -> list[DeploymentStats]:
        status = await asyncio.to_thread(serve.status)
        app = status.applications.get(self._app_name)
        if app is None:
            return []
        result = []
        for name, deployment in app.deployments.items():
            states = {str(k): int(v) for k, v in deployment.replica_states.items()}
            running = sum(v for k, v in states.items() if k.endswith("RUNNING"))
            result.append(
                DeploymentStats(
                    app=self._app_name,
                    name=name,
                    status=str(deployment.status.value),
                    replicas=running,
                    target_replicas=sum(states.values()),
                    ongoing_requests=float(self._dispatched.get(name)),
                    queued_requests=0.0,
                )
            )
        return result
