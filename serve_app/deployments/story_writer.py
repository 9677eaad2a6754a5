"""StoryWriter: the text model that writes stories and translates them, on its own replicas."""

from __future__ import annotations

from ray import serve

from serve_app.deployments.engine_host import EngineHost
from serve_app.engines.base import GenerationRequest, GenerationResult
from serve_app.observability import metrics
from serve_app.story.requests import story_request


class StoryWriter(EngineHost):
    """Serves one :class:`ModelProfile` for text-only generation (see :class:`EngineHost`).

    A multimodal profile (the tiny model) works too; requests with images or video
    are refused either way.
    """

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Run a text-only request, ``max_tokens`` capped at the profile's limit.

        Raises:
            InvalidRequest: the request carries images or video.
        """
        return await metrics.observe_generation(
            self._run(story_request(request, self._profile)),
            deployment="StoryWriter",
            model=self._profile.name,
        )

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _generate_batched(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return await self._engine.generate_batch(requests)
