"""Probe an upload once, before anything is charged; then describe it.

Everything that can reject a request (type, size, pixel and probe caps, corrupt media)
runs in :func:`prepare`, so a rejected request costs no model time and no credits.
The ingress only reads headers (one video frame at most); decoding and sampling the
frames is CPU work for the FrameExtractor replicas. The probe result travels with
the job (:attr:`DescribeJob.media_info`), so the extractor decodes without probing
the file again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from serve_app.analysis.params import CheckedParams
from serve_app.analysis.settings import AnalysisSettings
from serve_app.engines.base import GenerationResult
from serve_app.media.extract import MediaInfo, inspect_media
from serve_app.media.frames import MediaKind
from serve_app.media.sampling import SamplingSpec
from serve_app.pipeline.protocol import DescribeJob, Pipeline, SampledVideo, media_ref_for
from serve_app.pipeline.speech import AudioMode, Listening, image_outcome
from serve_app.speech.backend import AudioOutcome, SpeechBackend
from serve_app.storage.spool import SpooledFile


@dataclass(frozen=True)
class PreparedAnalysis:
    """A request that passed every check; only model work is left."""

    model: str
    prompt: str
    interval: int
    media: MediaInfo


@dataclass(frozen=True)
class AnalysisOutcome:
    text: str
    model: str
    media: MediaInfo
    generation: GenerationResult
    #: What was sampled from a video (None for an image).
    video: SampledVideo | None = None
    #: The speech (``audio=transcribe`` only; skipped with the reason where it failed).
    audio: AudioOutcome | None = None


async def prepare(
    params: CheckedParams, upload: SpooledFile, settings: AnalysisSettings
) -> PreparedAnalysis:
    """Type by magic bytes, per-type size, pixel and probe limits; the prompt to use.

    Raises:
        UnsupportedMedia, MediaTooLarge, MediaRejected: the media is refused.
    """
    info = await asyncio.to_thread(
        inspect_media, upload.path, settings.media, filename=upload.filename or None
    )
    return PreparedAnalysis(
        model=params.model,
        prompt=params.prompt_for(info.kind, settings),
        interval=params.interval,
        media=info,
    )


async def describe(
    pipeline: Pipeline,
    upload: SpooledFile,
    prepared: PreparedAnalysis,
    settings: AnalysisSettings,
    request_id: str = "",
    speech: SpeechBackend | None = None,
    audio: AudioMode = AudioMode.OFF,
) -> AnalysisOutcome:
    """Describe an upload that :func:`prepare` accepted.

    With ``audio=transcribe`` (``speech`` required) a video's speech is transcribed
    while its frames are extracted and its timed lines join the prompt; an image's
    ``audio`` is ignored (the outcome says so).

    Raises:
        BackendUnavailable, GenerationFailed: from the model (an empty answer is a
            :class:`GenerationFailed` by the engine contract).
    """
    media = await asyncio.to_thread(media_ref_for, upload, settings.inline_media_bytes)
    job = DescribeJob(
        media=media,
        prompt=prepared.prompt,
        model=prepared.model,
        spec=SamplingSpec(interval=prepared.interval, max_frames=settings.max_frames_per_request),
        request_id=request_id,
        media_info=prepared.media,
    )
    listening: Listening | None = None
    heard: AudioOutcome | None = None
    if audio is AudioMode.TRANSCRIBE and speech is not None:
        if prepared.media.kind is MediaKind.VIDEO:
            listening = Listening(speech, media, request_id)
        else:
            heard = image_outcome()
    try:
        context = None if listening is None else listening.context
        answer = await pipeline.describe(job, context)
        if listening is not None:
            heard = await listening.outcome()
    finally:
        if listening is not None:
            listening.cancel()
    return AnalysisOutcome(
        text=answer.generation.text.strip(),
        model=prepared.model,
        media=prepared.media,
        generation=answer.generation,
        video=answer.videos[0] if answer.videos else None,
        audio=heard,
    )
