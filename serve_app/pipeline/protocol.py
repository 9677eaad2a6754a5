"""What the ingress needs from the model graph."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from serve_app.engines.base import (
    ChatTurn,
    GenerationDelta,
    GenerationResult,
    MediaSlot,
    SamplingParams,
)
from serve_app.engines.profile import ModelProfile
from serve_app.media.extract import MediaInfo
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.media.sampling import SamplingSpec
from serve_app.storage.spool import SpooledFile

#: Media inline (bytes) or as a file of this process's node. A pipeline that runs
#: elsewhere ships the file's bytes itself (Ray Serve: through the object store).
MediaRef = bytes | Path


@dataclass(frozen=True)
class DescribeJob:
    """One image or video to describe with one model."""

    media: MediaRef
    prompt: str
    model: str
    spec: SamplingSpec
    sampling: SamplingParams = field(default_factory=SamplingParams)
    request_id: str = ""
    #: What the ingress's probe found, so the extractor need not probe again.
    media_info: MediaInfo | None = None

    def with_context(self, text: str) -> DescribeJob:
        """The job with ``text`` (a video's speech) after its prompt; unchanged if empty."""
        if not text:
            return self
        return replace(self, prompt=f"{self.prompt}\n\n{text}")


#: Text for a describe prompt that is only ready later (a video's speech, transcribed
#: while the frames are extracted): awaited after extraction starts, before the model.
PromptContext = Awaitable[str]


@dataclass(frozen=True)
class ChatMedia:
    """One image or video of a chat request, not yet decoded.

    Attributes:
        source: the file (inline or by path), or a video's frames as image files.
        spec: how to sample a video file.
        info: the ingress's probe of ``source`` (files only).
        frames_fps: the rate at which a video's ``frames`` were taken.
        max_pixels: the client's per-image / per-frame pixel cap.
    """

    kind: MediaKind
    source: MediaRef | tuple[bytes, ...]
    spec: SamplingSpec | None = None
    info: MediaInfo | None = None
    frames_fps: float = 2.0
    #: The client's per-frame pixel cap (only ever lowers the model's budget).
    max_pixels: int | None = None


@dataclass(frozen=True)
class ChatJob:
    """A conversation whose media slots take ``media`` in order, for one model."""

    model: str
    conversation: tuple[ChatTurn, ...]
    media: tuple[ChatMedia, ...] = ()
    sampling: SamplingParams = field(default_factory=SamplingParams)
    request_id: str = ""

    def without_media(self) -> ChatJob:
        """The job as the model replica needs it: it gets frames, not files."""
        return ChatJob(self.model, self.conversation, (), self.sampling, self.request_id)

    def with_context(self, text: str) -> ChatJob:
        """The job with ``text`` (the video's speech) right after the video's slot
        (after the last turn's text when no turn has one); unchanged if empty."""
        if not text:
            return self
        turns = list(self.conversation)
        at = next((i for i, t in enumerate(turns) if MediaSlot.VIDEO in t.parts), len(turns) - 1)
        parts = list(turns[at].parts)
        where = parts.index(MediaSlot.VIDEO) + 1 if MediaSlot.VIDEO in parts else len(parts)
        parts.insert(where, text)
        turns[at] = ChatTurn(turns[at].role, tuple(parts))
        return replace(self, conversation=tuple(turns))


@dataclass(frozen=True)
class SampledVideo:
    """What was taken from a video: source frame indices, their times, the rate.

    ``requested_frames`` is how many frames the requested interval or fps picked;
    ``thinned`` says the frame budget kept fewer of them (evenly spread).
    """

    frame_indices: tuple[int, ...]
    timestamps: tuple[float, ...]
    fps: float
    source_fps: float
    width: int
    height: int
    requested_frames: int = 0
    thinned: bool = False

    def report(self) -> dict[str, Any]:
        """The JSON the synchronous APIs add as ``sampling`` (frames as the model got
        them: the last one repeats when the count is odd)."""
        return {
            "frame_indices": list(self.frame_indices),
            "timestamps": list(self.timestamps),
            "fps": self.fps,
            "source_fps": self.source_fps,
            "requested_frames": self.requested_frames,
            "thinned": self.thinned,
        }

    @classmethod
    def of(cls, batch: FrameBatch) -> SampledVideo:
        span = batch.timestamps[-1] - batch.timestamps[0] if batch.num_frames > 1 else 0.0
        unique = len(set(batch.frame_indices))
        fps = (unique - 1) / span if span > 0 else 0.0
        requested = batch.candidate_frames or unique
        return cls(
            frame_indices=tuple(batch.frame_indices),
            timestamps=tuple(round(t, 4) for t in batch.timestamps),
            fps=round(fps, 4),
            source_fps=round(batch.source_fps, 4),
            width=batch.width,
            height=batch.height,
            requested_frames=requested,
            thinned=requested > unique,
        )


@dataclass(frozen=True)
class ChatAnswer:
    """A model's answer and what was sampled from each video it saw (chat and describe)."""

    generation: GenerationResult
    videos: tuple[SampledVideo, ...] = ()


#: A streamed chat answer: the sampled videos first, then the text deltas.
ChatEvent = SampledVideo | GenerationDelta
ChatStream = AsyncGenerator[ChatEvent, None]


def media_ref_for(upload: SpooledFile, inline_media_bytes: int) -> MediaRef:
    """Small files inline; large ones by path, never read into memory here."""
    if upload.size <= inline_media_bytes:
        return upload.path.read_bytes()
    return upload.path


class Pipeline(Protocol):
    """Frames → vision-language model, wherever those run."""

    @property
    def model_names(self) -> tuple[str, ...]:
        """Public names of the configured models."""
        ...

    @property
    def default_model(self) -> str: ...

    def profile(self, name: str) -> ModelProfile:
        """The profile of model ``name``; :class:`UnknownModel` if none."""
        ...

    async def describe(self, job: DescribeJob, context: PromptContext | None = None) -> ChatAnswer:
        """Extract frames from ``job.media`` and describe them with ``job.model``.

        ``context``: awaited while the frames are extracted; its text follows the
        prompt (:meth:`DescribeJob.with_context`).
        """
        ...

    async def chat(self, job: ChatJob, context: PromptContext | None = None) -> ChatAnswer:
        """Extract ``job.media`` on the extractor, then answer the conversation.

        ``context``: awaited while the media are extracted; its text follows the
        video in the conversation (:meth:`ChatJob.with_context`).
        """
        ...

    def chat_stream(self, job: ChatJob, context: PromptContext | None = None) -> ChatStream:
        """:meth:`chat`, streamed; closing the iterator aborts the generation."""
        ...

    async def readiness(self) -> dict[str, bool]:
        """Each component's readiness (models loaded and healthy)."""
        ...
