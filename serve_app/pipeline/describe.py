"""The describe stage: media → frames → vision-language model, wherever those run."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from serve_app.engines.base import Engine
from serve_app.engines.profile import ModelProfile
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.backends import InProcessVision, VisionBackend
from serve_app.pipeline.catalog import ModelCatalog
from serve_app.pipeline.protocol import (
    ChatAnswer,
    ChatJob,
    ChatStream,
    DescribeJob,
    PromptContext,
)


class DescribePipeline(ModelCatalog[VisionBackend]):
    """Routes each :class:`DescribeJob` to its model's :class:`VisionBackend`.

    In production the backends are Serve handles (FrameExtractor → VisionLanguageModel);
    :meth:`in_process` builds one over engines in this process (tests, embedding).
    """

    @classmethod
    def in_process(
        cls,
        models: Mapping[str, tuple[ModelProfile, Engine]],
        default_model: str,
        limits: MediaLimits,
    ) -> DescribePipeline:
        backends = {
            name: (profile, InProcessVision(engine, limits))
            for name, (profile, engine) in models.items()
        }
        return cls(backends, default_model)

    async def describe(self, job: DescribeJob, context: PromptContext | None = None) -> ChatAnswer:
        profile, backend = self.model(job.model)
        return await backend.describe(job, profile, context)

    async def chat(self, job: ChatJob, context: PromptContext | None = None) -> ChatAnswer:
        profile, backend = self.model(job.model)
        return await backend.chat(job, profile, context)

    async def chat_stream(self, job: ChatJob, context: PromptContext | None = None) -> ChatStream:
        profile, backend = self.model(job.model)
        stream = backend.chat_stream(job, profile, context)
        try:
            async for event in stream:
                yield event
        finally:
            await stream.aclose()

    async def readiness(self) -> dict[str, bool]:
        names = list(self.model_names)
        answers = await asyncio.gather(*(self.model(name)[1].ready() for name in names))
        return dict(zip(names, answers, strict=True))
