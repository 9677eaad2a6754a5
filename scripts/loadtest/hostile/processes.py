"""The service's processes, found among this process's descendants by Ray's titles.

Ray names its worker processes ``ray::<actor>`` (``ray::ProxyActor``,
``ray::ServeReplica:<app>:Ingress`` ...). Only descendants of the process that
started the cluster are looked at, so nothing of another cluster is ever touched.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

MIB = 1024 * 1024


def roles(app: str) -> dict[str, str]:
    """Role name -> the title fragment that marks its process."""
    return {
        "proxy": "ray::ProxyActor",
        "Ingress": f"ServeReplica:{app}:Ingress",
        "FrameExtractor": f"ServeReplica:{app}:FrameExtractor",
    }


def find(
    fragments: Mapping[str, str], root_pid: int | None = None
) -> dict[str, list[psutil.Process]]:
    """Live descendants of ``root_pid`` (default: this process) per role."""
    found: dict[str, list[psutil.Process]] = {role: [] for role in fragments}
    try:
        children = psutil.Process(root_pid or os.getpid()).children(recursive=True)
    except psutil.Error:
        return found
    for proc in children:
        try:
            title = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        for role, fragment in fragments.items():
            if fragment in title:
                found[role].append(proc)
    return found


#: Suffix of a role's private memory: RSS less shared pages (Ray's object store is
#: mapped into the processes that pass large objects; it is bounded by its own size).
PRIVATE = " private"


def memory_mib(procs: list[psutil.Process]) -> tuple[float, float] | None:
    """Summed ``(RSS, RSS - shared)`` of ``procs`` in MiB (``None`` when none is alive)."""
    rss = shared = 0
    alive = False
    for proc in procs:
        try:
            info = proc.memory_info()
        except psutil.Error:
            continue
        rss += info.rss
        shared += getattr(info, "shared", 0)
        alive = True
    return (rss / MIB, (rss - shared) / MIB) if alive else None


@dataclass
class MemoryLog:
    """RSS per role: the first sample (baseline), the peak, the last, and the peak of
    every ``bucket`` samples (the shape of the curve: a plateau or a climb)."""

    baseline: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[int]] = field(default_factory=dict)
    samples: int = 0
    bucket: int = 10

    def add(self, sample: Mapping[str, float | None]) -> None:
        new_bucket = self.samples % self.bucket == 0
        self.samples += 1
        for role, value in sample.items():
            if value is None:
                continue
            points = self.series.setdefault(role, [])
            if new_bucket or not points:
                points.append(round(value))
            else:
                points[-1] = max(points[-1], round(value))
        for role, value in sample.items():
            if value is None:
                continue
            self.baseline.setdefault(role, value)
            self.peak[role] = max(self.peak.get(role, 0.0), value)
            self.last[role] = value

    def growth(self, role: str) -> float:
        return self.peak.get(role, 0.0) - self.baseline.get(role, 0.0)


def sample(fragments: Mapping[str, str]) -> dict[str, float | None]:
    """RSS per role, and private memory per role (key ``role + PRIVATE``)."""
    out: dict[str, float | None] = {}
    for role, procs in find(fragments).items():
        measured = memory_mib(procs)
        out[role] = measured[0] if measured else None
        out[role + PRIVATE] = measured[1] if measured else None
    return out


@dataclass(frozen=True)
class Kill:
    pid: int
    at: float


def kill_one(fragment: str) -> Kill:
    """SIGKILL the (first) descendant process whose title contains ``fragment``.

    Raises RuntimeError when there is none.
    """
    procs = find({"target": fragment})["target"]
    if not procs:
        raise RuntimeError(f"no process titled {fragment!r} among this process's descendants")
    pid = procs[0].pid
    os.kill(pid, signal.SIGKILL)
    return Kill(pid=pid, at=time.monotonic())
