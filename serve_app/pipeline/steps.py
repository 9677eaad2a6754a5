"""The two stages of describing media, shared by in-process and Ray Serve pipelines."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from serve_app.engines.base import GenerationRequest, SamplingParams
from serve_app.engines.profile import ModelProfile
from serve_app.media.extract import MediaInfo, extract_frames
from serve_app.media.frame_list import frames_to_video
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.media.sampling import SamplingSpec
from serve_app.pipeline.protocol import ChatJob, ChatMedia, DescribeJob, MediaRef


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
    sampling = capped_sampling(job.sampling, profile)
    return GenerationRequest.from_frames(batch, job.prompt, sampling, request_id=job.request_id)


def capped_sampling(sampling: SamplingParams, profile: ModelProfile) -> SamplingParams:
    """``sampling`` with ``max_tokens`` capped at the model's ``max_new_tokens``."""
    if sampling.max_tokens > profile.max_new_tokens:
        return dataclasses.replace(sampling, max_tokens=profile.max_new_tokens)
    return sampling


def extract_chat_media(item: ChatMedia, profile: ModelProfile, limits: MediaLimits) -> FrameBatch:
    """Stage 1 of a chat: one image or video (file or frame list) into model-ready frames."""
    budget = profile.pixels
    if item.max_pixels is not None:
        budget = budget.model_copy(
            update={
                "image_max_pixels": max(
                    budget.image_min_pixels, min(budget.image_max_pixels, item.max_pixels)
                ),
                "video_max_pixels": max(
                    budget.video_min_pixels, min(budget.video_max_pixels, item.max_pixels)
                ),
            }
        )
    if isinstance(item.source, tuple):
        return frames_to_video(item.source, item.frames_fps, budget, limits)
    spec = spec_for_model(item.spec, profile) if item.spec is not None else None
    return extract_frames(item.source, spec, budget, limits, known=item.info)


def chat_request(
    job: ChatJob, batches: Sequence[FrameBatch], profile: ModelProfile
) -> GenerationRequest:
    """Stage 2 input of a chat: the conversation with its images and video."""
    images = tuple(b.frames[0] for b in batches if b.kind is MediaKind.IMAGE)
    videos = [b for b in batches if b.kind is MediaKind.VIDEO]
    return GenerationRequest(
        prompt="",
        images=images,
        video=videos[0] if videos else None,
        sampling=capped_sampling(job.sampling, profile),
        request_id=job.request_id,
        conversation=job.conversation,
    )
