"""The :class:`Pipeline` backed by Ray Serve deployment handles."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping

from ray.serve.handle import DeploymentHandle

from serve_app.deployments.cluster_stats import DispatchCounter
from serve_app.deployments.remote_errors import domain_error
from serve_app.engines.base import GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.pipeline.catalog import ModelCatalog
from serve_app.pipeline.protocol import DescribeJob

READINESS_TIMEOUT_S = 3.0


class ServePipeline(ModelCatalog[DeploymentHandle]):
    """Frames go FrameExtractor → VisionLanguageModel without touching the ingress.

    The extractor's response is passed to the model call by reference, so the frame
    array moves replica-to-replica through the object store.
    """

    def __init__(
        self,
        frame_extractor: DeploymentHandle,
        models: Mapping[str, tuple[ModelProfile, DeploymentHandle]],
        default_model: str,
        dispatched: DispatchCounter | None = None,
    ) -> None:
        self._dispatched = dispatched or DispatchCounter()
        self._frames = frame_extractor
        super().__init__(models, default_model)

    async def describe(self, job: DescribeJob) -> GenerationResult:
        profile, model = self.model(job.model)
        try:
            with (
                self._dispatched.track(self._frames.deployment_name),
                self._dispatched.track(model.deployment_name),
            ):
                frames = self._frames.extract.remote(job.media, job.spec, profile, job.request_id)
                # The model needs the frames, not the file: inline media (up to
                # inline_media_bytes) would otherwise be copied to its replica too.
                prompt_only = dataclasses.replace(job, media=b"")
                result: GenerationResult = await model.describe.remote(frames, prompt_only)
        except Exception as exc:
            raise domain_error(exc) from None
        return result

    async def readiness(self) -> dict[str, bool]:
        async def one(handle: DeploymentHandle) -> bool:
            try:
                return bool(await asyncio.wait_for(handle.ready.remote(), READINESS_TIMEOUT_S))
            except Exception:
                return False

        names = list(self.model_names)
        answers = await asyncio.gather(*(one(self.model(n)[1]) for n in names))
        return dict(zip(names, answers, strict=True))
