"""A video's speech fused into what a vision model sees (``audio=transcribe``).

The synchronous APIs (``/api/analyze``, ``/analyze/``, ``/v1/chat/completions``) use
these helpers over an optional :class:`~serve_app.speech.backend.SpeechBackend`: the
transcription runs while the frames are extracted (:class:`Listening` is the
``context`` a :meth:`Pipeline.describe` awaits before the model call), its lines join
the prompt, and the response carries the transcript (:func:`transcript_report`). The
audio never fails the visual analysis: a missing or corrupt track, or a speech engine
that is down, is reported as skipped with the reason.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

from serve_app.errors import InvalidRequest
from serve_app.media.detect import MediaSource
from serve_app.speech.backend import AudioOutcome, SpeechBackend, transcribe_or_skip
from serve_app.speech.base import Transcript, prompt_lines, segment_dicts

#: The 400 for ``audio=transcribe`` on a server without speech recognition.
NOT_ENABLED = "speech recognition is not enabled on this server (settings.speech.backend)"
#: Why an image's ``audio=transcribe`` transcribes nothing.
IMAGE_SKIP = "an image has no audio"


class AudioMode(enum.StrEnum):
    """What a request does with a video's audio track."""

    OFF = "off"
    TRANSCRIBE = "transcribe"


def check_audio(value: str | None, speech: SpeechBackend | None) -> AudioMode:
    """The request's ``audio`` option (``None``: off).

    Raises:
        InvalidRequest: an unknown value, or ``transcribe`` without a speech backend.
    """
    if value is None or value == "":
        return AudioMode.OFF
    try:
        mode = AudioMode(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in AudioMode)
        raise InvalidRequest(f"audio must be one of {choices}, not {value!r}") from None
    if mode is AudioMode.TRANSCRIBE and speech is None:
        raise InvalidRequest(NOT_ENABLED)
    return mode


def speech_prompt(outcome: AudioOutcome) -> str:
    """``"Speech in the video:"`` and the transcript's timed lines; ``""`` for no speech."""
    segments = outcome.transcript.segments
    if not segments:
        return ""
    return "Speech in the video (seconds from the start):\n" + prompt_lines(segments)


def with_speech(prompt: str, speech: str) -> str:
    """``prompt`` followed by the speech lines (unchanged when there are none)."""
    return f"{prompt}\n\n{speech}" if speech else prompt


def transcript_report(outcome: AudioOutcome) -> dict[str, Any]:
    """The ``transcript`` a response adds: timed segments and why the audio was skipped."""
    return {
        "segments": segment_dicts(outcome.transcript.segments),
        "skipped": outcome.note,
    }


def image_outcome() -> AudioOutcome:
    """``audio=transcribe`` on images: ignored, and the response says so."""
    return AudioOutcome(Transcript(has_audio=False), IMAGE_SKIP)


class Listening:
    """One video's transcription, started now, running beside the frame extraction.

    :attr:`context` (the prompt's speech lines) is what a describe awaits before its
    model call; :meth:`outcome` the transcript for the response. Call :meth:`cancel`
    when the request ends, so a failed analysis stops the transcription too.
    """

    def __init__(self, speech: SpeechBackend, media: MediaSource, request_id: str = "") -> None:
        self._task = asyncio.ensure_future(transcribe_or_skip(speech, media, request_id=request_id))
        #: Resolves to :func:`speech_prompt` of the outcome (a task: safe to never await).
        self.context: asyncio.Future[str] = asyncio.ensure_future(self._prompt())

    async def _prompt(self) -> str:
        return speech_prompt(await asyncio.shield(self._task))

    async def outcome(self) -> AudioOutcome:
        return await asyncio.shield(self._task)

    def cancel(self) -> None:
        self.context.cancel()
        self._task.cancel()
