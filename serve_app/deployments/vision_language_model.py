"""VisionLanguageModel: one model profile behind an engine, on its own replicas."""

from __future__ import annotations

import logging
from typing import Any

from ray import serve

from serve_app.deployments.engine_host import EngineHost
from serve_app.deployments.request_context import current_request_id
from serve_app.engines.base import GenerationDelta, GenerationRequest, GenerationResult
from serve_app.media.frames import FrameBatch
from serve_app.media.resize import estimate_visual_tokens
from serve_app.observability import metrics
from serve_app.observability.logging import bind_request_id, configure_logging
from serve_app.pipeline.backends import videos_of
from serve_app.pipeline.protocol import ChatAnswer, ChatJob, ChatStream, DescribeJob
from serve_app.pipeline.steps import chat_request, generation_request

logger = logging.getLogger(__name__)


class VisionLanguageModel(EngineHost):
    """Serves one multimodal :class:`ModelProfile` (see :class:`EngineHost`).

    Records tokens, latency, in-flight and batch-queue metrics per model and logs each
    answer with the request id (``serve_app.observability``).
    """

    async def __init__(  # type: ignore[misc]  # Ray supports async constructors
        self, *args: Any, log_json: bool = False, **kwargs: Any
    ) -> None:
        configure_logging(json=log_json)
        self._waiting: set[int] = set()
        self._deployment = _deployment_name(type(self).__name__)
        await super().__init__(*args, **kwargs)

    async def describe(self, batch: FrameBatch, job: DescribeJob) -> ChatAnswer:
        """Describe frames produced by ``FrameExtractor`` (passed by reference)."""
        visual = estimate_visual_tokens(
            batch.kind.value, batch.num_frames, batch.height, batch.width
        )
        request = generation_request(batch, job, self._profile)
        result = await self._observed(request, visual, batch.kind.value)
        return ChatAnswer(result, videos_of([batch]))

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """A ready request (e.g. a job's frame caption: one image, already resized)."""
        return await self._observed(request, *_visual_tokens(request))

    async def chat(self, job: ChatJob, *batches: FrameBatch) -> ChatAnswer:
        """Answer a conversation over frames from ``FrameExtractor`` (by reference)."""
        request = chat_request(job, batches, self._profile)
        result = await self._observed(request, *_visual_tokens(request))
        return ChatAnswer(result, videos_of(batches))

    async def chat_stream(self, job: ChatJob, *batches: FrameBatch) -> ChatStream:
        """:meth:`chat` as a stream (call with ``handle.options(stream=True)``).

        Yields the sampled videos, then text deltas. When the caller goes away Serve
        cancels this generator, and closing the engine's stream aborts the generation.
        """
        request = chat_request(job, batches, self._profile)
        for video in videos_of(batches):
            yield video
        model = self._profile.name
        with bind_request_id(current_request_id(request.request_id)):
            stream = self._engine.generate_stream(request)
            last: GenerationDelta | None = None
            try:
                async for delta in stream:
                    last = delta
                    yield delta
            finally:
                await stream.aclose()
            if last is not None:
                logger.info(
                    "streamed",
                    extra={
                        "model": model,
                        "input_tokens": last.input_tokens,
                        "output_tokens": last.output_tokens,
                        "finish_reason": last.finish_reason,
                    },
                )

    async def _observed(
        self, request: GenerationRequest, visual_tokens: int, kind: str
    ) -> GenerationResult:
        model = self._profile.name
        with bind_request_id(current_request_id(request.request_id)):
            if self._batching:  # unbatched requests go straight to the engine
                self._waiting.add(id(request))
                self._report_queue()
            try:
                result = await metrics.observe_generation(
                    self._run(request),
                    deployment=self._deployment,
                    model=model,
                    visual_tokens=visual_tokens,
                    kind=kind,
                )
            finally:
                self._waiting.discard(id(request))
                self._report_queue()
            logger.info(
                "generated",
                extra={
                    "model": model,
                    "input_tokens": result.input_tokens,
                    "output_tokens": result.output_tokens,
                    "finish_reason": result.finish_reason,
                },
            )
        return result

    def _report_queue(self) -> None:
        metrics.set_queue_depth(self._deployment, self._profile.name, len(self._waiting))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _generate_batched(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        for request in requests:
            self._waiting.discard(id(request))
        self._report_queue()
        return await self._engine.generate_batch(requests)


def _visual_tokens(request: GenerationRequest) -> tuple[int, str]:
    """Estimated visual tokens of a request's images or video, and their kind."""
    if request.video is not None:
        video = request.video
        frames = estimate_visual_tokens("video", video.num_frames, video.height, video.width)
        return frames, "video"
    if request.images:
        images = sum(
            estimate_visual_tokens("image", 1, image.shape[0], image.shape[1])
            for image in request.images
        )
        return images, "image"
    return 0, ""


def _deployment_name(default: str) -> str:
    """This replica's deployment name (it differs per model), or ``default``."""
    try:
        return str(serve.get_replica_context().deployment)
    except Exception:
        return default
