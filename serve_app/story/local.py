"""An in-process :class:`~serve_app.story.protocol.StoryPipeline` (tests, embedding)."""

from __future__ import annotations

from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable
from serve_app.pipeline.protocol import DescribeJob, Pipeline
from serve_app.story.protocol import readiness_key, story_request


def pick_vision_model(vision: Pipeline, requested: str | None) -> str:
    """``requested`` (or the default) if ``vision`` serves it, else :class:`ValueError`."""
    name = requested or vision.default_model
    if name not in vision.model_names:
        raise ValueError(f"story vision model {name!r} is not among {list(vision.model_names)}")
    return name


class LocalStoryPipeline:
    """Observes with a :class:`~serve_app.pipeline.protocol.Pipeline`, writes with an engine."""

    def __init__(
        self,
        vision: Pipeline,
        profile: ModelProfile,
        engine: Engine,
        vision_model: str | None = None,
    ) -> None:
        self._vision = vision
        self._vision_model = pick_vision_model(vision, vision_model)
        self._profile = profile
        self._engine = engine

    @property
    def vision_model(self) -> str:
        return self._vision_model

    @property
    def story_model(self) -> str:
        return self._profile.name

    async def observe(self, job: DescribeJob) -> GenerationResult:
        return await self._vision.describe(job)

    async def write(self, request: GenerationRequest) -> GenerationResult:
        return await self._engine.generate(story_request(request, self._profile))

    async def readiness(self) -> dict[str, bool]:
        try:
            await self._engine.check_health()
        except BackendUnavailable:
            return {readiness_key(self._profile): False}
        return {readiness_key(self._profile): True}
