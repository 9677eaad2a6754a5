"""OpenAI-compatible backend: a remote chat-completions server (vLLM's, or OpenAI's).

Images travel as ``image_url`` JPEG data URLs. A video travels the way vLLM's server
reads pre-extracted frames: one ``video_url`` data URL of comma-joined base64 JPEGs
(``data:video/jpeg;base64,<f1>,<f2>,...``), with the frames' timing in ``extra_body``
as ``media_io_kwargs.video``: the source fps, each frame's source index, the source's
frame count and duration, from which vLLM builds the video's metadata (its sampling
rate, ``len(indices) / total * fps``, is what Qwen2.5-VL's time axis is scaled by).
Checked against vLLM 0.32's server (tests/engines/test_vllm_cpu.py), which refuses
per-request ``media_io_kwargs`` (400) unless started with ``--trust-request-mm-kwargs``;
without them it would place the frames one second apart. No ``mm_processor_kwargs``:
the metadata fixes the timing, and they need the same flag.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import openai

from serve_app.engines.base import (
    DeltaStream,
    Engine,
    GenerationDelta,
    GenerationRequest,
    GenerationResult,
    MediaSlot,
)
from serve_app.engines.chat import require_text_only, video_metadata
from serve_app.engines.jpeg import image_data_url, video_data_url
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable, GenerationFailed, InvalidRequest

logger = logging.getLogger(__name__)

#: Fragments of a 400 answer that mean the client's input is at fault (too long, ...).
_CLIENT_FAULT_HINTS = ("maximum context", "context length", "too long", "too many", "exceed")
#: vLLM's server flag without which it refuses per-request ``media_io_kwargs``.
_UNTRUSTED_KWARGS_HINT = "--trust-request-mm-kwargs"


def build_openai_messages(request: GenerationRequest, jpeg_quality: int) -> list[dict[str, Any]]:
    """Chat messages with media as data URLs (system turn first when given)."""
    if request.conversation:
        return conversation_messages(request, jpeg_quality)
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    if not request.images and request.video is None:
        messages.append({"role": "user", "content": request.prompt})
        return messages
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image_data_url(image, jpeg_quality)}}
        for image in request.images
    ]
    if request.video is not None:
        url = video_data_url(request.video.frames, jpeg_quality)
        content.append({"type": "video_url", "video_url": {"url": url}})
    content.append({"type": "text", "text": request.prompt})
    messages.append({"role": "user", "content": content})
    return messages


def conversation_messages(request: GenerationRequest, jpeg_quality: int) -> list[dict[str, Any]]:
    """A request's conversation with its media slots filled by data URLs, in order."""
    images = iter(request.images)
    messages: list[dict[str, Any]] = []
    for turn in request.conversation:
        if not any(isinstance(p, MediaSlot) for p in turn.parts):
            messages.append({"role": turn.role, "content": turn.text})
            continue
        content: list[dict[str, Any]] = []
        for part in turn.parts:
            if part is MediaSlot.IMAGE:
                url = image_data_url(next(images), jpeg_quality)
                content.append({"type": "image_url", "image_url": {"url": url}})
            elif part is MediaSlot.VIDEO and request.video is not None:
                url = video_data_url(request.video.frames, jpeg_quality)
                content.append({"type": "video_url", "video_url": {"url": url}})
            elif isinstance(part, str):
                content.append({"type": "text", "text": part})
        messages.append({"role": turn.role, "content": content})
    return messages


def build_extra_body(request: GenerationRequest) -> dict[str, Any] | None:
    """vLLM's per-request video timing; ``None`` when there is no video."""
    if request.video is None:
        return None
    meta = video_metadata(request.video)
    return {
        "media_io_kwargs": {
            "video": {
                "num_frames": request.video.num_frames,
                "fps": meta["fps"],
                "frames_indices": meta["frames_indices"],
                "total_num_frames": meta["total_num_frames"],
                "duration": meta["duration"],
            }
        },
    }


def _retry_after(exc: openai.APIStatusError, default: int = 5) -> int:
    value = exc.response.headers.get("retry-after")
    try:
        return max(1, min(300, int(float(value)))) if value else default
    except ValueError:
        return default


