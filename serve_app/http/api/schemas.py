"""Response bodies of the public API (documented in OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class SamplingReport(BaseModel):
    """Which frames of a video the model saw."""

    frame_indices: list[int] = Field(
        description="Source frame index of each frame given to the model (presentation "
        "order; the last repeats when the count is odd: the model takes frames in pairs)."
    )
    timestamps: list[float] = Field(description="Each frame's time in seconds from the start.")
    fps: float = Field(description="Effective frames per second of the sampled frames.")
    source_fps: float = Field(description="The video's average frame rate.")
    requested_frames: int = Field(
        description="Frames the requested interval (or fps) picked before the frame budget."
    )
    thinned: bool = Field(
        description="True when the frame budget kept fewer than requested_frames, evenly "
        "spread (a longer interval would have sampled the same span)."
    )


class SpeechSegment(BaseModel):
    start_s: float = Field(description="When the phrase starts, seconds from the video's start.")
    end_s: float = Field(description="When it ends.")
    text: str


class TranscriptReport(BaseModel):
    """A video's speech, returned with ``audio=transcribe``."""

    segments: list[SpeechSegment] = Field(
        description="What was said, in time order (the lines the model saw)."
    )
    skipped: str | None = Field(
        description="'audio skipped: <why>' when the audio was not used (no audio track, "
        "a corrupt track, an image, speech recognition down); null otherwise."
    )


class AnalyzeResponse(BaseModel):
    result: str = Field(description="The model's answer.")
    tokens_used: int = Field(0, description="Credits charged for this analysis.")
    remaining_tokens: int | None = Field(
        None, description="The caller's credit balance after this analysis."
    )
    sampling: SamplingReport | None = Field(
        None, description="For a video: the frames the model saw (null for an image)."
    )
    transcript: TranscriptReport | None = Field(
        None,
        description="With audio=transcribe only (absent otherwise): the speech the model saw.",
        exclude_if=lambda value: value is None,
    )


class ErrorResponse(BaseModel):
    detail: str


def error_responses(table: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for error statuses: ``{status: description}`` → entries."""
    return {status: {"model": ErrorResponse, "description": text} for status, text in table.items()}


class HealthResponse(BaseModel):
    status: str


class ReadinessResponse(BaseModel):
    status: str = Field(description="'ready' or 'not ready'")
    components: dict[str, bool]
