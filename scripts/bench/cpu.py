"""CPU time per process of this benchmark's Ray cluster, to see where time goes."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

import psutil


def _component(proc: psutil.Process) -> str:
    if proc.pid == os.getpid():
        return "benchmark driver (load generator)"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if cmd.startswith("ray::ServeReplica:"):
        return cmd.split()[0].rsplit(":", 1)[-1] + " replica"
    names = {
        "ray::ProxyActor": "HTTP proxy",
        "ray::ServeController": "Serve controller",
        "raylet": "raylet",
        "gcs_server": "GCS",
        "dashboard/agent.py": "Ray agents",
        "runtime_env/agent": "Ray agents",
        "ray::IDLE": "idle Ray workers",
    }
    for needle, name in names.items():
        if needle in cmd:
            return name
    return "other Ray processes"


def _cluster_processes(ray_tmp: str) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {os.getpid(): psutil.Process()}
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if ray_tmp in cmd:
            found[proc.pid] = proc
            try:
                for child in proc.children(recursive=True):
                    found[child.pid] = child
            except psutil.Error:
                continue
    return list(found.values())


@dataclass
class CpuSampler:
    """CPU seconds used by each component of the cluster between start and stop."""

    ray_tmp: str
    _start: dict[int, float] = field(default_factory=dict)
    used_s: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    requests: int = 0
    wall_s: float = 0.0

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self._start = {}
        for proc in _cluster_processes(self.ray_tmp):
            try:
                self._start[proc.pid] = self._cpu(proc)
            except psutil.Error:
                continue

    def stop(self) -> None:
        for proc in _cluster_processes(self.ray_tmp):
            try:
                used = self._cpu(proc) - self._start.get(proc.pid, 0.0)
                self.used_s[_component(proc)] += max(0.0, used)
            except psutil.Error:
                continue


def cpu_table(sampler: CpuSampler, requests: int, wall_s: float) -> str:
    """Markdown: CPU ms per request by component, and cores busy on average."""
    total = sum(sampler.used_s.values())
    lines = [
        "| process | CPU ms / request | share |",
        "|---|---|---|",
    ]
    for name, used in sorted(sampler.used_s.items(), key=lambda item: -item[1]):
        if used * 1000 / max(requests, 1) < 0.05:
            continue
        lines.append(f"| {name} | {used * 1000 / requests:.1f} | {used / total:.0%} |")
    lines.append(f"| **total** | **{total * 1000 / requests:.1f}** | 100% |")
    busy = total / wall_s if wall_s > 0 else 0.0
    lines.append("")
    lines.append(f"{requests} requests in {wall_s:.1f} s; the cluster kept {busy:.2f} cores busy.")
    return "\n".join(lines)
