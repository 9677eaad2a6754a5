"""A chat request checked once, before any media is read: model, sampling, messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from serve_app.chat.protocol import (
    ChatCompletionRequest,
    ImageURLPart,
    TextPart,
    VideoFramesPart,
    VideoURLPart,
)
from serve_app.chat.settings import ChatSettings
from serve_app.engines.base import ChatTurn, MediaSlot, SamplingParams
from serve_app.engines.profile import ModelProfile
from serve_app.errors import ParameterError, UnknownModel
from serve_app.media.sampling import SamplingSpec

#: Backends that constrain output to ``response_format`` (JSON): an upstream
#: OpenAI-compatible server, vLLM's structured outputs.
JSON_OUTPUT_BACKENDS = frozenset({"openai", "vllm"})

#: What a media part of the conversation asks for; filled by ``chat.media``.
MediaPart = ImageURLPart | VideoURLPart | VideoFramesPart


@dataclass(frozen=True)
class CheckedChat:
    """A request that passed every check that needs no media.

    Attributes:
        media: the media parts in slot order, each with its JSON path for errors.
        spec: how videos are sampled (fps and frame cap, clamped to the caps).
    """

    model: str
    profile: ModelProfile
    conversation: tuple[ChatTurn, ...]
    media: tuple[tuple[str, MediaPart], ...]
    sampling: SamplingParams
    spec: SamplingSpec
    max_pixels: int | None
    n: int


def check_chat(
    profiles: Mapping[str, ModelProfile], request: ChatCompletionRequest, settings: ChatSettings
) -> CheckedChat:
    """Everything about ``request`` that can be judged without reading its media.

    ``profiles`` are the served models by public name (vision and text-only).

    Raises:
        UnknownModel: ``model`` is not served.
        ParameterError: an invalid or unsupported parameter (``param`` names it), or
            media sent to a text-only model.
    """
    profile = profiles.get(request.model)
    if profile is None:
        names = ", ".join(sorted(profiles))
        raise UnknownModel(f"the model {request.model!r} does not exist; models: {names}")
    _refuse_unsupported(request, settings, profile)
    conversation, media = _conversation(request, settings)
    if media and not profile.multimodal:
        where = media[0][0]
        raise ParameterError(
            f"model {profile.name!r} is text-only and takes no images or video ({where})", where
        )
    return CheckedChat(
        model=request.model,
        profile=profile,
        conversation=conversation,
        media=media,
        sampling=_sampling(request, profile),
        spec=_video_spec(request, settings),
        max_pixels=request.mm_processor_kwargs.max_pixels if request.mm_processor_kwargs else None,
        n=request.n,
    )


def _refuse_unsupported(
    request: ChatCompletionRequest, settings: ChatSettings, profile: ModelProfile
) -> None:
    if request.n > settings.max_n:
        raise ParameterError(f"n may be at most {settings.max_n}", "n")
    if request.logprobs or request.top_logprobs:
        raise ParameterError("logprobs are not supported", "logprobs")
    if request.tools or request.tool_choice not in (None, "none", "auto"):
        raise ParameterError("tool calls are not supported", "tools")
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(request, name):
            raise ParameterError(f"{name} is not supported (only 0)", name)
    if len(request.stop_strings()) > 4:
        raise ParameterError("stop takes at most 4 sequences", "stop")
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return
    if profile.backend not in JSON_OUTPUT_BACKENDS:
        raise ParameterError(
            f"response_format {fmt.type!r} is not supported by model {profile.name!r} "
            f"(backend {profile.backend!r})",
            "response_format",
        )
    if fmt.type == "json_schema" and (fmt.json_schema is None or fmt.json_schema.schema_ is None):
        raise ParameterError(
            "response_format json_schema needs json_schema.schema", "response_format"
        )


def _sampling(request: ChatCompletionRequest, profile: ModelProfile) -> SamplingParams:
    max_tokens = request.max_completion_tokens or request.max_tokens or profile.max_new_tokens
    fmt = request.response_format
    return SamplingParams(
        max_tokens=min(max_tokens, profile.max_new_tokens),
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        seed=request.seed,
        stop=request.stop_strings(),
        response_format=(
            json.dumps(fmt.model_dump(by_alias=True, exclude_none=True))
            if fmt is not None and fmt.type != "text"
            else None
        ),
    )


def _video_spec(request: ChatCompletionRequest, settings: ChatSettings) -> SamplingSpec:
    """vLLM's ``media_io_kwargs.video`` / ``mm_processor_kwargs.fps``, clamped to the caps."""
    video = request.media_io_kwargs.video if request.media_io_kwargs else None
    mm = request.mm_processor_kwargs
    fps = (video.fps if video else None) or (mm.fps if mm else None) or settings.default_fps
    frames = (video.num_frames if video else None) or settings.max_frames
    return SamplingSpec(
        fps=min(fps, settings.max_fps), max_frames=max(2, min(frames, settings.max_frames))
    )


def _conversation(
    request: ChatCompletionRequest, settings: ChatSettings
) -> tuple[tuple[ChatTurn, ...], tuple[tuple[str, MediaPart], ...]]:
    if len(request.messages) > settings.max_messages:
        raise ParameterError(f"at most {settings.max_messages} messages", "messages")
    turns: list[ChatTurn] = []
    media: list[tuple[str, MediaPart]] = []
    chars = 0
    for i, message in enumerate(request.messages):
        where = f"messages[{i}].content"
        role = "system" if message.role == "developer" else message.role
        content = message.content
        if content is None or isinstance(content, str):
            parts: list[str | MediaSlot] = [content or ""]
        else:
            parts = []
            for j, part in enumerate(content):
                if isinstance(part, TextPart):
                    parts.append(part.text)
                    continue
                if role != "user":
                    raise ParameterError(f"only user messages may carry media ({where})", where)
                media.append((f"{where}[{j}]", part))
                image = isinstance(part, ImageURLPart)
                parts.append(MediaSlot.IMAGE if image else MediaSlot.VIDEO)
        chars += sum(len(p) for p in parts if not isinstance(p, MediaSlot))
        turns.append(ChatTurn(role=role, parts=tuple(parts)))
    if chars > settings.max_text_chars:
        raise ParameterError(
            f"messages hold more than {settings.max_text_chars} characters", "messages"
        )
    images = sum(isinstance(p, ImageURLPart) for _, p in media)
    if images > settings.max_images:
        raise ParameterError(f"at most {settings.max_images} images per request", "messages")
    if len(media) - images > settings.max_videos:
        raise ParameterError(f"at most {settings.max_videos} video per request", "messages")
    for where, part in media:
        if isinstance(part, VideoFramesPart) and len(part.video) > settings.max_listed_frames:
            raise ParameterError(f"at most {settings.max_listed_frames} frames per video", where)
    return tuple(turns), tuple(media)
