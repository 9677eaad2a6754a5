"""The ``POST /analyze/`` use case: validate files → observe → write → translate.

:func:`prepare_story` refuses bad requests (file count, mixed kinds, sizes, types,
undecodable media, prompt, language) before any model work or charge;
:func:`tell_story` then runs the model calls: one observation per image, all at once,
or one for the video (frames spread evenly over its whole length), then the English
story, then its translation. Token usage is the sum of every call's reported counts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from serve_app.engines.base import GenerationRequest, GenerationResult, SamplingParams
from serve_app.errors import InvalidRequest, ServeAppError
from serve_app.media.detect import HEAD_BYTES, detect_media_type
from serve_app.media.extract import MediaInfo, inspect_media
from serve_app.media.frames import MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.media.sampling import SamplingSpec
from serve_app.pipeline.protocol import DescribeJob, SampledVideo, media_ref_for
from serve_app.pipeline.speech import AudioMode, Listening, check_audio, image_outcome
from serve_app.speech.backend import AudioOutcome, SpeechBackend
from serve_app.storage.spool import SpooledFile
from serve_app.story import prompts
from serve_app.story.languages import Language, resolve_language
from serve_app.story.output import finished_text
from serve_app.story.pipeline import StoryPipeline
from serve_app.story.settings import StoryConfig, StorySettings

T = TypeVar("T")


@dataclass(frozen=True)
class StoryParams:
    """The request's form fields, unvalidated."""

    prompt: str | None = None
    language: str | None = None
    #: ``off`` (default) or ``transcribe`` (a video's speech joins its observation).
    audio: str | None = None


@dataclass(frozen=True)
class StoryMedia:
    """One validated upload; ``label`` names it in messages (index and escaped name)."""

    label: str
    upload: SpooledFile
    info: MediaInfo


@dataclass(frozen=True)
class StoryPlan:
    """A validated request, ready to run."""

    media: tuple[StoryMedia, ...]
    kind: MediaKind
    style: str
    language: Language
    audio: AudioMode = AudioMode.OFF


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def of(cls, results: Iterable[GenerationResult]) -> TokenUsage:
        """The sum of the counts the engines reported."""
        done = list(results)
        return cls(sum(r.input_tokens for r in done), sum(r.output_tokens for r in done))


@dataclass(frozen=True)
class StoryOutcome:
    """The story, its translation and what it cost.

    Attributes:
        truncated: ``"english"`` and/or ``"translation"`` when that text reached its
            token limit and was trimmed (see :mod:`serve_app.story.output`).
    """

    english: str
    translation: str
    language: Language
    usage: TokenUsage
    truncated: tuple[str, ...] = ()
    #: What was sampled from the video (empty for images).
    videos: tuple[SampledVideo, ...] = ()
    #: The speech (``audio=transcribe`` only; skipped with the reason where it failed).
    audio: AudioOutcome | None = None


def file_label(index: int, filename: str) -> str:
    """``file 2 ("cat.jpg")``: the 1-based index and the client's name, escaped, cut short."""
    shown = "".join(c if c.isprintable() else "?" for c in filename[:80])
    if not shown:
        return f"file {index + 1}"
    return f"file {index + 1} ({json.dumps(shown, ensure_ascii=False)})"


def check_file_count(count: int, story: StorySettings) -> None:
    """Refuse no file or too many, before anything is read."""
    if count == 0:
        raise InvalidRequest("no file: send one or more images or one video as 'files'")
    if count > story.max_images:
        raise InvalidRequest(f"{count} files sent; at most {story.max_images} images per request")


def story_limits(settings: StoryConfig) -> MediaLimits:
    """The media limits with the Story API's (smaller) file size caps."""
    media, story = settings.media, settings.story
    return media.model_copy(
        update={
            "max_image_bytes": min(media.max_image_bytes, story.max_image_bytes),
            "max_video_bytes": min(media.max_video_bytes, story.max_video_bytes),
        }
    )


def _labelled(label: str, exc: ServeAppError) -> ServeAppError:
    """The same error class, its message prefixed with the file's label."""
    return type(exc)(f"{label}: {exc.detail}")


def _triage(
    uploads: Sequence[SpooledFile], labels: Sequence[str], limits: MediaLimits
) -> MediaKind:
    """Types by magic bytes, then the mix rules, then per-file size caps (blocking)."""
    kinds = []
    for upload, label in zip(uploads, labels, strict=True):
        try:
            kinds.append(detect_media_type(upload.read_head(HEAD_BYTES)).kind)
        except ServeAppError as exc:
            raise _labelled(label, exc) from None
    videos = kinds.count(MediaKind.VIDEO)
    if videos > 1:
        raise InvalidRequest(f"{videos} videos sent; send exactly one video per request")
    if videos and len(kinds) > 1:
        raise InvalidRequest("images and a video were sent together; send images or one video")
    kind = MediaKind.VIDEO if videos else MediaKind.IMAGE
    cap = limits.max_bytes(kind.value)
    for upload, label in zip(uploads, labels, strict=True):
        if upload.size > cap:
            raise InvalidRequest(
                f"{label}: the {kind.value} is {upload.size} bytes; the limit per "
                f"{kind.value} is {cap} bytes ({cap / (1024 * 1024):g} MiB)"
            )
    return kind


async def _inspect(upload: SpooledFile, label: str, limits: MediaLimits) -> MediaInfo:
    try:
        return await asyncio.to_thread(
            inspect_media, upload.path, limits, filename=upload.filename or None
        )
    except ServeAppError as exc:
        raise _labelled(label, exc) from None


