"""``audio: "transcribe"`` on ``/v1/chat/completions``: the video's speech in the chat.

An extension field of the request body (next to vLLM's ``media_io_kwargs``): the
video file's audio is transcribed while its frames are extracted, the timed lines
follow the video in the conversation, and the completion carries ``transcript``. A
missing or corrupt track (or a video sent as a list of frames, or no video at all)
is reported as skipped with the reason; it never fails the answer.
"""

from __future__ import annotations

import asyncio

from serve_app.chat.protocol import SpeechSegment, SpeechTranscript
from serve_app.errors import InvalidRequest, ParameterError
from serve_app.media.frames import MediaKind
from serve_app.pipeline.protocol import ChatJob
from serve_app.pipeline.speech import AudioMode, Listening, check_audio, transcript_report
from serve_app.speech.backend import AudioOutcome, SpeechBackend
from serve_app.speech.base import Transcript

NO_VIDEO = "the request has no video"
FRAME_LIST = "a video sent as a list of frames has no audio"


def check_chat_audio(value: str | None, speech: SpeechBackend | None) -> AudioMode:
    """The request's ``audio`` (400 with ``param: "audio"`` when invalid or not enabled)."""
    try:
        return check_audio(value, speech)
    except InvalidRequest as exc:
        raise ParameterError(exc.detail, "audio") from None


class ChatAudio:
    """One request's speech: started with the answer, reported with it."""

    def __init__(
        self, speech: SpeechBackend | None, job: ChatJob, mode: AudioMode, request_id: str = ""
    ) -> None:
        self._listening: Listening | None = None
        self._skipped: AudioOutcome | None = None
        self.wanted = mode is AudioMode.TRANSCRIBE and speech is not None
        if not self.wanted or speech is None:
            return
        video = next((m for m in job.media if m.kind is MediaKind.VIDEO), None)
        if video is None:
            self._skipped = AudioOutcome(Transcript(has_audio=False), NO_VIDEO)
        elif isinstance(video.source, tuple):
            self._skipped = AudioOutcome(Transcript(has_audio=False), FRAME_LIST)
        else:
            self._listening = Listening(speech, video.source, request_id)

    @property
    def context(self) -> asyncio.Future[str] | None:
        """The speech lines for the conversation (awaited by the pipeline), or ``None``."""
        return None if self._listening is None else self._listening.context

    async def transcript(self) -> SpeechTranscript | None:
        """The response's ``transcript`` extension (``None`` without ``audio``)."""
        if not self.wanted:
            return None
        outcome = self._skipped
        if self._listening is not None:
            outcome = await self._listening.outcome()
        if outcome is None:
            return None
        report = transcript_report(outcome)
        return SpeechTranscript(
            segments=[SpeechSegment(**s) for s in report["segments"]], skipped=report["skipped"]
        )

    def close(self) -> None:
        """Stop the transcription (the request ended, answered or not)."""
        if self._listening is not None:
            self._listening.cancel()
