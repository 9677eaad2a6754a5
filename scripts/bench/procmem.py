"""Memory of the service's Ray processes (HTTP proxy, Serve replicas), sampled from /proc.

Three measures, because Ray moves request bodies and frames through its shared-memory
object store, whose pages show up in the RSS of every process that wrote or read them:

- ``rss``: the sum of VmRSS (counts object-store pages once per process that touched
  them);
- ``private``: the sum of VmRSS without RssShmem;
- ``physical``: ``private`` plus the pages of *this cluster's* object store, counted
  once (the allocated blocks of the raylet's shared-memory file; unlike ``Shmem`` in
  /proc/meminfo, other clusters on the same machine do not change it).

Per process, the kernel's own peak RSS (VmHWM) is read per phase: it is reset at the
start of each phase (``/proc/PID/clear_refs``), so no short spike between two samples
is missed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field

import psutil

MB = 1_000_000
#: glibc settings that stop freed request buffers from lingering in per-thread arenas
#: (what ``scripts/serve.sh`` exports and ``serve_config.yaml`` sets for replicas).
MALLOC_TUNING = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": "131072",
    "MALLOC_TRIM_THRESHOLD_": "131072",
}
PROXY = "ray::ProxyActor"
REPLICA = "ray::ServeReplica:"
METRICS = ("physical", "private", "rss")


def service_processes(app: str | None = None) -> dict[int, str]:
    """pid -> name of the proxy and the replicas (of ``app``, if given) in this process tree.

    Names are ``proxy`` and the deployment name of each replica.
    """
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            title = " ".join(proc.cmdline()) or proc.name()
        except psutil.Error:
            continue
        name = process_name(title, app)
        if name is not None:
            found[proc.pid] = name
    return found


def process_name(title: str, app: str | None = None) -> str | None:
    """``proxy``, a replica's deployment name, or None for other processes.

    ``title`` is a Ray process title, e.g. ``ray::ServeReplica:myapp:Ingress``.
    """
    first = title.split(" ", 1)[0]
    if first == PROXY:
        return "proxy"
    if not first.startswith(REPLICA):
        return None
    parts = first.removeprefix(REPLICA).split(":")
    if len(parts) < 2 or (app is not None and parts[0] != app):
        return None
    return parts[-1]


def shared_memory_files() -> list[str]:
    """``/proc/PID/fd/N`` links to shared-memory files of this process tree's processes.

    The raylet holds Ray's object store open as a deleted file in /dev/shm; its blocks
    are the store's pages, counted once however many processes map them.
    """
    links: dict[tuple[int, int], str] = {}
    for proc in psutil.Process().children(recursive=True):
        fd_dir = f"/proc/{proc.pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            link = f"{fd_dir}/{fd}"
            try:
                target = os.readlink(link)
                if not target.startswith(("/dev/shm/", "/memfd:")):
                    continue
                st = os.stat(link)
            except OSError:
                continue
            links.setdefault((st.st_dev, st.st_ino), link)
    return list(links.values())


def shared_bytes(links: list[str]) -> int:
    """Allocated bytes of the shared-memory files behind ``links`` (0 for a gone one)."""
    total = 0
    for link in links:
        with contextlib.suppress(OSError):
            total += os.stat(link).st_blocks * 512
    return total


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, RssShmem and VmHWM of ``pid`` in bytes (empty if it is gone)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssShmem", "VmHWM"):
                    fields[key] = int(value.split()[0]) * 1024
    except OSError:
        return {}
    return fields


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak RSS (VmHWM) of ``pid`` to its current RSS."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Snapshot:
    """Memory of the service at one moment: per-process RSS and private, shared once."""

    rss: dict[int, int]
    private: dict[int, int]
    shared: int

    def total(self, metric: str) -> int:
        if metric == "rss":
            return sum(self.rss.values())
        if metric == "private":
            return sum(self.private.values())
        if metric == "physical":
            return sum(self.private.values()) + self.shared
        raise ValueError(f"unknown metric {metric!r}")


def snapshot(pids: dict[int, str], links: list[str]) -> Snapshot:
    rss, private = {}, {}
    for pid in pids:
        fields = proc_status(pid)
        rss[pid] = fields.get("VmRSS", 0)
        private[pid] = fields.get("VmRSS", 0) - fields.get("RssShmem", 0)
    return Snapshot(rss=rss, private=private, shared=shared_bytes(links))


@dataclass
class PhasePeak:
    """Peaks of one phase: totals per metric (sampled), per process (kernel VmHWM)."""

    totals: dict[str, int] = field(default_factory=dict)
    shared: int = 0
    #: pid -> peak RSS: the kernel's VmHWM since the phase began where it could be
    #: reset, else the highest sample.
    rss_each: dict[int, int] = field(default_factory=dict)
    kernel_peaks: bool = False
    samples: int = 0
    seconds: float = 0.0

    def add(self, snap: Snapshot) -> None:
        for metric in METRICS:
            self.totals[metric] = max(self.totals.get(metric, 0), snap.total(metric))
        self.shared = max(self.shared, snap.shared)
        for pid, value in snap.rss.items():
            self.rss_each[pid] = max(self.rss_each.get(pid, 0), value)
        self.samples += 1


class Sampler(threading.Thread):
    """Samples the service's memory every ``period_s``; keeps peaks per phase.

    Call :meth:`begin` at the start of each phase and :meth:`stop` at the end.
    """

    def __init__(self, pids: dict[int, str], links: list[str], period_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.links = links
        self.period_s = period_s
        self.phases: dict[str, PhasePeak] = {}
        self.last: Snapshot | None = None
        self._phase: str | None = None
        self._began = 0.0
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def begin(self, phase: str) -> None:
        """End the current phase (if any) and start ``phase``."""
        with self._lock:
            self._close()
            reset = [reset_peak(pid) for pid in self.pids]
            self.phases[phase] = PhasePeak(kernel_peaks=all(reset))
            self._phase = phase
            self._began = time.monotonic()

    def _close(self) -> None:
        if self._phase is None:
            return
        peak = self.phases[self._phase]
        peak.add(snapshot(self.pids, self.links))
        peak.seconds = time.monotonic() - self._began
        if peak.kernel_peaks:
            for pid in self.pids:
                hwm = proc_status(pid).get("VmHWM")
                if hwm is not None:
                    peak.rss_each[pid] = max(peak.rss_each.get(pid, 0), hwm)
        self._phase = None

    def run(self) -> None:
        while not self._stop_event.is_set():
            snap = snapshot(self.pids, self.links)
            with self._lock:
                self.last = snap
                if self._phase is not None:
                    self.phases[self._phase].add(snap)
            self._stop_event.wait(self.period_s)

    def stop(self) -> None:
        """End the current phase and the sampling thread."""
        self._stop_event.set()
        if self.is_alive():
            self.join()
        with self._lock:
            self._close()


def growth_mb(peak: int, idle: int) -> float:
    return round((peak - idle) / MB, 1)
