"""AudioTranscriber: a video's speech as timed segments, on its own replicas.

CPU replicas with pocketsphinx by default; ``serve_config.yaml`` gives it a GPU for
Whisper. It scales apart from the frame and model deployments.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from serve_app.deployments.construct import AsyncConstructed
from serve_app.deployments.media_transfer import Arrived, landed
from serve_app.deployments.request_context import current_request_id
from serve_app.media.audio import AudioChunk
from serve_app.observability import metrics
from serve_app.observability.logging import bind_request_id, configure_logging
from serve_app.pipeline.protocol import MediaRef
from serve_app.speech.backend import transcribe_media, transcribe_piece
from serve_app.speech.base import Segment, Transcript
from serve_app.speech.factory import SpeechEngineFactory
from serve_app.storage.node_dir import node_data_dir

logger = logging.getLogger(__name__)
DEPLOYMENT = "AudioTranscriber"


class AudioTranscriber(AsyncConstructed):
    """Hosts one speech engine (:class:`SpeechEngineFactory`) inside a replica."""

    async def __init__(  # type: ignore[misc]  # Ray supports async constructors
        self,
        engine: SpeechEngineFactory,
        log_json: bool = False,
        data_dir: Path | None = None,
    ) -> None:
        configure_logging(json=log_json)
        self._settings = engine.settings
        base = node_data_dir(data_dir) if data_dir is not None else Path(tempfile.gettempdir())
        self._spool = base / "spool"
        self._engine = engine()
        await self._engine.start()

    async def transcribe(
        self,
        media: MediaRef | Arrived,
        start_s: float = 0.0,
        end_s: float | None = None,
        request_id: str = "",
    ) -> Transcript:
        """The speech of ``media`` (bytes, or a file the ingress shipped) in a clip.

        Raises :class:`~serve_app.media.audio.AudioUnavailable` errors as the
        :class:`~serve_app.speech.backend.SpeechBackend` contract says.
        """
        with (
            bind_request_id(current_request_id(request_id)),
            metrics.track_in_flight(DEPLOYMENT),
            landed(media, self._spool) as source,
        ):
            transcript = await transcribe_media(
                self._engine,
                source,
                start_s,
                end_s,
                chunk_s=self._settings.chunk_s,
                max_audio_s=self._settings.max_audio_s,
            )
            logger.info(
                "transcribed",
                extra={"audio_s": transcript.audio_s, "segments": len(transcript.segments)},
            )
        return transcript

    async def transcribe_audio(self, chunk: AudioChunk, request_id: str = "") -> list[Segment]:
        """The speech in one piece of audio the caller decoded (long-video jobs)."""
        with bind_request_id(current_request_id(request_id)), metrics.track_in_flight(DEPLOYMENT):
            return await transcribe_piece(self._engine, chunk)

    async def ready(self) -> bool:
        try:
            await self._engine.check_health()
        except Exception:
            return False
        return True

    async def check_health(self) -> None:
        """Ray Serve's health probe: a failing engine gets the replica restarted."""
        await self._engine.check_health()

    async def shutdown(self) -> None:
        await self._engine.shutdown()
