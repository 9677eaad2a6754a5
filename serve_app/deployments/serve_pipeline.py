"""The :class:`Pipeline` backed by Ray Serve deployment handles."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ray.serve.handle import DeploymentHandle

from serve_app.deployments.cluster_stats import DispatchCounter
from serve_app.deployments.remote_errors import domain_error
from serve_app.engines.base import GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.errors import UnknownModel
from serve_app.pipeline.protocol import DescribeJob

READINESS_TIMEOUT_S = 3.0


class ServePipeline:
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
        self._models = dict(models)
        self._default = default_model

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self._models)

    @property
    def default_model(self) -> str:
        return self._default

    async def describe(self, job: DescribeJob) -> GenerationResult:
        try:
            profile, model = self._models[job.model]
        except KeyError:
            raise UnknownModel(f"unknown model {job.model!r}") from None
        try:
            with (
                self._dispatched.track(self._frames.deployment_name),
                self._dispatched.track(model.deployment_name),
            ):
                frames = self._frames.extract.remote(job.media, job.spec, profile, job.request_id)
                result: GenerationResult = await model.describe.remote(frames, job)
        except Exception as exc:
            raise domain_error(exc) from None
        return result

    async def readiness(self) -> dict[str, bool]:
        async def one(handle: DeploymentHandle) -> bool:
            try:
                return bool(await asyncio.wait_for(handle.ready.remote(), READINESS_TIMEOUT_S))
            except Exception:
                return False

        names = list(self._models)
        answers = await asyncio.gather(*(one(self._models[n][1]) for n in names))
        return dict(zip(names, answers, strict=True))
