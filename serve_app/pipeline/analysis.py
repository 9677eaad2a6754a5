"""The ``POST /api/analyze`` use case: validate media, then describe it.

Everything that can reject a request (unknown model, bad prompt, wrong type, limits,
undecodable media) runs here *before* any model work, so a rejected request costs
no GPU time (and, with accounts, no credits).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from serve_app.config import Settings
from serve_app.engines.base import GenerationResult
from serve_app.errors import GenerationFailed, InvalidRequest, UnknownModel
from serve_app.media.extract import MediaInfo, inspect_media
from serve_app.media.frames import MediaKind
from serve_app.media.sampling import SamplingSpec
from serve_app.pipeline.protocol import DescribeJob, MediaRef, Pipeline
from serve_app.storage.spool import SpooledFile


@dataclass(frozen=True)
class AnalyzeParams:
    prompt: str | None = None
    model: str | None = None
    interval: int | None = None


@dataclass(frozen=True)
class AnalysisOutcome:
    text: str
    model: str
    media: MediaInfo
    generation: GenerationResult


def resolve_model(pipeline: Pipeline, requested: str | None) -> str:
    """The model to use, or :class:`UnknownModel` listing the valid names."""
    if requested is None or requested == "":
        return pipeline.default_model
    if requested not in pipeline.model_names:
        names = ", ".join(sorted(pipeline.model_names))
        raise UnknownModel(f"unknown model_path {requested!r}; configured models: {names}")
    return requested


def resolve_prompt(params: AnalyzeParams, kind: MediaKind, settings: Settings) -> str:
    prompt = (params.prompt or "").strip()
    if not prompt:
        return settings.default_video_prompt if kind is MediaKind.VIDEO else settings.default_prompt
    if len(prompt) > settings.max_prompt_chars:
        raise InvalidRequest(f"prompt is longer than {settings.max_prompt_chars} characters")
    return prompt


def media_ref_for(upload: SpooledFile, settings: Settings) -> MediaRef:
    """Small files travel inline (any node can read them); large ones by path."""
    if upload.size <= settings.inline_media_bytes:
        return upload.path.read_bytes()
    return upload.path


async def validate_upload(upload: SpooledFile, settings: Settings) -> MediaInfo:
    """Type by magic bytes, per-type size, pixel and probe limits."""
    return await asyncio.to_thread(
        inspect_media, upload.path, settings.media, filename=upload.filename or None
    )


@dataclass(frozen=True)
class PreparedAnalysis:
    """A request that passed every check; only model work is left."""

    model: str
    prompt: str
    interval: int
    media: MediaInfo


def check_params(pipeline: Pipeline, params: AnalyzeParams, settings: Settings) -> tuple[str, int]:
    """The model and interval to use (checks that need no media).

    Raises:
        UnknownModel, InvalidRequest: a bad model name, interval or prompt.
    """
    model = resolve_model(pipeline, params.model)
    interval = params.interval if params.interval is not None else settings.default_interval
    if interval < 1:
        raise InvalidRequest("interval must be an integer >= 1")
    if params.prompt is not None and len(params.prompt) > settings.max_prompt_chars:
        raise InvalidRequest(f"prompt is longer than {settings.max_prompt_chars} characters")
    return model, interval


async def prepare(
    pipeline: Pipeline, upload: SpooledFile, params: AnalyzeParams, settings: Settings
) -> PreparedAnalysis:
    """Every check of :func:`analyze` (parameters, type, size, pixel and probe caps).

    Run it before charging: nothing here touches a model.
    """
    model, interval = check_params(pipeline, params, settings)
    info = await validate_upload(upload, settings)
    prompt = resolve_prompt(params, info.kind, settings)
    return PreparedAnalysis(model=model, prompt=prompt, interval=interval, media=info)


async def run_prepared(
    pipeline: Pipeline,
    upload: SpooledFile,
    prepared: PreparedAnalysis,
    settings: Settings,
    request_id: str = "",
) -> AnalysisOutcome:
    """Describe an upload that :func:`prepare` accepted."""
    media = await asyncio.to_thread(media_ref_for, upload, settings)
    job = DescribeJob(
        media=media,
        prompt=prepared.prompt,
        model=prepared.model,
        spec=SamplingSpec(interval=prepared.interval, max_frames=settings.max_frames_per_request),
        request_id=request_id,
    )
    generation = await pipeline.describe(job)
    text = generation.text.strip()
    if not text:
        raise GenerationFailed("the model returned an empty answer")
    return AnalysisOutcome(
        text=text, model=prepared.model, media=prepared.media, generation=generation
    )


async def analyze(
    pipeline: Pipeline,
    upload: SpooledFile,
    params: AnalyzeParams,
    settings: Settings,
    request_id: str = "",
) -> AnalysisOutcome:
    """Validate ``upload`` and describe it with the requested model."""
    prepared = await prepare(pipeline, upload, params, settings)
    return await run_prepared(pipeline, upload, prepared, settings, request_id=request_id)
