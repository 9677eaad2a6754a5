"""The speech engine contract: one small async interface every ASR backend implements.

Contract
--------
``await engine.start()``
    Load the model. Idempotent. Raises :class:`BackendUnavailable` if it cannot.
``await engine.transcribe(chunk) -> list[Segment]``
    Takes one :class:`AudioChunk` (mono float32 at 16 kHz, at most the engine's
    ``max_chunk_s`` seconds, stamped with ``start_s`` in the video's timeline) and
    returns the speech in it as segments in time order, **times in the video's
    timeline** (``chunk.start_s`` added) and inside ``[chunk.start_s, chunk.end_s]``.
    ``text`` is stripped and never empty; ``words`` carries word timings where the
    backend gives them (pocketsphinx does; Whisper segments have none) and is empty
    otherwise. Silence gives ``[]``. Raises :class:`BackendUnavailable` for backend
    faults. Chunks are independent: an engine keeps no state between calls, so
    several may run at once and in any order.
``await engine.check_health()``
    Returns if the engine can serve; raises :class:`BackendUnavailable` otherwise.
``await engine.shutdown()``
    Releases resources. Idempotent.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from serve_app.media.audio import SAMPLE_RATE, AudioChunk

__all__ = ["SAMPLE_RATE", "AudioChunk", "Segment", "SpeechEngine", "Transcript", "Word"]


@dataclass(frozen=True)
class Word:
    """One recognised word and when it was said (seconds, video timeline)."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Segment:
    """A stretch of speech (a phrase or sentence) with its time span, in the video's timeline."""

    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.start_s <= self.end_s:
            raise ValueError("need 0 <= start_s <= end_s")

    def shifted(self, offset_s: float) -> Segment:
        """The same segment ``offset_s`` seconds later (words too)."""
        words = tuple(Word(w.text, w.start_s + offset_s, w.end_s + offset_s) for w in self.words)
        return Segment(self.start_s + offset_s, self.end_s + offset_s, self.text, words)


@dataclass(frozen=True)
class Transcript:
    """A video's speech (or a clip of it) as segments in time order.

    Attributes:
        segments: what was said, in time order (empty for silence or no audio).
        has_audio: whether the video has an audio track at all.
        audio_s: seconds of audio decoded (0 without a track).
    """

    segments: tuple[Segment, ...] = ()
    has_audio: bool = True
    audio_s: float = 0.0

    @property
    def text(self) -> str:
        """All segments' text, joined by spaces."""
        return " ".join(s.text for s in self.segments)

    def between(self, start_s: float, end_s: float) -> tuple[Segment, ...]:
        """Segments overlapping ``[start_s, end_s)`` (a long-video chunk's speech)."""
        return tuple(s for s in self.segments if s.start_s < end_s and s.end_s > start_s)


def prompt_lines(segments: Iterable[Segment]) -> str:
    """Segments as ``[12.3-15.0] text`` lines, for a model's prompt."""
    return "\n".join(f"[{s.start_s:.1f}-{s.end_s:.1f}] {s.text}" for s in segments)


def segment_dicts(segments: Iterable[Segment]) -> list[dict[str, Any]]:
    """Segments as JSON objects (``start_s``, ``end_s`` to the millisecond, ``text``)."""
    return [
        {"start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "text": s.text}
        for s in segments
    ]


def clipped(segments: Sequence[Segment], chunk: AudioChunk) -> list[Segment]:
    """``segments`` (times relative to ``chunk``) moved into the video's timeline.

    Times are clamped into the chunk, empty texts dropped, order by start kept.
    """
    out: list[Segment] = []
    length = chunk.duration_s
    for seg in segments:
        text = seg.text.strip()
        if not text:
            continue
        start = min(max(seg.start_s, 0.0), length)
        end = min(max(seg.end_s, start), length)
        words = tuple(
            Word(w.text, min(max(w.start_s, 0.0), length), min(max(w.end_s, 0.0), length))
            for w in seg.words
        )
        out.append(Segment(start, end, text, words).shifted(chunk.start_s))
    return sorted(out, key=lambda s: s.start_s)


class SpeechEngine(abc.ABC):
    """Base class of speech backends; see the module docstring for the contract."""

    name: str = "speech"
    #: Longest chunk one call takes (Whisper's window is 30 s).
    max_chunk_s: float = 600.0

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def transcribe(self, chunk: AudioChunk) -> list[Segment]: ...

    @abc.abstractmethod
    async def check_health(self) -> None: ...

    @abc.abstractmethod
    async def shutdown(self) -> None: ...