def map_openai_error(exc: openai.OpenAIError, model: str) -> Exception:
    """One domain error per SDK error class (see the module docstring of ``errors``)."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return BackendUnavailable(f"the backend for {model!r} is unreachable")
    if isinstance(exc, openai.RateLimitError):
        return BackendUnavailable(f"the backend for {model!r} is overloaded", _retry_after(exc))
    if isinstance(exc, openai.InternalServerError):
        return BackendUnavailable(f"the backend for {model!r} failed", _retry_after(exc))
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        message = str(exc.message)
        if _UNTRUSTED_KWARGS_HINT in message:
            return GenerationFailed(
                f"the backend for {model!r} refuses a video's frame timing: start vLLM's "
                f"server with {_UNTRUSTED_KWARGS_HINT}"
            )
        if any(hint in message.lower() for hint in _CLIENT_FAULT_HINTS):
            return InvalidRequest(f"the model rejected the input: {message}")
        return GenerationFailed(f"the backend for {model!r} rejected the request")
    if isinstance(exc, openai.APIStatusError):
        return GenerationFailed(f"the backend for {model!r} answered HTTP {exc.status_code}")
    return GenerationFailed(f"the backend for {model!r} failed ({type(exc).__name__})")


class OpenAIEngine(Engine):
    """Serves a :class:`ModelProfile` by calling an OpenAI-compatible server."""

    name = "openai"
    supports_batching = False  # the remote server batches
    constrains_output = True  # response_format is passed upstream

    def __init__(self, profile: ModelProfile, api_key: str | None = None) -> None:
        self._profile = profile
        self._options = profile.openai
        self._remote_model = self._options.remote_model or profile.model
        self._api_key = api_key
        self._client: openai.AsyncOpenAI | None = None

    async def start(self) -> None:
        if self._client is not None:
            return
        api_key = self._api_key or os.environ.get(self._options.api_key_env) or "EMPTY"
        self._client = openai.AsyncOpenAI(
            base_url=self._options.base_url,
            api_key=api_key,
            timeout=self._options.timeout_s,
            max_retries=self._options.max_retries,
        )

    def _require_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            raise BackendUnavailable(f"model {self._profile.name!r} is not started")
        return self._client

    def _create_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        if not self._profile.multimodal:
            require_text_only(request, self._profile.name)
        sampling = request.sampling
        kwargs: dict[str, Any] = {
            "model": self._remote_model,
            "messages": build_openai_messages(request, self._options.jpeg_quality),
            "max_completion_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        if sampling.response_format is not None:
            kwargs["response_format"] = json.loads(sampling.response_format)
        extra_body = build_extra_body(request)
        if extra_body is not None:
            kwargs["extra_body"] = extra_body
        return kwargs

    async def generate_stream(self, request: GenerationRequest) -> DeltaStream:
        """The upstream server's own stream; closing it closes the upstream connection."""
        client = self._require_client()
        kwargs = self._create_kwargs(request)
        finish: str | None = None
        usage: Any = None
        try:
            stream = await client.chat.completions.create(
                **kwargs, stream=True, stream_options={"include_usage": True}
            )
            async with stream:
                async for chunk in stream:
                    usage = chunk.usage or usage
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    finish = choice.finish_reason or finish
                    if choice.delta.content:
                        yield GenerationDelta(text=choice.delta.content)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, self._profile.name) from exc
        yield GenerationDelta(
            text="",
            finish_reason=finish or "stop",
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        client = self._require_client()
        kwargs = self._create_kwargs(request)
        try:
            response = await client.chat.completions.create(**kwargs)
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, self._profile.name) from exc
        if not response.choices:
            raise GenerationFailed(f"the backend for {self._profile.name!r} returned no choices")
        choice = response.choices[0]
        text = (choice.message.content or "").strip()
        if not text:
            raise GenerationFailed(f"the backend for {self._profile.name!r} returned no text")
        usage = response.usage
        if usage is None:
            logger.warning("backend for %s reported no token usage", self._profile.name)
        return GenerationResult(
            text=text,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason or "stop",
        )

    async def check_health(self) -> None:
        client = self._require_client()
        try:
            page = await client.models.list()
        except openai.OpenAIError as exc:
            raise BackendUnavailable(
                f"the backend for {self._profile.name!r} is unreachable ({type(exc).__name__})"
            ) from exc
        served = {model.id for model in page.data}
        if served and self._remote_model not in served:
            raise BackendUnavailable(
                f"the backend does not serve {self._remote_model!r}", retry_after_s=30
            )

    async def shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
