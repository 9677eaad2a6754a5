"""What the Story API needs from the model graph: observe media, write text."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from serve_app.engines.base import GenerationRequest, GenerationResult
from serve_app.engines.chat import require_text_only
from serve_app.engines.profile import ModelProfile
from serve_app.pipeline.protocol import DescribeJob


class StoryPipeline(Protocol):
    """A vision model that observes media plus a text model that writes stories.

    In production the calls go to the ``VisionLanguageModel`` and ``StoryWriter``
    deployments (``serve_app.deployments.serve_story_pipeline``); in tests to
    in-process engines (:class:`serve_app.story.local.LocalStoryPipeline`).
    """

    @property
    def vision_model(self) -> str:
        """Public name of the model :meth:`observe` uses."""
        ...

    @property
    def story_model(self) -> str:
        """Public name of the model :meth:`write` uses."""
        ...

    async def observe(self, job: DescribeJob) -> GenerationResult:
        """Extract frames from ``job.media`` and describe them with the vision model."""
        ...

    async def write(self, request: GenerationRequest) -> GenerationResult:
        """Run a text-only ``request`` on the story model."""
        ...

    async def readiness(self) -> dict[str, bool]:
        """The story model's readiness, keyed ``story:<model name>``."""
        ...


def readiness_key(profile: ModelProfile) -> str:
    return f"story:{profile.name}"


def story_request(request: GenerationRequest, profile: ModelProfile) -> GenerationRequest:
    """``request`` as the story model runs it: text only, ``max_tokens`` within its profile.

    Raises:
        InvalidRequest: the request carries images or video.
    """
    require_text_only(request, profile.name)
    if request.sampling.max_tokens <= profile.max_new_tokens:
        return request
    sampling = dataclasses.replace(request.sampling, max_tokens=profile.max_new_tokens)
    return dataclasses.replace(request, sampling=sampling)
