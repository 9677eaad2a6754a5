"""An in-process pipeline: extraction in a worker thread, engines in this process.

Used by tests and by anyone embedding the service without Ray. It obeys the same
:class:`~serve_app.pipeline.protocol.Pipeline` contract as the Ray Serve graph.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from serve_app.engines.base import Engine, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable, UnknownModel
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.protocol import DescribeJob
from serve_app.pipeline.steps import extract, generation_request


class LocalPipeline:
    def __init__(
        self,
        models: Mapping[str, tuple[ModelProfile, Engine]],
        default_model: str,
        limits: MediaLimits,
    ) -> None:
        if default_model not in models:
            raise ValueError(f"default model {default_model!r} is not among the models")
        self._models = dict(models)
        self._default = default_model
        self._limits = limits

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self._models)

    @property
    def default_model(self) -> str:
        return self._default

    async def describe(self, job: DescribeJob) -> GenerationResult:
        try:
            profile, engine = self._models[job.model]
        except KeyError:
            raise UnknownModel(f"unknown model {job.model!r}") from None
        batch = await asyncio.to_thread(extract, job.media, job.spec, profile, self._limits)
        return await engine.generate(generation_request(batch, job, profile))

    async def readiness(self) -> dict[str, bool]:
        ready: dict[str, bool] = {}
        for name, (_, engine) in self._models.items():
            try:
                await engine.check_health()
                ready[name] = True
            except BackendUnavailable:
                ready[name] = False
        return ready
