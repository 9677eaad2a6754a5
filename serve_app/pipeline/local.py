"""An in-process pipeline: extraction in a worker thread, engines in this process.

Used by tests and by anyone embedding the service without Ray. It obeys the same
:class:`~serve_app.pipeline.protocol.Pipeline` contract as the Ray Serve graph.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from serve_app.engines.base import Engine, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.catalog import ModelCatalog
from serve_app.pipeline.protocol import DescribeJob
from serve_app.pipeline.steps import extract, generation_request


class LocalPipeline(ModelCatalog[Engine]):
    def __init__(
        self,
        models: Mapping[str, tuple[ModelProfile, Engine]],
        default_model: str,
        limits: MediaLimits,
    ) -> None:
        super().__init__(models, default_model)
        self._limits = limits

    async def describe(self, job: DescribeJob) -> GenerationResult:
        profile, engine = self.model(job.model)
        batch = await asyncio.to_thread(extract, job.media, job.spec, profile, self._limits)
        return await engine.generate(generation_request(batch, job, profile))

    async def readiness(self) -> dict[str, bool]:
        ready: dict[str, bool] = {}
        for name in self.model_names:
            _, engine = self.model(name)
            try:
                await engine.check_health()
                ready[name] = True
            except BackendUnavailable:
                ready[name] = False
        return ready