def resolve_style(prompt: str | None, settings: StoryConfig) -> str:
    """The caller's prompt, or :data:`~serve_app.story.prompts.DEFAULT_STYLE`."""
    text = (prompt or "").strip()
    if len(text) > settings.max_prompt_chars:
        raise InvalidRequest(f"prompt is longer than {settings.max_prompt_chars} characters")
    return text or prompts.DEFAULT_STYLE


async def prepare_story(
    uploads: Sequence[SpooledFile],
    params: StoryParams,
    settings: StoryConfig,
    speech: SpeechBackend | None = None,
) -> StoryPlan:
    """Validate everything about a request; no model work.

    Raises:
        InvalidRequest: bad count, mix, size, prompt, language or audio (400;
            ``audio=transcribe`` needs ``speech``).
        UnsupportedMedia: a file of the wrong type (400).
        MediaTooLarge, MediaRejected: probe caps (413) or undecodable media (422).
        Media errors name the file by index and escaped name.
    """
    check_file_count(len(uploads), settings.story)
    style = resolve_style(params.prompt, settings)
    language = resolve_language(params.language or settings.story.default_language)
    audio = check_audio(params.audio, speech)
    labels = [file_label(i, u.filename) for i, u in enumerate(uploads)]
    limits = story_limits(settings)
    kind = await asyncio.to_thread(_triage, uploads, labels, limits)
    infos = await gather_or_cancel(
        _inspect(u, label, limits) for u, label in zip(uploads, labels, strict=True)
    )
    media = tuple(
        StoryMedia(label, u, info) for label, u, info in zip(labels, uploads, infos, strict=True)
    )
    return StoryPlan(media=media, kind=kind, style=style, language=language, audio=audio)


async def gather_or_cancel(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def observation_jobs(
    plan: StoryPlan, pipeline: StoryPipeline, settings: StoryConfig, request_id: str
) -> list[DescribeJob]:
    """One job per image, or one for the video with frames spread over its length.

    ``interval=1`` makes every frame a candidate; thinning to ``max_frames`` then keeps
    evenly spaced frames, the first and the last included.
    """
    story = settings.story
    video = plan.kind is MediaKind.VIDEO
    prompt = prompts.OBSERVE_VIDEO_PROMPT if video else prompts.OBSERVE_IMAGE_PROMPT
    spec = SamplingSpec(interval=1, max_frames=story.max_video_frames)
    sampling = SamplingParams(max_tokens=story.observation_max_tokens, temperature=0.0)
    return [
        DescribeJob(
            media=media_ref_for(m.upload, settings.inline_media_bytes),
            prompt=prompt,
            model=pipeline.vision_model,
            spec=spec,
            sampling=sampling,
            request_id=f"{request_id}-observe-{i}" if request_id else "",
        )
        for i, m in enumerate(plan.media)
    ]


async def tell_story(
    pipeline: StoryPipeline,
    plan: StoryPlan,
    settings: StoryConfig,
    request_id: str = "",
    speech: SpeechBackend | None = None,
) -> StoryOutcome:
    """Observe the media, write the English story, translate it.

    With ``audio=transcribe`` a video's speech is transcribed while its frames are
    extracted and joins the observation prompt (images: ignored, the outcome says so).

    Raises:
        GenerationFailed: a model answered with nothing usable (502).
        BackendUnavailable: a model is down or overloaded (503).
    """
    story = settings.story
    jobs = await asyncio.to_thread(observation_jobs, plan, pipeline, settings, request_id)
    listening, heard = None, None
    if plan.audio is AudioMode.TRANSCRIBE and speech is not None:
        if plan.kind is MediaKind.VIDEO:
            listening = Listening(speech, jobs[0].media, jobs[0].request_id)
        else:
            heard = image_outcome()
    try:
        context = None if listening is None else listening.context
        answers = await gather_or_cancel(pipeline.observe(job, context) for job in jobs)
        if listening is not None:
            heard = await listening.outcome()
    finally:
        if listening is not None:
            listening.cancel()
    observed = [answer.generation for answer in answers]
    observations = [finished_text(r, "observation")[0] for r in observed]

    written = await pipeline.write(
        GenerationRequest(
            prompt=prompts.story_prompt(
                observations, plan.style, video=plan.kind is MediaKind.VIDEO
            ),
            system=prompts.STORY_SYSTEM,
            sampling=SamplingParams(
                max_tokens=story.story_max_tokens, temperature=story.story_temperature, seed=None
            ),
            request_id=f"{request_id}-story" if request_id else "",
        )
    )
    english, english_cut = finished_text(written, "story")

    translated = await pipeline.write(
        GenerationRequest(
            prompt=english,
            system=prompts.translation_system(plan.language),
            sampling=SamplingParams(max_tokens=story.translation_max_tokens, temperature=0.0),
            request_id=f"{request_id}-translate" if request_id else "",
        )
    )
    translation, translation_cut = finished_text(translated, "translation")
    truncated = tuple(
        name for name, cut in (("english", english_cut), ("translation", translation_cut)) if cut
    )
    return StoryOutcome(
        english=english,
        translation=translation,
        language=plan.language,
        usage=TokenUsage.of([*observed, written, translated]),
        truncated=truncated,
        videos=tuple(video for answer in answers for video in answer.videos),
        audio=heard,
    )
