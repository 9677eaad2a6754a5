"""The results document of a summary job, as stored and as returned (JSON shapes).

Every time is in seconds since the start of the video (not of the clip), rounded to
milliseconds (frame timestamps to microseconds). A chunk's ``frame_indices`` are true
source frame indices (presentation order) and ``timestamps`` their presentation
times: the frames the model saw.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Tokens(TypedDict):
    input: int
    output: int


class SpeechSegment(TypedDict):
    start_s: float
    end_s: float
    text: str


class ChunkResult(TypedDict):
    """One captioned chunk.

    ``effective_fps`` is frames used over the chunk's length; ``translation`` is the
    caption in the job's ``language`` (absent without one). ``transcript``: what is
    said from the chunk's start to the next chunk's start (jobs that transcribe audio),
    and ``audio_skipped`` why nothing could be heard, when so.
    """

    index: int
    start_s: float
    end_s: float
    frame_indices: list[int]
    timestamps: list[float]
    effective_fps: float
    caption: str
    tokens: Tokens
    translation: NotRequired[str]
    transcript: NotRequired[list[SpeechSegment]]
    audio_skipped: NotRequired[str]


class Chapter(TypedDict):
    """A stretch of the clip: chapters are contiguous and cover the clip exactly."""

    start_s: float
    end_s: float
    title: str
    description: str
    title_translation: NotRequired[str]
    description_translation: NotRequired[str]


class Sampling(TypedDict):
    """What the job sampled: the source rate and what the chunks achieved."""

    source_fps: float
    frames_used: int
    effective_fps: float
    chunk_s: float
    overlap_s: float
    frames_per_chunk: int


class Clip(TypedDict):
    start_s: float
    end_s: float


class SummaryResult(TypedDict):
    """The whole document (``GET .../export.json``); partial while the job runs.

    While running, ``chunks`` holds the chunks done so far (in index order) and
    ``chapters``/``summary`` are empty/None.
    """

    job_id: str
    clip: Clip
    sampling: Sampling
    chunks: list[ChunkResult]
    chapters: list[Chapter]
    summary: str | None
    summary_translation: NotRequired[str]
    language: str | None
    tokens: Tokens
