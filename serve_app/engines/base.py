"""The engine contract: one small async interface every model backend implements.

Contract
--------
``await engine.start()``
    Load weights / open clients. Idempotent. Raises :class:`BackendUnavailable` if the
    backend cannot be brought up.
``await engine.generate(request) -> GenerationResult``
    Takes text plus zero or more images and at most one video (frames + metadata) and
    sampling parameters. Returns the generated text and the *real* token counts the
    backend reports: ``input_tokens`` counts the whole prompt including visual tokens,
    ``output_tokens`` the generated tokens. ``finish_reason`` is ``"stop"`` (end of
    sequence) or ``"length"`` (hit ``max_tokens``), or whatever the backend reports.
    Raises :class:`BackendUnavailable` for transient backend faults (retryable) and
    :class:`GenerationFailed` when the backend answered but produced nothing usable.
``engine.generate_stream(request) -> AsyncGenerator[GenerationDelta, None]``
    The same generation as ``generate``, as it happens: each delta carries the text
    added since the previous one; the last has ``finish_reason`` and the token counts.
    Closing the iterator early (or cancelling the task consuming it) aborts the
    generation in the engine. Engines without native streaming inherit a default that
    yields ``generate``'s whole answer as one delta.
``await engine.generate_batch(requests) -> list[GenerationResult]``
    Same, for several requests at once; results in request order. Engines that do not
    benefit from batching inherit a sequential default.
``await engine.check_health()``
    Returns if the engine can serve; raises :class:`BackendUnavailable` otherwise.
``await engine.shutdown()``
    Releases resources. Idempotent.

Images are RGB ``uint8`` arrays ``(H, W, 3)``; a video is a :class:`FrameBatch`
of kind ``video`` whose frames already obey the model's pixel budget. A request with
a ``conversation`` (system turns, multi-turn history) renders it instead of
``system`` + ``prompt``: its :class:`MediaSlot` parts take the images in order and
the video. ``SamplingParams.stop`` strings end the answer and are not part of it.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from serve_app.media.frames import FrameBatch, MediaKind


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    #: Strings that end the answer (not included in it).
    stop: tuple[str, ...] = ()
    #: OpenAI's ``response_format`` as JSON, for engines that constrain output to it.
    response_format: str | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


class MediaSlot(enum.StrEnum):
    """Where in a :class:`ChatTurn` the next image (or the video) goes."""

    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True)
class ChatTurn:
    """One message of a conversation: text pieces and media slots, in order."""

    role: Literal["system", "user", "assistant"]
    parts: tuple[str | MediaSlot, ...]

    @property
    def text(self) -> str:
        """The turn's text pieces joined (media slots left out)."""
        return "\n".join(p for p in self.parts if not isinstance(p, MediaSlot))


@dataclass(frozen=True)
class GenerationRequest:
    """Text plus optional images and at most one video.

    ``prompt`` is the user's text; the engine places the visual inputs before it in
    one user turn of the model's chat template. ``system`` is an optional system turn.
    With a ``conversation`` the engine renders that instead (``prompt`` and ``system``
    are then ignored); its media slots must match ``images`` and ``video``.
    """

    prompt: str
    images: tuple[np.ndarray, ...] = ()
    video: FrameBatch | None = None
    system: str | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    request_id: str = ""
    conversation: tuple[ChatTurn, ...] = ()

    def __post_init__(self) -> None:
        for image in self.images:
            if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
                raise ValueError("images must be RGB uint8 arrays of shape (H, W, 3)")
        if self.video is not None and self.video.kind is not MediaKind.VIDEO:
            raise ValueError("video must be a FrameBatch of kind 'video'")
        if self.conversation:
            slots = [p for t in self.conversation for p in t.parts if isinstance(p, MediaSlot)]
            images, videos = slots.count(MediaSlot.IMAGE), slots.count(MediaSlot.VIDEO)
            if images != len(self.images) or videos != (self.video is not None):
                raise ValueError("the conversation's media slots must match images and video")

    @classmethod
    def from_frames(
        cls,
        batch: FrameBatch,
        prompt: str,
        sampling: SamplingParams | None = None,
        request_id: str = "",
    ) -> GenerationRequest:
        """A request for one extracted image or video."""
        sampling = sampling or SamplingParams()
        if batch.kind is MediaKind.IMAGE:
            images = tuple(batch.frames[i] for i in range(batch.num_frames))
            return cls(prompt=prompt, images=images, sampling=sampling, request_id=request_id)
        return cls(prompt=prompt, video=batch, sampling=sampling, request_id=request_id)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str = "stop"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class GenerationDelta:
    """A piece of a streamed answer; the last one has ``finish_reason`` and the counts."""

    text: str
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


#: What ``Engine.generate_stream`` returns.
DeltaStream = AsyncGenerator[GenerationDelta, None]


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first of the ``stop`` strings, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class Engine(abc.ABC):
    """Base class of model backends; see the module docstring for the contract."""

    name: str = "engine"
    supports_batching: bool = False
    #: Whether the engine constrains output to ``SamplingParams.response_format``; one
    #: that cannot refuses such requests (``engines.chat.require_unconstrained``).
    constrains_output: bool = False

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def generate(self, request: GenerationRequest) -> GenerationResult: ...

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [await self.generate(r) for r in requests]

    async def generate_stream(self, request: GenerationRequest) -> DeltaStream:
        """Default: the whole answer of :meth:`generate` as one delta."""
        result = await self.generate(request)
        yield GenerationDelta(
            text=result.text,
            finish_reason=result.finish_reason,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
        )

    @abc.abstractmethod
    async def check_health(self) -> None: ...

    @abc.abstractmethod
    async def shutdown(self) -> None: ...
