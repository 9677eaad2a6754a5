"""Frames of a whole video at a fixed rate, decoded once and yielded in batches.

Batch jobs walk every second of a video, possibly hours of it, so unlike
:func:`~serve_app.media.sampling.sample_video` nothing is thinned to a frame cap and
frames are never all held at once: pass 1 indexes the packets (demux only) and picks
the frames nearest to ``0, 1/fps, 2/fps, ...`` by their true timestamps; pass 2
decodes the stream front to back (never seeking), converts only the picked frames and
yields them ``batch_frames`` at a time. H.264 frames that nobody references and
nobody wants are not decoded at all.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from serve_app.errors import MediaRejected
from serve_app.media.detect import MediaSource
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import VideoInfo, open_container
from serve_app.media.sampling import index_stream

_MAX_CONSECUTIVE_ERRORS = 50


@dataclass(frozen=True)
class FramePlan:
    """Which frames a pass over the video yields.

    Attributes:
        frame_indices: presentation index of each picked frame (ascending).
        timestamps: its time in seconds since the stream start.
        pts: its presentation timestamp (stream time base).
        size: ``(height, width)`` of the yielded frames (upright).
    """

    frame_indices: tuple[int, ...]
    timestamps: tuple[float, ...]
    pts: tuple[int, ...]
    size: tuple[int, int]

    @property
    def count(self) -> int:
        return len(self.frame_indices)


@dataclass(frozen=True)
class FrameChunk:
    """A batch of consecutive picked frames, RGB ``(T, H, W, 3)``."""

    frames: np.ndarray
    frame_indices: tuple[int, ...]
    timestamps: tuple[float, ...]


def _demux(container: Any, stream: Any) -> Iterator[av.Packet]:
    """Packets of ``stream``; stops quietly where the data is cut off or corrupt."""
    demuxer = container.demux(stream)
    while True:
        try:
            packet = next(demuxer)
        except StopIteration:
            return
        except (av.error.FFmpegError, OSError, EOFError):
            return
        yield packet


def frames_at_rate(timestamps: np.ndarray, fps: float) -> np.ndarray:
    """Indices of the frames nearest to ``0, 1/fps, 2/fps, ...`` (sorted, unique)."""
    n = len(timestamps)
    if n == 0:
        return np.zeros(0, np.int64)
    targets = np.arange(0.0, float(timestamps[-1]) + 1e-9, 1.0 / fps)
    right = np.clip(np.searchsorted(timestamps, targets), 0, n - 1)
    left = np.clip(right - 1, 0, n - 1)
    closer_left = (targets - timestamps[left]) < (timestamps[right] - targets)
    return np.unique(np.where(closer_left, left, right)).astype(np.int64)


def output_size(info: VideoInfo, max_side: int) -> tuple[int, int]:
    """Upright ``(height, width)``, scaled down to ``max_side`` (0: original size)."""
    height, width = info.height, info.width
    longest = max(height, width)
    if max_side <= 0 or longest <= max_side:
        return height, width
    factor = max_side / longest
    return max(2, round(height * factor) // 2 * 2), max(2, round(width * factor) // 2 * 2)


@dataclass(frozen=True)
class VideoTimeline:
    """Every frame of a video stream, in presentation order (from the demuxer alone).

    Attributes:
        timestamps: seconds since the stream start (variable frame rate included).
        pts: presentation timestamps (stream time base), as :func:`iter_frames` needs.
    """

    timestamps: np.ndarray
    pts: np.ndarray

    @property
    def frame_count(self) -> int:
        return len(self.timestamps)

    def plan(self, chosen: np.ndarray, size: tuple[int, int]) -> FramePlan:
        """A :class:`FramePlan` of the frames at presentation indices ``chosen``."""
        chosen = np.asarray(chosen, np.int64)
        return FramePlan(
            frame_indices=tuple(int(i) for i in chosen),
            timestamps=tuple(float(t) for t in self.timestamps[chosen]),
            pts=tuple(int(p) for p in self.pts[chosen]),
            size=size,
        )


def index_video(source: MediaSource, info: VideoInfo, limits: MediaLimits) -> VideoTimeline:
    """Demux the whole stream (no decoding) into its :class:`VideoTimeline`.

    Raises:
        MediaRejected: no frames, or ``limits.decode_timeout_s`` exceeded.
        MediaTooLarge: more frames than ``limits.max_video_frames``.
    """
    deadline = time.monotonic() + limits.decode_timeout_s
    with open_container(source, info.container) as (container, stream):
        index = index_stream(container, stream, limits, deadline)
    return VideoTimeline(timestamps=index.timestamps(), pts=index.presentation_pts())


def plan_frames(
    source: MediaSource, info: VideoInfo, fps: float, limits: MediaLimits, max_side: int = 0
) -> FramePlan:
    """Pass 1: index the stream and pick the frames at ``fps``.

    Raises:
        MediaRejected: no frames, or ``limits.decode_timeout_s`` exceeded.
        MediaTooLarge: more frames than ``limits.max_video_frames``.
    """
    timeline = index_video(source, info, limits)
    chosen = frames_at_rate(timeline.timestamps, fps)
    return timeline.plan(chosen, output_size(info, max_side))


def iter_frames(
    source: MediaSource,
    info: VideoInfo,
    plan: FramePlan,
    batch_frames: int,
    limits: MediaLimits,
    *,
    start: int = 0,
    seek_pts: int | None = None,
) -> Iterator[FrameChunk]:
    """Pass 2: decode front to back and yield the planned frames in batches.

    Args:
        start: skip the first ``start`` planned frames (they are not converted).
        seek_pts: first seek to the keyframe at or before this timestamp (stream time
            base; pass a keyframe's pts from the stream index) and decode from there.
            Where the container cannot seek, or lands past a planned frame, that frame
            is not yielded: callers that seek retry without it.

    A frame the decoder never produces (damaged data) is left out; callers compare
    the yielded indices with the plan. Raises MediaRejected past the time limit.
    """
    deadline = time.monotonic() + limits.decode_timeout_s
    slot = {p: i for i, p in enumerate(plan.pts) if i >= start}
    height, width = plan.size
    stored = (width, height) if info.rotation in (90, 270) else (height, width)
    scaler = VideoReformatter()
    pending: list[int] = []
    buffer = np.empty((batch_frames, height, width, 3), np.uint8)

    def flush() -> FrameChunk:
        chunk = FrameChunk(
            frames=buffer[: len(pending)].copy(),
            frame_indices=tuple(plan.frame_indices[i] for i in pending),
            timestamps=tuple(plan.timestamps[i] for i in pending),
        )
        pending.clear()
        return chunk

    def take(frame: av.VideoFrame) -> bool:
        i = slot.pop(frame.pts, None) if frame.pts is not None else None
        if i is None:
            return False
        rgb = scaler.reformat(
            frame, width=stored[1], height=stored[0], format="rgb24", interpolation="AREA"
        ).to_ndarray()
        if info.rotation:
            rgb = np.rot90(rgb, k=-(info.rotation // 90))
        buffer[len(pending)] = rgb
        pending.append(i)
        return len(pending) == batch_frames

    with open_container(source, info.container) as (container, stream):
        codec = stream.codec_context
        codec.thread_type = "AUTO"
        codec.thread_count = limits.decode_threads
        skip_nonref = codec.name == "h264"
        if seek_pts is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):
                container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
        errors = 0
        for packet in _demux(container, stream):
            if not slot:
                break
            if time.monotonic() > deadline:
                raise MediaRejected("decoding took too long")
            if packet.size == 0:
                continue
            if skip_nonref:
                wanted: Any = "DEFAULT" if packet.pts in slot else "NONREF"
                if codec.skip_frame != wanted:
                    codec.skip_frame = wanted
            try:
                decoded = stream.decode(packet)
                errors = 0
            except (av.error.FFmpegError, ValueError):
                errors += 1
                if errors >= _MAX_CONSECUTIVE_ERRORS:
                    break
                continue
            for frame in decoded:
                if take(frame):
                    yield flush()
        if slot:
            try:
                for frame in stream.decode(None):
                    if take(frame):
                        yield flush()
            except (av.error.FFmpegError, ValueError):
                pass
    if pending:
        yield flush()
