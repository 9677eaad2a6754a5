"""Serve graph overhead: ``POST /api/analyze`` through Ray Serve vs in-process.

Three ways to describe the same JPEG with the same tiny engine (one torch thread):

1. ``in-process engine`` (baseline): :class:`DescribePipeline` (extract in a thread, then
   ``engine.generate``) called directly;
2. ``in-process app``: the whole FastAPI app (auth, SQLite, spooling, credits) over
   ``httpx.ASGITransport``, same pipeline, no Ray, no sockets;
3. ``Ray Serve HTTP``: the real graph (proxy → Ingress → FrameExtractor →
   VisionLanguageModel) on loopback, ``max_batch_size=1`` so the engine does the same
   work per request as the baseline (batching is measured on its own).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from scripts.bench.common import Measurement, Row, ratio, run_load
from scripts.bench.cpu import CpuSampler, cpu_table
from scripts.bench.env import BenchEnv, Cluster, admin_token, app_settings

LOADS = ((1, 50), (16, 200))  # (concurrency, requests)
PROMPT = "Describe this image."


async def _in_process(env: BenchEnv, time_limit_s: float) -> tuple[list[Measurement], list]:
    from serve_app.engines.transformers_engine import TransformersEngine
    from serve_app.media.limits import MediaLimits
    from serve_app.media.sampling import SamplingSpec
    from serve_app.pipeline.describe import DescribePipeline
    from serve_app.pipeline.protocol import DescribeJob

    engine = TransformersEngine(env.profile)
    await engine.start()
    name = env.profile.name
    pipeline = DescribePipeline.in_process({name: (env.profile, engine)}, name, MediaLimits())
    media = env.image.read_bytes()
    job = DescribeJob(media=media, prompt=PROMPT, model=name, spec=SamplingSpec(interval=10))

    async def call() -> None:
        await pipeline.describe(job)

    results = [
        await run_load("in-process engine", call, total=n, concurrency=c, time_limit_s=time_limit_s)
        for c, n in LOADS
    ]
    return results, [engine, pipeline]


async def _in_process_app(
    env: BenchEnv, engine: Any, pipeline: Any, time_limit_s: float
) -> list[Measurement]:
    from serve_app.accounts.context import open_accounts
    from serve_app.config import Settings
    from serve_app.http.app import create_app

    settings = Settings(**app_settings(env))
    accounts = open_accounts(settings)
    app = create_app(pipeline, settings, accounts)
    token = admin_token(env)
    body = env.image.read_bytes()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            call = _poster(client, token, body)
            return [
                await run_load(
                    "in-process app", call, total=n, concurrency=c, time_limit_s=time_limit_s
                )
                for c, n in LOADS
            ]
    finally:
        accounts.close()


def _poster(client: httpx.AsyncClient, token: str, body: bytes) -> Any:
    headers = {"Authorization": f"Bearer {token}"}

    async def call() -> None:
        response = await client.post(
            "/api/analyze", files={"file": ("photo.jpg", body, "image/jpeg")}, headers=headers
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:120]}")

    return call


async def _serve_http(
    env: BenchEnv,
    cluster: Cluster,
    time_limit_s: float,
    max_batch_size: int,
    loads: tuple[tuple[int, int], ...],
    sampler: CpuSampler | None = None,
) -> list[Measurement]:
    """Measure ``loads`` through Serve; CPU per process is sampled over the last one."""
    from ray import serve

    from serve_app.app import AppArgs, ModelEntry, build_graph

    args = AppArgs(
        models=[ModelEntry(profile=env.profile, max_batch_size=max_batch_size)],
        story_model=None,
        settings=app_settings(env),
    )
    token = admin_token(env)
    options = {"VisionLanguageModel": {"ray_actor_options": env.model_actor_options}}
    serve.run(build_graph(args, options), name="bench-overhead", route_prefix="/bench")
    body = env.image.read_bytes()
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    results = []
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{cluster.port}/bench", limits=limits, timeout=120
        ) as client:
            post = _poster(client, token, body)
            calls = 0

            async def call() -> None:
                nonlocal calls
                calls += 1
                await post()

            for i, (c, n) in enumerate(loads):
                last = i == len(loads) - 1
                if sampler is not None and last:
                    sampler.start()
                    calls = 0
                began = time.perf_counter()
                label = f"Ray Serve HTTP, max_batch_size={max_batch_size}"
                results.append(
                    await run_load(label, call, total=n, concurrency=c, time_limit_s=time_limit_s)
                )
                if sampler is not None and last:
                    sampler.stop()
                    sampler.requests = calls
                    sampler.wall_s = time.perf_counter() - began
        return results
    finally:
        serve.delete("bench-overhead")


def run(env: BenchEnv, cluster: Cluster, time_limit_s: float) -> tuple[list[Row], str]:
    """Rows per concurrency, plus a CPU-per-process table of Serve at concurrency 16."""

    async def main() -> tuple[list[Row], str]:
        baseline, (engine, pipeline) = await _in_process(env, time_limit_s)
        try:
            app = await _in_process_app(env, engine, pipeline, time_limit_s)
        finally:
            await engine.shutdown()
        sampler = CpuSampler(cluster.ray_tmp)
        served = await _serve_http(env, cluster, time_limit_s, 1, LOADS, sampler)
        shipped = await _serve_http(env, cluster, time_limit_s, 8, LOADS[-1:])
        rows = []
        case = "serve overhead"
        for i in range(len(LOADS)):
            base = baseline[i].rps
            rows.append(Row(case, "in-process engine (baseline)", baseline[i], "1.00x"))
            rows.append(Row(case, "in-process FastAPI app", app[i], ratio(app[i].rps, base)))
            rows.append(
                Row(
                    case,
                    "Ray Serve, HTTP (max_batch_size=1)",
                    served[i],
                    ratio(served[i].rps, base),
                )
            )
        base = baseline[-1].rps
        rows.append(
            Row(case, "Ray Serve, HTTP (CPU profile: max_batch_size=8)", shipped[0],
                ratio(shipped[0].rps, base))
        )  # fmt: skip
        report = cpu_table(sampler, sampler.requests, sampler.wall_s)
        return rows, report

    return asyncio.run(main())
