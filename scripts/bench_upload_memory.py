"""Benchmark: memory of the running service while a large video arrives in chunks.

Starts the service (Ray Serve, the default CPU profile from ``build_app``) on
127.0.0.1 with its own ``RAY_TMPDIR`` and data directory, creates a user and an API
token directly in its database, makes a ~300 MB high-bitrate H.264 video of noise
(ffmpeg when on PATH, else PyAV), measures the idle memory of the service's Ray
processes (the HTTP proxy and every Serve replica), uploads the video with the chunk
client (``serve_app.uploads.client``) while sampling them every 50 ms, and prints the
peak growth over idle during the upload and during the final chunk (assembly +
analysis), and the analysis response. Ray and Serve are shut down at the end, and
the whole run is bounded by ``--timeout``.

Three measures (see :data:`METRICS`): the sum of RSS (which counts the pages of
Ray's shared object store once per process that touched them), the sum of private
RSS, and ``physical`` = private + shared memory counted once. Target: ``physical``
growth during the upload < 150 MB (exit status 1 otherwise).

``--malloc-tuning`` runs Ray with the glibc settings recommended for deployment
(``MALLOC_ARENA_MAX=2`` and fixed mmap/trim thresholds).

Usage:
    .venv/bin/python scripts/bench_upload_memory.py [--size-mb 300] [--chunk-size-mb 8]
        [--timeout 1200] [--malloc-tuning] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import psutil

MB = 1_000_000
MIB = 1024 * 1024
TARGET_MB = 150
#: glibc settings that stop freed request buffers from lingering in per-thread arenas.
MALLOC_TUNING = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": "131072",
    "MALLOC_TRIM_THRESHOLD_": "131072",
}
#: Ray process titles that make up the service (not the controller or idle workers).
SERVICE_TITLES = ("ray::ProxyActor", "ray::ServeReplica")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_video(path: Path, size_mb: int) -> str:
    """A noise video of about ``size_mb`` MB (noise defeats compression)."""
    bitrate = 100  # Mbit/s: 12.5 MB per second of video
    seconds = max(2, round(size_mb * 8 / bitrate))
    if shutil.which("ffmpeg"):
        subprocess.run(
            ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=1280x720:r=30",
             "-vf", "noise=alls=80:allf=t+u", "-t", str(seconds), "-c:v", "libx264",
             "-preset", "ultrafast", "-b:v", f"{bitrate}M", "-maxrate", f"{bitrate}M",
             "-bufsize", f"{2 * bitrate}M", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
        return f"ffmpeg: {seconds} s of 1280x720 noise, libx264 ultrafast ~{bitrate} Mbit/s"
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", 30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.bit_rate = bitrate * MB
        stream.codec_context.time_base = Fraction(1, 30)
        for i in range(seconds * 30):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8), format="rgb24"
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return f"PyAV: {seconds} s of 1280x720 noise, libx264 ultrafast ~{bitrate} Mbit/s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_processes() -> dict[int, str]:
    """pid -> title of the proxy and replicas among this process's descendants."""
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            title = " ".join(proc.cmdline()) or proc.name()
        except psutil.Error:
            continue
        if title.startswith(SERVICE_TITLES):
            found[proc.pid] = title.split()[0]
    return found


#: What is measured, per process: ``rss`` (VmRSS) and ``private`` (VmRSS without
#: RssShmem). RssShmem is mostly Ray's object store: a shared-memory pool whose pages
#: count in the RSS of *every* process that wrote or read an object, so a sum of RSS
#: counts them several times. ``physical`` (one number, no per-process split) is the
#: sum of ``private`` plus the machine's shared memory (``Shmem`` in /proc/meminfo,
#: where the object store's pages are counted once).
METRICS = ("rss", "private", "physical")
#: The one "process" that ``physical`` is reported under.
ALL = 0


def shmem_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    return 0


def memory(pids: dict[int, str]) -> dict[str, dict[int, int]]:
    """metric -> pid -> bytes, from /proc (``physical`` under pid :data:`ALL`)."""
    out: dict[str, dict[int, int]] = {m: {} for m in METRICS}
    for pid in pids:
        fields = {}
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("VmRSS", "RssShmem"):
                        fields[key] = int(value.split()[0]) * 1024
        except OSError:
            pass
        out["rss"][pid] = fields.get("VmRSS", 0)
        out["private"][pid] = fields.get("VmRSS", 0) - fields.get("RssShmem", 0)
    out["physical"][ALL] = sum(out["private"].values()) + shmem_bytes()
    return out


