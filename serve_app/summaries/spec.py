"""What a client asks for: the body of ``POST /api/video_summaries`` (and its preflight)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SummaryRequest(BaseModel):
    """A long-video summary: how to cut the clip, what to ask, what it may cost.

    Chunks are ``chunk_s`` long and start every ``chunk_s - overlap_s`` seconds from
    ``start_s``; the last one ends at the clip's end. Each is captioned from
    ``frames_per_chunk`` frames spread evenly over it, or, with ``min_fps``, from
    enough frames to sample it at least that densely (at most the model's frame
    budget; a denser request is refused: use shorter chunks).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_url: str = Field(
        min_length=1,
        max_length=4096,
        description="A signed upload URL (POST /video_upload_signed_url/) or an http(s) URL.",
    )
    chunk_s: float = Field(default=30.0, gt=0, description="Chunk length in seconds.")
    overlap_s: float = Field(default=0.0, ge=0, description="Seconds shared by neighbours.")
    frames_per_chunk: int | None = Field(default=None, ge=1, le=256)
    min_fps: float | None = Field(default=None, gt=0, le=60)
    caption_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    summary_prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    language: str | None = Field(
        default=None, max_length=35, description="Translate captions, chapters and summary."
    )
    start_s: float = Field(default=0.0, ge=0, description="Clip start (seconds).")
    end_s: float | None = Field(default=None, gt=0, description="Clip end; default: the end.")
    max_credits: int | None = Field(
        default=None, ge=0, description="Refuse (402) when the estimate is above this."
    )
    callback_url: str | None = Field(default=None, max_length=2048)
    model: str | None = Field(default=None, max_length=200, description="Vision model name.")
    audio: Literal["auto", "transcribe", "off"] = Field(
        default="auto",
        description="Transcribe the speech into each chunk's prompt and result: 'auto' when "
        "the server has speech recognition, 'transcribe' to require it (400 otherwise).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SummaryRequest:
        if self.frames_per_chunk is not None and self.min_fps is not None:
            raise ValueError("give frames_per_chunk or min_fps, not both")
        if self.overlap_s * 2 >= self.chunk_s:
            raise ValueError("overlap_s must be less than half of chunk_s")
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class SummaryParams(BaseModel):
    """A submitted request as the job stores it (``params_json``), with what was resolved
    at submit: the vision model's name and the frames each chunk gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: SummaryRequest
    model: str
    frames_per_chunk: int
    #: The canonical language tag (``request.language`` normalised), or None.
    language: str | None = None
    #: Whether the chunks' speech is transcribed (``audio`` resolved at submit).
    transcribe: bool = False
