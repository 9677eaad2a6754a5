"""The job runner's :class:`~serve_app.jobs.inference.FrameModels` over Serve handles."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy as np
from ray.serve.handle import DeploymentHandle

from serve_app.deployments.handles import domain_error
from serve_app.detectors.config import ModelCatalog
from serve_app.detectors.registry import FrameResult
from serve_app.engines.base import GenerationRequest
from serve_app.engines.profile import ModelProfile
from serve_app.jobs.inference import caption_request, timed_generate, vlm_profile
from serve_app.jobs.spec import ModelSpec


class ServeFrameModels:
    """Detections go to the ``Detector`` deployment, captions to ``VisionLanguageModel``.

    Each caption is its own request, so the model replica batches them (``@serve.batch``)
    with whatever else it is serving.
    """

    def __init__(
        self,
        catalog: ModelCatalog,
        detector: DeploymentHandle,
        model_handles: Mapping[str, DeploymentHandle],
        profiles: Mapping[str, ModelProfile],
        default_model: str | None,
    ) -> None:
        self._catalog = catalog
        self._detector = detector
        self._models = dict(model_handles)
        self._profiles = dict(profiles)
        self._default = default_model

    async def run(
        self, spec: ModelSpec, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        entry = self._catalog.resolve(spec)
        try:
            if entry.inference_type == "object-detection":
                detected: list[FrameResult] = await self._detector.detect.remote(
                    spec, frames, original_size
                )
                return detected
            profile = vlm_profile(entry, self._profiles, self._default)
            handle = self._models[profile.name]

            def generate(request: GenerationRequest) -> Any:
                return handle.generate.remote(request)

            requests = [caption_request(frame, profile, entry, spec) for frame in frames]
            return list(await asyncio.gather(*(timed_generate(generate, r) for r in requests)))
        except Exception as exc:
            raise domain_error(exc) from None
