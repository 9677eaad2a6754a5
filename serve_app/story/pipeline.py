"""The Story API's model graph: observe media with the vision pipeline, write with a text model."""

from __future__ import annotations

from serve_app.engines.backend import EngineBackend, ModelBackend
from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.pipeline.protocol import ChatAnswer, DescribeJob, Pipeline, PromptContext
from serve_app.story.requests import readiness_key, story_request


def pick_vision_model(vision: Pipeline, requested: str | None) -> str:
    """``requested`` (or the default) if ``vision`` serves it, else :class:`ValueError`."""
    name = requested or vision.default_model
    if name not in vision.model_names:
        raise ValueError(f"story vision model {name!r} is not among {list(vision.model_names)}")
    return name


class StoryPipeline:
    """Observes with a :class:`~serve_app.pipeline.protocol.Pipeline`, writes with a
    :class:`~serve_app.engines.backend.ModelBackend` (the ``StoryWriter`` deployment's
    handle in production, an in-process engine in tests)."""

    def __init__(
        self,
        vision: Pipeline,
        profile: ModelProfile,
        writer: ModelBackend,
        vision_model: str | None = None,
    ) -> None:
        self._vision = vision
        self._vision_model = pick_vision_model(vision, vision_model)
        self._profile = profile
        self._writer = writer

    @classmethod
    def in_process(
        cls,
        vision: Pipeline,
        profile: ModelProfile,
        engine: Engine,
        vision_model: str | None = None,
    ) -> StoryPipeline:
        return cls(vision, profile, EngineBackend(engine), vision_model)

    @property
    def vision_model(self) -> str:
        """Public name of the model :meth:`observe` uses."""
        return self._vision_model

    @property
    def story_model(self) -> str:
        """Public name of the model :meth:`write` uses."""
        return self._profile.name

    @property
    def writer(self) -> tuple[ModelProfile, ModelBackend]:
        """The story model's profile and backend (``/v1`` serves it as a text model)."""
        return self._profile, self._writer

    async def observe(self, job: DescribeJob, context: PromptContext | None = None) -> ChatAnswer:
        """Extract frames from ``job.media`` and describe them with the vision model
        (``context``: text for the prompt, awaited while the frames are extracted)."""
        return await self._vision.describe(job, context)

    async def write(self, request: GenerationRequest) -> GenerationResult:
        """Run a text-only ``request`` on the story model.

        Raises:
            InvalidRequest: the request carries images or video.
        """
        return await self._writer.generate(story_request(request, self._profile))

    async def readiness(self) -> dict[str, bool]:
        """The story model's readiness, keyed ``story:<model name>``."""
        return {readiness_key(self._profile): await self._writer.ready()}