class Sampler(threading.Thread):
    """Samples the service's memory every ``period_s``; peaks per phase and metric."""

    def __init__(self, pids: dict[int, str], period_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.period_s = period_s
        self.phase = "upload"
        #: metric -> phase -> peak of the sum over processes
        self.peak_total: dict[str, dict[str, int]] = {m: {} for m in METRICS}
        #: metric -> phase -> pid -> peak
        self.peak_each: dict[str, dict[str, dict[int, int]]] = {m: {} for m in METRICS}
        self.last_total = 0
        #: Total RSS (MB) as each chunk starts: a plateau, or a leak?
        self.growth_by_chunk: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            sample = memory(self.pids)
            phase = self.phase
            for metric, values in sample.items():
                total = sum(values.values())
                if metric == "rss":
                    self.last_total = total
                peaks = self.peak_total[metric]
                peaks[phase] = max(peaks.get(phase, 0), total)
                each = self.peak_each[metric].setdefault(phase, {})
                for pid, value in values.items():
                    each[pid] = max(each.get(pid, 0), value)
            time.sleep(self.period_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def start_service(work: Path, port: int) -> str:
    """Start Ray + Serve + the app; return the API token of a new user."""
    import ray
    from ray import serve

    from serve_app.accounts.context import open_accounts
    from serve_app.accounts.users import create_user
    from serve_app.app import AppArgs, build_app
    from serve_app.config import Settings

    settings = {"data_dir": str(work / "data")}
    accounts = open_accounts(Settings(**settings))  # type: ignore[arg-type]
    try:
        user = create_user(
            accounts.database, accounts.passwords, "bench", "bench-password-1", credits=100
        )
        token = accounts.tokens.create(user.id, "bench").token
    finally:
        accounts.close()
    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(AppArgs(settings=settings)), name="bench", route_prefix="/")
    return token


def stop_service() -> None:
    import ray
    from ray import serve

    try:
        serve.shutdown()
    finally:
        ray.shutdown()


async def upload(
    url: str, token: str, video: Path, size: int, chunk_bytes: int, sampler: Sampler
) -> Any:
    from serve_app.uploads.client import ChunkUploader, ProgressBar, UploadOptions

    total = -(-size // chunk_bytes)
    posts = 0

    async def mark_phase(request: httpx.Request) -> None:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            sampler.growth_by_chunk.append(round(sampler.last_total / MB, 1))
            if posts == total:
                sampler.phase = "final chunk + analysis"

    options = UploadOptions(chunk_bytes=chunk_bytes, upload_id="bench-video", final_timeout_s=900)
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
        event_hooks={"request": [mark_phase]},
    ) as client:
        return await ChunkUploader(client, options, ProgressBar(size)).upload(video)


def report(
    idle: dict[str, dict[int, int]],
    pids: dict[int, str],
    sampler: Sampler,
    result: Any,
    times: dict[str, float],
) -> dict[str, Any]:
    def name(pid: int) -> str:
        if pid == ALL:
            return "private of all + shared memory once"
        return f"{pids[pid].removeprefix('ray::ServeReplica:')}[{pid}]"

    out: dict[str, Any] = {}
    for metric in METRICS:
        idle_total = sum(idle[metric].values())
        phases = {}
        for phase, peak in sampler.peak_total[metric].items():
            each = sampler.peak_each[metric][phase]
            phases[phase] = {
                "growth_mb": round((peak - idle_total) / MB, 1),
                "by_process_mb": {
                    name(pid): round((each[pid] - idle[metric][pid]) / MB, 1)
                    for pid in idle[metric]
                },
            }
        out[metric] = {
            "idle_total_mb": round(idle_total / MB, 1),
            "idle_by_process_mb": {name(p): round(v / MB, 1) for p, v in idle[metric].items()},
            "growth": phases,
        }

    def growth(metric: str, phase: str | None) -> float:
        phases = out[metric]["growth"]
        if phase is not None:
            return float(phases.get(phase, {}).get("growth_mb", 0.0))
        return max((float(p["growth_mb"]) for p in phases.values()), default=0.0)

    upload_physical = growth("physical", "upload")
    return {
        **out,
        "summary_growth_mb": {
            metric: {"upload": growth(metric, "upload"), "upload + analysis": growth(metric, None)}
            for metric in METRICS
        },
        "target_mb": TARGET_MB,
        "upload_within_target": upload_physical < TARGET_MB,
        "rss_mb_as_each_chunk_starts": sampler.growth_by_chunk,
        "analysis": result,
        "seconds": {k: round(v, 1) for k, v in times.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--chunk-size-mb", type=float, default=8)
    parser.add_argument("--timeout", type=int, default=1200, help="bound on the whole run (s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--malloc-tuning",
        action="store_true",
        help=f"run Ray with {' '.join(f'{k}={v}' for k, v in MALLOC_TUNING.items())}",
    )
    args = parser.parse_args()
    if args.malloc_tuning:
        os.environ.update(MALLOC_TUNING)  # inherited by every Ray process, the proxy too

    def timed_out(signum: int, frame: Any) -> None:
        raise TimeoutError(f"benchmark exceeded --timeout {args.timeout} s")

    signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(args.timeout)
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    os.environ["RAY_TMPDIR"] = str(work / "ray")
    (work / "ray").mkdir()
    times: dict[str, float] = {}
    started = False
    try:
        t0 = time.monotonic()
        video = work / "noise.mp4"
        how = make_video(video, args.size_mb)
        times["make video"] = time.monotonic() - t0
        log(f"video: {video.stat().st_size / MB:.1f} MB ({how})")
        port = free_port()
        t0 = time.monotonic()
        started = True
        token = start_service(work, port)
        times["start service"] = time.monotonic() - t0
        time.sleep(3)  # let start-up allocations settle
        pids = service_processes()
        log("service processes: " + ", ".join(f"{t}[{p}]" for p, t in pids.items()))
        idle = memory(pids)
        sampler = Sampler(pids)
        sampler.start()
        t0 = time.monotonic()
        try:
            result = asyncio.run(
                upload(
                    f"http://127.0.0.1:{port}/",
                    token,
                    video,
                    video.stat().st_size,
                    int(args.chunk_size_mb * MIB),
                    sampler,
                )
            )
        finally:
            sampler.stop()
        times["upload + analysis"] = time.monotonic() - t0
        summary = report(idle, pids, sampler, result, times)
        summary["video_mb"] = round(video.stat().st_size / MB, 1)
        summary["chunk_mib"] = args.chunk_size_mb
        summary["malloc_tuning"] = MALLOC_TUNING if args.malloc_tuning else None
    finally:
        signal.alarm(0)
        if started:
            stop_service()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()
    print(json.dumps(summary, indent=2))  # after Ray's own shutdown chatter
    return 0 if summary["upload_within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
