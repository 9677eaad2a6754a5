"""The describe stage's backend: frame extraction plus a multimodal model.

:class:`~serve_app.pipeline.describe.DescribePipeline` is written once over
:class:`VisionBackend`; in process it gets :class:`InProcessVision`, under Ray Serve
the handle adapter of :mod:`serve_app.deployments.handles`.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from serve_app.engines.backend import EngineBackend, ModelBackend
from serve_app.engines.base import Engine
from serve_app.engines.profile import ModelProfile
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.protocol import (
    ChatAnswer,
    ChatJob,
    ChatStream,
    DescribeJob,
    PromptContext,
    SampledVideo,
)
from serve_app.pipeline.steps import chat_request, extract, extract_chat_media, generation_request


class VisionBackend(ModelBackend, Protocol):
    """A multimodal model plus the frame extraction that feeds it."""

    async def describe(
        self, job: DescribeJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatAnswer:
        """Extract frames from ``job.media`` within ``profile``'s budget and describe them.

        ``context`` is awaited while the frames are extracted; its text joins the prompt.
        """
        ...

    async def chat(
        self, job: ChatJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatAnswer:
        """Extract each of ``job.media`` (in parallel), then answer the conversation
        (``context`` awaited meanwhile; its text follows the video)."""
        ...

    def chat_stream(
        self, job: ChatJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatStream:
        """:meth:`chat`, streamed (sampled videos first, then text deltas)."""
        ...


class InProcessVision(EngineBackend):
    """:class:`VisionBackend` in this process: extraction in a worker thread."""

    def __init__(self, engine: Engine, limits: MediaLimits) -> None:
        super().__init__(engine)
        self._limits = limits

    async def describe(
        self, job: DescribeJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatAnswer:
        extracting = asyncio.to_thread(
            extract, job.media, job.spec, profile, self._limits, job.media_info
        )
        if context is None:
            batch = await extracting
        else:
            batch, text = await asyncio.gather(extracting, context)
            job = job.with_context(text)
        result = await self.engine.generate(generation_request(batch, job, profile))
        return ChatAnswer(result, videos_of([batch]))

    async def chat(
        self, job: ChatJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatAnswer:
        batches, job = await self._extract_all(job, profile, context)
        result = await self.engine.generate(chat_request(job, batches, profile))
        return ChatAnswer(result, videos_of(batches))

    async def chat_stream(
        self, job: ChatJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatStream:
        batches, job = await self._extract_all(job, profile, context)
        for video in videos_of(batches):
            yield video
        stream = self.engine.generate_stream(chat_request(job, batches, profile))
        try:
            async for delta in stream:
                yield delta
        finally:
            await stream.aclose()

    async def _extract_all(
        self, job: ChatJob, profile: ModelProfile, context: PromptContext | None
    ) -> tuple[list[FrameBatch], ChatJob]:
        """Every medium's frames, and the job with ``context``'s text once it is ready."""
        extracting = asyncio.gather(
            *(
                asyncio.to_thread(extract_chat_media, item, profile, self._limits)
                for item in job.media
            )
        )
        if context is None:
            return list(await extracting), job
        batches, text = await asyncio.gather(extracting, context)
        return list(batches), job.with_context(text)


def videos_of(batches: list[FrameBatch] | tuple[FrameBatch, ...]) -> tuple[SampledVideo, ...]:
    """What was sampled from each video among ``batches``."""
    return tuple(SampledVideo.of(b) for b in batches if b.kind is MediaKind.VIDEO)
