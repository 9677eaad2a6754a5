"""Scaling: FrameExtractor throughput with 1 vs 2 replicas (the CPU-bound stage).

Each request samples every 5th frame of a 10 s 640x360 H.264 clip and resizes them to
the tiny model's budget. Decoding is pinned to one thread and one request per replica
(``max_ongoing_requests=1``) so a replica is one core's worth of work.

- x1 at concurrency 1 vs x2 at concurrency 2: one request per replica, nothing queued
  in Serve's router (the clean scaling ratio);
- x1 and x2 at concurrency 4: more requests than replica slots, so requests wait in
  the router, which retries full replicas with backoff (25 ms doubling to 0.5 s);
- x1 as shipped: 4 requests at once per replica, decoder threads per core.
"""

from __future__ import annotations

import asyncio

from scripts.bench.common import Measurement, Row, ratio, run_load
from scripts.bench.env import BenchEnv

REQUESTS = 32


def _measure(
    env: BenchEnv,
    label: str,
    replicas: int,
    ongoing: int,
    threads: int,
    concurrency: int,
    time_limit_s: float,
) -> Measurement:
    from ray import serve

    from serve_app.deployments.frame_extractor import FrameExtractor
    from serve_app.deployments.options import deployment
    from serve_app.media.limits import MediaLimits
    from serve_app.media.sampling import SamplingSpec

    options = {"num_replicas": replicas, "max_ongoing_requests": ongoing}
    app = deployment(FrameExtractor, "BenchFrames", options).bind(
        MediaLimits(decode_threads=threads)
    )
    handle = serve.run(app, name="bench-scaling", route_prefix=None)
    media = env.video.read_bytes()
    spec = SamplingSpec(interval=5, max_frames=32)
    try:

        async def call() -> None:
            await handle.extract.remote(media, spec, env.profile)

        return asyncio.run(
            run_load(
                label, call, total=REQUESTS, concurrency=concurrency, time_limit_s=time_limit_s
            )
        )
    finally:
        serve.delete("bench-scaling")


def run(env: BenchEnv, time_limit_s: float) -> tuple[list[Row], str]:
    one = _measure(env, "x1", 1, 1, 1, 1, time_limit_s)
    two = _measure(env, "x2", 2, 1, 1, 2, time_limit_s)
    one_q = _measure(env, "x1 queued", 1, 1, 1, 4, time_limit_s)
    two_q = _measure(env, "x2 queued", 2, 1, 1, 4, time_limit_s)
    shipped = _measure(env, "x1 shipped", 1, 4, 0, 4, time_limit_s)
    case = "scaling"
    return [
        Row(case, "FrameExtractor x1, 1 decode/replica (baseline)", one, "1.00x"),
        Row(case, "FrameExtractor x2, 1 decode/replica", two, ratio(two.rps, one.rps)),
        Row(case, "FrameExtractor x1, 1 decode/replica, router queue", one_q, "1.00x"),
        Row(
            case,
            "FrameExtractor x2, 1 decode/replica, router queue",
            two_q,
            ratio(two_q.rps, one_q.rps),
        ),
        Row(
            case,
            "FrameExtractor x1 as shipped (4 at once, threaded decode)",
            shipped,
            ratio(shipped.rps, one_q.rps),
        ),
    ], ""
