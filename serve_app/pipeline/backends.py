"""The describe stage's backend: frame extraction plus a multimodal model.

:class:`~serve_app.pipeline.describe.DescribePipeline` is written once over
:class:`VisionBackend`; in process it gets :class:`InProcessVision`, under Ray Serve
the handle adapter of :mod:`serve_app.deployments.handles`.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from serve_app.engines.backend import EngineBackend, ModelBackend
from serve_app.engines.base import Engine, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.protocol import DescribeJob
from serve_app.pipeline.steps import extract, generation_request


class VisionBackend(ModelBackend, Protocol):
    """A multimodal model plus the frame extraction that feeds it."""

    async def describe(self, job: DescribeJob, profile: ModelProfile) -> GenerationResult:
        """Extract frames from ``job.media`` within ``profile``'s budget and describe them."""
        ...


class InProcessVision(EngineBackend):
    """:class:`VisionBackend` in this process: extraction in a worker thread."""

    def __init__(self, engine: Engine, limits: MediaLimits) -> None:
        super().__init__(engine)
        self._limits = limits

    async def describe(self, job: DescribeJob, profile: ModelProfile) -> GenerationResult:
        batch = await asyncio.to_thread(
            extract, job.media, job.spec, profile, self._limits, job.media_info
        )
        return await self.engine.generate(generation_request(batch, job, profile))
