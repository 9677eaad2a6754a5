"""Benchmark: memory of the running service while a large video arrives in chunks.

A thin wrapper of the ``memory`` case of ``python -m scripts.bench`` (see
:mod:`scripts.bench.memory` and :mod:`scripts.bench.procmem`) for one upload: it
starts Ray (its own ``RAY_TMPDIR``) and the full graph with the tiny model on
127.0.0.1, makes a ~300 MB high-bitrate H.264 video of noise (ffmpeg when on PATH,
else PyAV), warms the service up, reads the idle memory of the HTTP proxy and every
Serve replica, uploads the video with the chunk client (``scripts.clients.chunked_upload``)
while sampling them every 50 ms, and prints as JSON the peak growth over idle during
the upload and during the final chunk (assembly + analysis), per process too. Ray and
Serve are shut down at the end, also on errors; the whole run is bounded by
``--timeout``.

Three measures: the sum of RSS (which counts the pages of Ray's shared object store
once per process that touched them), the sum of private RSS, and ``physical`` =
private + this cluster's object-store pages counted once. Target: ``physical``
growth during the upload < 150 MB (exit status 1 otherwise).

``--malloc-tuning`` runs Ray with the glibc settings recommended for deployment
(``MALLOC_ARENA_MAX=2`` and fixed mmap/trim thresholds).

Usage:
    .venv/bin/python scripts/bench_upload_memory.py [--size-mb 300] [--chunk-size-mb 8]
        [--timeout 1200] [--malloc-tuning] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OMP_NUM_THREADS", "1")

from scripts.bench.memory import ANALYSIS, UPLOAD, MemoryResult
from scripts.bench.procmem import MALLOC_TUNING, MB, METRICS

MIB = 1024 * 1024
TARGET_MB = 150


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(result: MemoryResult) -> dict[str, Any]:
    """The JSON report of one upload."""
    upload = result.uploads[0]
    phases = {part: upload.phase(part) for part in (UPLOAD, ANALYSIS)}

    def growth(metric: str, part: str) -> float:
        return round(result.growth(phases[part], metric) or 0.0, 1)

    by_process: dict[str, dict[str, float]] = {}
    for pid, name in result.pids.items():
        idle = result.idle.rss.get(pid, 0)
        by_process[f"{name}[{pid}]"] = {
            part: round((result.phases[phase].rss_each.get(pid, idle) - idle) / MB, 1)
            for part, phase in phases.items()
            if phase in result.phases
        }
    physical_upload = growth("physical", UPLOAD)
    return {
        "video_mb": round(upload.size / MB, 1),
        "chunk_mib": result.chunk_bytes / MIB,
        "idle_total_mb": {m: round(result.idle.total(m) / MB, 1) for m in METRICS},
        "summary_growth_mb": {
            m: {
                "upload": growth(m, UPLOAD),
                "upload + analysis": max(growth(m, UPLOAD), growth(m, ANALYSIS)),
            }
            for m in METRICS
        },
        "peak_rss_growth_mb_by_process": by_process,
        "object_store_idle_mb": round(result.idle.shared / MB, 1),
        "target_mb": TARGET_MB,
        "upload_within_target": not upload.error and physical_upload < TARGET_MB,
        "error": upload.error or None,
        "analysis": upload.response,
        "seconds": {p: round(result.phases[ph].seconds, 1) for p, ph in phases.items()},
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

    from scripts.bench.env import bench_env, ray_cluster
    from scripts.bench.memory import measure
    from scripts.bench.videos import noise_video

    def timed_out(signum: int, frame: Any) -> None:
        raise TimeoutError(f"benchmark exceeded --timeout {args.timeout} s")

    signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(args.timeout)
    try:
        with bench_env(args.keep) as env, ray_cluster(os.cpu_count() or 2) as cluster:
            video = env.root / "noise.mp4"
            how = noise_video(video, args.size_mb)
            log(f"video: {video.stat().st_size / MB:.1f} MB ({how})")
            result = measure(
                env, cluster, [("noise", video)], int(args.chunk_size_mb * MIB), args.timeout
            )
            report = summary(result)
            report["malloc_tuning"] = MALLOC_TUNING if args.malloc_tuning else None
    finally:
        signal.alarm(0)
    sys.stdout.flush()
    print(json.dumps(report, indent=2))  # after Ray's own shutdown chatter
    return 0 if report["upload_within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
