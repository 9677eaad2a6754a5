"""The two stages of describing media, shared by in-process and Ray Serve pipelines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from serve_app.engines.base import GenerationRequest
from serve_app.engines.profile import ModelProfile
from serve_app.media.extract import MediaInfo, extract_frames
from serve_app.media.frames import FrameBatch
from serve_app.media.limits import MediaLimits
from serve_app.media.sampling import SamplingSpec
from serve_app.pipeline.protocol import DescribeJob, MediaRef


def spec_for_model(spec: SamplingSpec, profile: ModelProfile) -> SamplingSpec:
    """Clamp the request's frame cap to what the model's budget allows."""
    max_frames = min(spec.max_frames, profile.pixels.max_frames)
    return spec.model_copy(update={"max_frames": max_frames})


def extract(
    media: MediaRef,
    spec: SamplingSpec,
    profile: ModelProfile,
    limits: MediaLimits,
    known: MediaInfo | None = None,
) -> FrameBatch:
    """Stage 1 (CPU): decode, sample and resize within the model's pixel budget.

    ``known``: the ingress's probe of this media (skips probing it again).
    """
    source: Path | bytes = media
    budget = profile.pixels
    return extract_frames(source, spec_for_model(spec, profile), budget, limits, known=known)


def generation_request(
    batch: FrameBatch, job: DescribeJob, profile: ModelProfile
) -> GenerationRequest:
    """Stage 2 input: the frames plus the prompt and the model's sampling limits."""
    sampling = job.sampling
    if sampling.max_tokens > profile.max_new_tokens:
        sampling = dataclasses.replace(sampling, max_tokens=profile.max_new_tokens)
    return GenerationRequest.from_frames(batch, job.prompt, sampling, request_id=job.request_id)
