"""VisionLanguageModel: one model profile behind an engine, on its own replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import serve

from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.engines.factory import build_engine
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable
from serve_app.media.frames import FrameBatch
from serve_app.pipeline.protocol import DescribeJob
from serve_app.pipeline.steps import generation_request


@serve.deployment(
    ray_actor_options={"num_cpus": 0.25},
    max_ongoing_requests=16,
    max_queued_requests=128,
    health_check_period_s=10,
    health_check_timeout_s=30,
    graceful_shutdown_timeout_s=60,
)
class VisionLanguageModel:
    """Serves one :class:`ModelProfile`.

    Engines that gain from batching (transformers) get requests grouped by
    ``@serve.batch`` up to ``max_batch_size``; vLLM batches continuously itself.
    """

    async def __init__(  # type: ignore[misc]  # Ray supports async constructors
        self,
        profile: ModelProfile,
        data_dir: str,
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.01,
        engine: Engine | None = None,
    ) -> None:
        self._profile = profile
        self._engine = engine or build_engine(profile, Path(data_dir))
        await self._engine.start()
        self._batching = self._engine.supports_batching and max_batch_size > 1
        batched: Any = self._generate_batched  # @serve.batch adds the setters
        batched.set_max_batch_size(max(1, max_batch_size))
        batched.set_batch_wait_timeout_s(batch_wait_timeout_s)

    async def describe(self, batch: FrameBatch, job: DescribeJob) -> GenerationResult:
        """Describe frames produced by ``FrameExtractor`` (passed by reference)."""
        return await self.generate(generation_request(batch, job, self._profile))

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        if self._batching:
            result: GenerationResult = await self._generate_batched(request)
            return result
        return await self._engine.generate(request)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _generate_batched(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return await self._engine.generate_batch(requests)

    async def ready(self) -> bool:
        try:
            await self._engine.check_health()
        except BackendUnavailable:
            return False
        return True

    async def check_health(self) -> None:
        """Ray Serve's health probe: a failing engine gets the replica restarted."""
        await self._engine.check_health()

    async def __del__(self) -> None:
        await self._engine.shutdown()
