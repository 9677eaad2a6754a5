"""The request parameters of an analysis, checked once per request."""

from __future__ import annotations

from dataclasses import dataclass

from serve_app.analysis.settings import AnalysisSettings
from serve_app.errors import InvalidRequest, UnknownModel
from serve_app.media.frames import MediaKind
from serve_app.pipeline.protocol import Pipeline
from serve_app.pipeline.speech import AudioMode, check_audio
from serve_app.speech.backend import SpeechBackend


@dataclass(frozen=True)
class AnalyzeParams:
    """As the client sent them (``prompt``, ``model_path``, ``interval``, ``audio``)."""

    prompt: str | None = None
    model: str | None = None
    interval: int | None = None
    audio: str | None = None


@dataclass(frozen=True)
class CheckedParams:
    """Parameters that passed :func:`check_params`.

    Attributes:
        prompt: the client's prompt without surrounding white space; ``None`` when it
            sent none, so the media kind picks the default (:meth:`prompt_for`).
    """

    model: str
    interval: int
    prompt: str | None
    audio: AudioMode = AudioMode.OFF

    def prompt_for(self, kind: MediaKind, settings: AnalysisSettings) -> str:
        if self.prompt:
            return self.prompt
        return settings.default_video_prompt if kind is MediaKind.VIDEO else settings.default_prompt


def check_params(
    pipeline: Pipeline,
    params: AnalyzeParams,
    settings: AnalysisSettings,
    speech: SpeechBackend | None = None,
) -> CheckedParams:
    """The model, interval and prompt to use (the checks that need no media).

    Raises:
        UnknownModel: the model is not configured (the message lists the valid names).
        InvalidRequest: an interval below 1, a prompt over ``max_prompt_chars``, an
            unknown ``audio``, or ``audio=transcribe`` without ``speech``.
    """
    model = params.model or pipeline.default_model
    if model not in pipeline.model_names:
        names = ", ".join(sorted(pipeline.model_names))
        raise UnknownModel(f"unknown model_path {model!r}; configured models: {names}")
    interval = params.interval if params.interval is not None else settings.default_interval
    if interval < 1:
        raise InvalidRequest("interval must be an integer >= 1")
    prompt = (params.prompt or "").strip()
    if params.prompt is not None and len(params.prompt) > settings.max_prompt_chars:
        raise InvalidRequest(f"prompt is longer than {settings.max_prompt_chars} characters")
    audio = check_audio(params.audio, speech)
    return CheckedParams(model=model, interval=interval, prompt=prompt or None, audio=audio)
