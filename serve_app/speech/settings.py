"""Settings of speech recognition: ``Settings.speech`` (env ``SERVE_APP_SPEECH__*``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Whisper's context window (seconds of audio per call).
WHISPER_WINDOW_S = 30.0
#: ``model`` value that builds the tiny random-weight Whisper offline (tests, benchmarks).
TINY_WHISPER = "tiny-random-whisper"


class SpeechBackendName(StrEnum):
    POCKETSPHINX = "pocketsphinx"
    WHISPER = "whisper"
    OFF = "off"


class SpeechSettings(BaseModel):
    """Which speech engine the ``AudioTranscriber`` deployment runs, and how.

    ``backend: pocketsphinx`` (the embedded profile's engine) uses the English model shipped in the
    ``pocketsphinx`` wheel: offline, CPU only. ``backend: whisper`` loads
    ``model`` (a Hugging Face hub id such as ``openai/whisper-large-v3-turbo`` or a
    local directory; ``tiny-random-whisper`` builds a tiny random model offline) with
    transformers. ``off`` (the library default, so embedding apps and test graphs opt
    in; ``scripts/serve.sh``, the README's embedded run, sets ``pocketsphinx``): no
    ``AudioTranscriber`` deployment, no audio anywhere.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: SpeechBackendName = SpeechBackendName.OFF
    #: Whisper: hub id or local directory. Pocketsphinx: an acoustic model directory
    #: (with ``mdef``; ``*.lm.bin`` and ``*.dict`` beside or in it); empty: the
    #: packaged US English model.
    model: str = ""
    #: ``cpu``, ``cuda``, ``cuda:1``...; ``auto``: CUDA when available (Whisper only).
    device: str = "auto"
    #: Whisper: ``float16``/``bfloat16`` on GPU; ``float32`` on CPU. ``auto`` picks so.
    dtype: str = "auto"
    #: Spoken language for Whisper (``en``, ``de``...); ``None``: detected per chunk
    #: (multilingual checkpoints only).
    language: str | None = None
    #: Seconds of audio per engine call (Whisper: at most 30, its window).
    chunk_s: float = Field(default=30.0, gt=1.0, le=600.0)
    #: Torch / pocketsphinx threads per replica (over-subscribed threads slow CPUs down).
    threads: int = Field(default=1, ge=1, le=64)
    #: Longest audio one request may transcribe (seconds); beyond: transcribed up to it.
    max_audio_s: float = Field(default=4 * 3600.0, gt=0)

    @model_validator(mode="after")
    def _whisper_window(self) -> SpeechSettings:
        if self.backend is SpeechBackendName.WHISPER:
            if self.chunk_s > WHISPER_WINDOW_S:
                raise ValueError(f"whisper takes at most {WHISPER_WINDOW_S:g} s per chunk")
            if not self.model:
                raise ValueError("speech.model must name a Whisper checkpoint")
        return self

    @property
    def enabled(self) -> bool:
        return self.backend is not SpeechBackendName.OFF
