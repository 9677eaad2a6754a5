"""One video's transcript as orchestrators see it, wherever the engine runs.

Orchestrators (long-video summaries, ``/api/analyze``, ``/analyze/``, ``/v1``) are
written once over :class:`SpeechBackend`. In process they get :class:`EngineSpeech`;
under Ray Serve, :class:`~serve_app.deployments.handles.HandleSpeech` (the
``AudioTranscriber`` deployment). Both decode with :func:`transcribe_media`.
:func:`transcribe_or_skip` is what a caller that also analyses the pictures uses: it
never raises for the audio's sake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

from serve_app.errors import BackendUnavailable
from serve_app.media.audio import (
    AudioChunk,
    AudioUnavailable,
    NoAudioStream,
    is_silent,
    iter_audio_chunks,
)
from serve_app.media.detect import MediaSource
from serve_app.speech.base import Segment, SpeechEngine, Transcript

logger = logging.getLogger(__name__)

#: Default longest audio one request transcribes (seconds).
DEFAULT_MAX_AUDIO_S = 4 * 3600.0
#: Longest piece :meth:`SpeechBackend.transcribe_audio` takes (Whisper's window).
MAX_PIECE_S = 30.0


async def transcribe_piece(engine: SpeechEngine, chunk: AudioChunk) -> list[Segment]:
    """``engine`` over one decoded piece; silence skips the engine.

    Raises:
        ValueError: the piece is longer than :data:`MAX_PIECE_S`.
    """
    if chunk.duration_s > MAX_PIECE_S + 1e-6:
        raise ValueError(f"a piece of audio is at most {MAX_PIECE_S:g} s")
    if is_silent(chunk):
        return []
    return await engine.transcribe(chunk)


class SpeechBackend(Protocol):
    """A speech engine that transcribes whole media files (or clips of them)."""

    async def transcribe(
        self,
        media: MediaSource,
        start_s: float = 0.0,
        end_s: float | None = None,
        request_id: str = "",
    ) -> Transcript:
        """The speech of ``media`` between ``start_s`` and ``end_s`` (video timeline).

        A video without an audio track gives ``Transcript(has_audio=False)``; silence
        gives no segments.

        Raises:
            AudioDecodeFailed: the audio track is corrupt (an :class:`AudioUnavailable`).
            BackendUnavailable: the engine is down.
        """
        ...

    async def transcribe_audio(self, chunk: AudioChunk, request_id: str = "") -> list[Segment]:
        """The speech in one decoded ``chunk`` (at most :data:`MAX_PIECE_S` seconds),
        times in the video's timeline; silence gives ``[]``.

        For callers that decode the audio themselves, a piece at a time (long-video
        jobs): only the piece crosses to the engine, never the whole file.

        Raises:
            BackendUnavailable: the engine is down.
        """
        ...

    async def ready(self) -> bool:
        """``True`` when the engine can serve now; never raises."""
        ...


@dataclass(frozen=True)
class AudioOutcome:
    """A transcript for a caller that analyses the pictures too.

    ``transcript`` is always there (empty when skipped); ``skipped`` says why the audio
    was not used (no track, corrupt, engine down), ``None`` when it was.
    """

    transcript: Transcript
    skipped: str | None = None

    @property
    def note(self) -> str | None:
        """``"audio skipped: <why>"`` for a response, or ``None``."""
        return None if self.skipped is None else f"audio skipped: {self.skipped}"


async def transcribe_or_skip(
    backend: SpeechBackend,
    media: MediaSource,
    start_s: float = 0.0,
    end_s: float | None = None,
    request_id: str = "",
) -> AudioOutcome:
    """:meth:`SpeechBackend.transcribe`, with every audio failure turned into a skip."""
    try:
        transcript = await backend.transcribe(media, start_s, end_s, request_id)
    except AudioUnavailable as exc:
        return AudioOutcome(Transcript(has_audio=False), exc.detail)
    except BackendUnavailable as exc:
        logger.warning("speech recognition unavailable: %s", exc.detail)
        return AudioOutcome(Transcript(), "speech recognition is unavailable")
    if not transcript.has_audio:
        return AudioOutcome(transcript, "the video has no audio track")
    return AudioOutcome(transcript)


async def transcribe_media(
    engine: SpeechEngine,
    media: MediaSource,
    start_s: float = 0.0,
    end_s: float | None = None,
    chunk_s: float = 30.0,
    max_audio_s: float = DEFAULT_MAX_AUDIO_S,
) -> Transcript:
    """Decode ``media``'s audio chunk by chunk (in a thread) and transcribe each.

    One chunk is in memory at a time; silent chunks skip the engine.
    """
    chunk_s = min(chunk_s, engine.max_chunk_s)
    limit = start_s + max_audio_s
    end_s = limit if end_s is None else min(end_s, limit)
    chunks = iter_audio_chunks(media, chunk_s=chunk_s, start_s=start_s, end_s=end_s)
    segments: list[Segment] = []
    audio_s = 0.0
    try:
        while (chunk := await asyncio.to_thread(_next, chunks)) is not None:
            audio_s += chunk.duration_s
            if not is_silent(chunk):
                segments.extend(await engine.transcribe(chunk))
    except NoAudioStream:
        return Transcript(has_audio=False)
    finally:
        chunks.close()
    return Transcript(tuple(segments), has_audio=True, audio_s=round(audio_s, 3))


def _next(chunks: Generator[AudioChunk, None, None]) -> AudioChunk | None:
    return next(chunks, None)


class EngineSpeech:
    """:class:`SpeechBackend` over a started engine in this process."""

    def __init__(
        self,
        engine: SpeechEngine,
        chunk_s: float = 30.0,
        max_audio_s: float = DEFAULT_MAX_AUDIO_S,
    ) -> None:
        self.engine = engine
        self._chunk_s = chunk_s
        self._max_audio_s = max_audio_s

    async def transcribe(
        self,
        media: MediaSource,
        start_s: float = 0.0,
        end_s: float | None = None,
        request_id: str = "",
    ) -> Transcript:
        return await transcribe_media(
            self.engine, media, start_s, end_s, self._chunk_s, self._max_audio_s
        )

    async def transcribe_audio(self, chunk: AudioChunk, request_id: str = "") -> list[Segment]:
        return await transcribe_piece(self.engine, chunk)

    async def ready(self) -> bool:
        try:
            await self.engine.check_health()
        except BackendUnavailable:
            return False
        return True
