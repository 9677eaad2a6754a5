"""The :class:`~serve_app.story.protocol.StoryPipeline` backed by Ray Serve handles."""

from __future__ import annotations

import asyncio

from ray.serve.handle import DeploymentHandle

from serve_app.deployments.cluster_stats import DispatchCounter
from serve_app.deployments.remote_errors import domain_error
from serve_app.deployments.serve_pipeline import READINESS_TIMEOUT_S
from serve_app.engines.base import GenerationRequest, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.pipeline.protocol import DescribeJob, Pipeline
from serve_app.story.local import pick_vision_model
from serve_app.story.protocol import readiness_key


class ServeStoryPipeline:
    """Observations go through ``vision`` (FrameExtractor → VisionLanguageModel);
    stories and translations to the ``StoryWriter`` deployment."""

    def __init__(
        self,
        vision: Pipeline,
        writer: DeploymentHandle,
        profile: ModelProfile,
        vision_model: str | None = None,
        dispatched: DispatchCounter | None = None,
    ) -> None:
        self._vision = vision
        self._vision_model = pick_vision_model(vision, vision_model)
        self._writer = writer
        self._profile = profile
        self._dispatched = dispatched or DispatchCounter()

    @property
    def vision_model(self) -> str:
        return self._vision_model

    @property
    def story_model(self) -> str:
        return self._profile.name

    async def observe(self, job: DescribeJob) -> GenerationResult:
        return await self._vision.describe(job)

    async def write(self, request: GenerationRequest) -> GenerationResult:
        try:
            with self._dispatched.track(self._writer.deployment_name):
                result: GenerationResult = await self._writer.generate.remote(request)
        except Exception as exc:
            raise domain_error(exc) from None
        return result

    async def readiness(self) -> dict[str, bool]:
        try:
            ready = bool(await asyncio.wait_for(self._writer.ready.remote(), READINESS_TIMEOUT_S))
        except Exception:
            ready = False
        return {readiness_key(self._profile): ready}
