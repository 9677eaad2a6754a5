"""The speech of one chunk: its audio decoded here, a piece at a time, transcribed on
the ``AudioTranscriber`` replicas (only the pieces cross, never the whole file).

Audio never fails a summary: no track, a corrupt track or a speech engine that is down
give no segments and a reason, which the chunk's result records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from serve_app.errors import BackendUnavailable
from serve_app.media.audio import AudioChunk, AudioUnavailable, NoAudioStream, iter_audio_chunks
from serve_app.speech.backend import MAX_PIECE_S, SpeechBackend
from serve_app.speech.base import Segment, prompt_lines, segment_dicts
from serve_app.summaries.results import SpeechSegment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkSpeech:
    """What was said in a chunk, or why nothing could be heard."""

    segments: tuple[Segment, ...] = ()
    skipped: str | None = None

    def prompt_lines(self) -> str:
        """``[12.3-15.0] text`` lines for the caption prompt ("" without speech)."""
        return prompt_lines(self.segments)

    def as_json(self) -> list[SpeechSegment]:
        return cast(list[SpeechSegment], segment_dicts(self.segments))


async def chunk_speech(
    backend: SpeechBackend, path: Path, start_s: float, end_s: float, request_id: str = ""
) -> ChunkSpeech:
    """The speech of ``path`` between ``start_s`` and ``end_s`` (video timeline)."""
    pieces = iter_audio_chunks(path, chunk_s=MAX_PIECE_S, start_s=start_s, end_s=end_s)
    segments: list[Segment] = []
    try:
        while (piece := await asyncio.to_thread(_next, pieces)) is not None:
            segments.extend(await backend.transcribe_audio(piece, request_id))
    except NoAudioStream:
        return ChunkSpeech(skipped="the video has no audio track")
    except AudioUnavailable as exc:
        return ChunkSpeech(skipped=exc.detail)
    except BackendUnavailable as exc:
        logger.warning("speech recognition unavailable: %s", exc.detail)
        return ChunkSpeech(skipped="speech recognition is unavailable")
    finally:
        pieces.close()
    return ChunkSpeech(tuple(segments))


def _next(pieces: Generator[AudioChunk, None, None]) -> AudioChunk | None:
    return next(pieces, None)
