"""Batching: VisionLanguageModel alone, ``max_batch_size`` 1 vs 8, concurrency 16.

Requests go through a :class:`DeploymentHandle` from the driver, so the numbers are
the model deployment's own (no HTTP, no extraction). Every request is the same image,
the best case for batching (equal prompt lengths, no padding).
"""

from __future__ import annotations

import asyncio
from typing import Any

from scripts.bench.common import Measurement, Row, ratio, run_load
from scripts.bench.env import BenchEnv

CONCURRENCY = 16
REQUESTS = 128


def _request(env: BenchEnv) -> Any:
    from serve_app.media.limits import MediaLimits
    from serve_app.media.sampling import SamplingSpec
    from serve_app.pipeline.protocol import DescribeJob
    from serve_app.pipeline.steps import extract, generation_request

    spec = SamplingSpec(interval=10)
    batch = extract(env.image.read_bytes(), spec, env.profile, MediaLimits())
    job = DescribeJob(media=b"", prompt="Describe this image.", model=env.profile.name, spec=spec)
    return generation_request(batch, job, env.profile)


async def _load(handle: Any, request: Any, label: str, time_limit_s: float) -> Measurement:
    async def call() -> None:
        await handle.generate.remote(request)

    return await run_load(
        label, call, total=REQUESTS, concurrency=CONCURRENCY, time_limit_s=time_limit_s
    )


def run(env: BenchEnv, time_limit_s: float) -> tuple[list[Row], str]:
    from ray import serve

    from serve_app.deployments.options import deployment
    from serve_app.deployments.vision_language_model import VisionLanguageModel
    from serve_app.engines.factory import engine_factory

    request = _request(env)
    results = []
    for size in (1, 8):
        options = {
            "max_ongoing_requests": CONCURRENCY,
            "ray_actor_options": env.model_actor_options,
        }
        app = deployment(VisionLanguageModel, "BenchVLM", options).bind(
            engine_factory(env.profile, env.data_dir),
            env.profile,
            max_batch_size=size,
            batch_wait_timeout_s=0.01,
        )
        handle = serve.run(app, name="bench-batching", route_prefix=None)
        try:
            results.append(
                asyncio.run(_load(handle, request, f"max_batch_size={size}", time_limit_s))
            )
        finally:
            serve.delete("bench-batching")
    base = results[0].rps
    return [
        Row("batching", "VLM max_batch_size=1 (baseline)", results[0], "1.00x"),
        Row("batching", "VLM max_batch_size=8", results[1], ratio(results[1].rps, base)),
    ], ""
