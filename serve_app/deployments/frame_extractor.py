"""FrameExtractor: decode, sample and resize media on CPU replicas."""

from __future__ import annotations

import asyncio

from ray import serve

from serve_app.engines.profile import ModelProfile
from serve_app.media.frames import FrameBatch
from serve_app.media.limits import MediaLimits
from serve_app.media.sampling import SamplingSpec
from serve_app.pipeline.protocol import MediaRef
from serve_app.pipeline.steps import extract


@serve.deployment(
    ray_actor_options={"num_cpus": 0.25},
    max_ongoing_requests=4,
    max_queued_requests=64,
    health_check_period_s=10,
)
class FrameExtractor:
    def __init__(self, limits: MediaLimits) -> None:
        self._limits = limits

    async def extract(
        self, media: MediaRef, spec: SamplingSpec, profile: ModelProfile
    ) -> FrameBatch:
        """Frames of ``media`` within ``profile``'s pixel budget (numpy, via the object store)."""
        return await asyncio.to_thread(extract, media, spec, profile, self._limits)
