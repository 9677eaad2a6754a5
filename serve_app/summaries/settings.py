"""Settings of long-video summaries: ``Settings.summaries`` (env ``SERVE_APP_SUMMARIES__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_CAPTION_PROMPT = (
    "Describe what happens in this part of the video: the people, objects, actions, "
    "places and any text shown. Be specific and concise."
)
DEFAULT_SUMMARY_PROMPT = (
    "Write chapters and a summary of the whole video from the timed descriptions of its parts."
)


class SummarySettings(BaseModel):
    """Chunking limits, concurrency, token budgets and prices of summary jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Allowed chunk lengths (seconds).
    min_chunk_s: float = Field(default=2.0, gt=0)
    max_chunk_s: float = Field(default=600.0, gt=0)
    #: Most chunks one job may have (a 10-hour video at 30 s chunks is 1200).
    max_chunks_per_job: int = Field(default=5000, ge=1)
    #: Chunks of one job captioned at once (across the vision model's replicas); more
    #: wait, with their frames not yet decoded, so a job's memory stays bounded.
    chunks_in_flight: int = Field(default=4, ge=1, le=64)
    #: Tokens a chunk caption may have.
    caption_max_tokens: int = Field(default=160, ge=8, le=4096)
    #: Tokens of the reduce step's answers (chapters + summary, partial summaries).
    summary_max_tokens: int = Field(default=512, ge=16, le=8192)
    #: Prompt budget of one reduce call; captions beyond it are reduced hierarchically.
    #: 0: the text model's ``max_model_len``.
    reduce_context_tokens: int = Field(default=0, ge=0)
    default_caption_prompt: str = DEFAULT_CAPTION_PROMPT
    default_summary_prompt: str = DEFAULT_SUMMARY_PROMPT
    #: Credits per captioned chunk, and per job for the reduce step.
    credits_per_chunk: int = Field(default=2, ge=0)
    credits_per_summary: int = Field(default=5, ge=0)
    #: Seconds one chunk takes when no job has finished yet (for ETAs).
    assumed_seconds_per_chunk: float = Field(default=5.0, gt=0)
