"""Where a clip's chunks begin and end, and which frames each is captioned from.

Pure functions over a video's frame timestamps (every frame, presentation order, from
:func:`serve_app.media.stream.index_video`), so every chunk reports the true source
frame indices and times its caption comes from, variable frame rates included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from serve_app.errors import InvalidRequest
from serve_app.summaries.spec import SummaryRequest

#: Default frames per chunk when neither ``frames_per_chunk`` nor ``min_fps`` is given.
DEFAULT_FRAMES_PER_CHUNK = 8
_EPS = 1e-6


@dataclass(frozen=True)
class ChunkPlan:
    """One chunk: ``[start_s, end_s)`` of the video and the frames that show it."""

    index: int
    start_s: float
    end_s: float
    frame_indices: tuple[int, ...]
    timestamps: tuple[float, ...]

    @property
    def effective_fps(self) -> float:
        """Frames used per second of the chunk."""
        length = self.end_s - self.start_s
        return len(self.frame_indices) / length if length > 0 else 0.0


@dataclass(frozen=True)
class SummaryPlan:
    """Every chunk of a clip, and what the sampling achieves overall."""

    clip_start: float
    clip_end: float
    chunks: tuple[ChunkPlan, ...]
    frames_per_chunk: int

    @property
    def frames_used(self) -> int:
        """Distinct source frames the chunks use (overlapping chunks share some)."""
        return len({i for chunk in self.chunks for i in chunk.frame_indices})

    @property
    def effective_fps(self) -> float:
        length = self.clip_end - self.clip_start
        return self.frames_used / length if length > 0 else 0.0

    def frames_of(self, chunk_indices: set[int]) -> np.ndarray:
        """Sorted distinct frame indices of the chunks ``chunk_indices`` (to decode)."""
        wanted = {i for c in self.chunks if c.index in chunk_indices for i in c.frame_indices}
        return np.array(sorted(wanted), np.int64)


def frames_per_chunk(request: SummaryRequest, max_frames: int) -> int:
    """Frames each chunk gets: as asked, or enough for ``min_fps``; within the budget.

    Raises:
        InvalidRequest: more than the model's ``max_frames`` per chunk would be needed.
    """
    if request.frames_per_chunk is not None:
        wanted = request.frames_per_chunk
        reason = f"frames_per_chunk {wanted}"
    elif request.min_fps is not None:
        wanted = max(1, math.ceil(request.chunk_s * request.min_fps - _EPS))
        reason = f"min_fps {request.min_fps:g} over {request.chunk_s:g} s chunks ({wanted} frames)"
    else:
        return min(DEFAULT_FRAMES_PER_CHUNK, max_frames)
    if wanted > max_frames:
        raise InvalidRequest(
            f"{reason} exceeds the model's {max_frames} frames per chunk; "
            "use shorter chunks or fewer frames"
        )
    return wanted


def chunk_spans(
    clip_start: float, clip_end: float, chunk_s: float, overlap_s: float
) -> list[tuple[float, float]]:
    """``(start, end)`` of each chunk; the last one ends at ``clip_end``."""
    step = chunk_s - overlap_s
    spans: list[tuple[float, float]] = []
    start = clip_start
    while True:
        end = min(start + chunk_s, clip_end)
        spans.append((start, end))
        if end >= clip_end - _EPS:
            return spans
        start = clip_start + len(spans) * step


def pick_frames(
    timestamps: np.ndarray, start: float, end: float, count: int, last: bool
) -> np.ndarray:
    """Up to ``count`` frames spread evenly over ``[start, end)`` (``]`` for the last).

    Each of ``count`` evenly spaced instants (the centres of equal slices) takes the
    frame nearest to it within the span; duplicates collapse, so a span with fewer
    frames gives fewer. A span holding no frame (a gap in a variable-rate stream)
    takes the one frame nearest to its middle.
    """
    lo = int(np.searchsorted(timestamps, start - _EPS, "left"))
    if last:
        hi = int(np.searchsorted(timestamps, end + _EPS, "right"))
    else:
        hi = int(np.searchsorted(timestamps, end - _EPS, "left"))
    if hi <= lo:
        middle = (start + end) / 2
        return np.array([int(np.argmin(np.abs(timestamps - middle)))], np.int64)
    window = timestamps[lo:hi]
    targets = start + (np.arange(count) + 0.5) * (end - start) / count
    right = np.clip(np.searchsorted(window, targets), 0, len(window) - 1)
    left = np.clip(right - 1, 0, len(window) - 1)
    closer_left = (targets - window[left]) <= (window[right] - targets)
    return np.unique(np.where(closer_left, left, right)).astype(np.int64) + lo


def clip_bounds(request: SummaryRequest, duration_s: float) -> tuple[float, float]:
    """The clip's ``(start, end)`` within a video of ``duration_s`` seconds.

    Raises:
        InvalidRequest: the clip starts at or after the end of the video.
    """
    end = duration_s if request.end_s is None else min(request.end_s, duration_s)
    if request.start_s >= end:
        raise InvalidRequest(
            f"the clip starts at {request.start_s:g} s; the video is {duration_s:.3f} s long"
        )
    return request.start_s, end


def plan_summary(
    timestamps: np.ndarray, duration_s: float, request: SummaryRequest, per_chunk: int
) -> SummaryPlan:
    """The chunks of ``request``'s clip over a video whose frames are at ``timestamps``."""
    clip_start, clip_end = clip_bounds(request, duration_s)
    spans = chunk_spans(clip_start, clip_end, request.chunk_s, request.overlap_s)
    chunks = []
    for index, (start, end) in enumerate(spans):
        picked = pick_frames(timestamps, start, end, per_chunk, last=index == len(spans) - 1)
        chunks.append(
            ChunkPlan(
                index=index,
                start_s=start,
                end_s=end,
                frame_indices=tuple(int(i) for i in picked),
                timestamps=tuple(float(timestamps[i]) for i in picked),
            )
        )
    return SummaryPlan(clip_start, clip_end, tuple(chunks), per_chunk)


def video_duration(timestamps: np.ndarray, probed_s: float, fps: float) -> float:
    """The video's length: the container's, or past the last frame by one frame time."""
    last = float(timestamps[-1]) + (1.0 / fps if fps > 0 else 0.0) if len(timestamps) else 0.0
    return max(probed_s, last)
