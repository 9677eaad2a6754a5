"""Frame sampling: choose frames by interval or by timestamps, decode only what is needed.

Two passes over the file:

1. **Index** (demux only, no decoding): every packet's pts and keyframe flag. This gives
   the exact frame count and every frame's true timestamp (variable frame rate
   included), so the kept frames — thinned to ``max_frames`` — are chosen before
   anything is decoded, and the output array is allocated once at its final size.
2. **Decode**: packets of a GOP (keyframe to keyframe) go to the decoder only if the
   GOP holds a wanted frame, and only until its last wanted frame has come out; the
   rest are skipped unread by the decoder. For H.264, unwanted non-reference frames
   are not decoded either. Decoding is threaded; only kept frames are converted,
   scaled straight to the target size by libswscale, and rotated upright.

Nothing ever seeks, so there is no per-sample seek cost and no seek inaccuracy.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import av
import av.container
import av.video.stream
import numpy as np
from av.video.reformatter import VideoReformatter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from serve_app.errors import InvalidRequest, MediaRejected, MediaTooLarge
from serve_app.media.budget import PixelBudget
from serve_app.media.detect import MediaSource
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import VideoInfo, open_container
from serve_app.media.resize import video_target_size

logger = logging.getLogger(__name__)

SkipFrame = Literal["NONE", "DEFAULT", "NONREF", "BIDIR", "NONINTRA", "NONKEY", "ALL"]

#: Consecutive undecodable packets after which the rest of the stream is given up.
_MAX_CONSECUTIVE_ERRORS = 50


class SamplingSpec(BaseModel):
    """Which frames to take from a video: exactly one of ``interval`` or ``fps``.

    Attributes:
        interval: every ``interval``-th frame (indices 0, k, 2k, ...).
        fps: frames nearest to the times 0, 1/fps, 2/fps, ... (true timestamps).
        max_frames: at most this many frames (rounded down to even); extra candidates
            are thinned evenly, keeping the first and the last.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: int | None = Field(default=None, ge=1)
    fps: float | None = Field(default=None, gt=0, le=240)
    max_frames: int = Field(default=32, ge=2, le=4096)

    @model_validator(mode="after")
    def _exactly_one(self) -> SamplingSpec:
        if (self.interval is None) == (self.fps is None):
            raise ValueError("give exactly one of interval or fps")
        return self


@dataclass(frozen=True)
class StreamIndex:
    """Packets of a video stream as demuxed (one packet per frame).

    Attributes:
        pts: presentation timestamps in decode order (stream time base).
        keyframe: keyframe flag of each packet, in decode order.
        time_base: seconds per pts tick.
        start_pts: pts of the stream's start (timestamps are relative to it).
    """

    pts: np.ndarray
    keyframe: np.ndarray
    time_base: float
    start_pts: int

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    def presentation_pts(self) -> np.ndarray:
        return np.sort(self.pts)

    def timestamps(self) -> np.ndarray:
        """Seconds since the stream start of every frame, in presentation order."""
        return (self.presentation_pts() - self.start_pts) * self.time_base


def thin(candidates: np.ndarray, cap: int) -> np.ndarray:
    """At most ``cap`` evenly spread items of ``candidates``, first and last kept."""
    if len(candidates) <= cap:
        return candidates
    picks = np.floor(np.linspace(0, len(candidates) - 1, cap) + 0.5).astype(np.int64)
    return candidates[np.unique(picks)]


def frame_cap(spec: SamplingSpec) -> int:
    """Largest even number of frames ``spec`` allows."""
    return max(2, spec.max_frames - spec.max_frames % 2)


def select_frames(timestamps: np.ndarray, spec: SamplingSpec) -> np.ndarray:
    """Presentation indices of the frames to keep, sorted, unique, within the cap.

    Args:
        timestamps: every frame's time in seconds, in presentation order.
    """
    return thin(candidate_frames(timestamps, spec), frame_cap(spec))


def candidate_frames(timestamps: np.ndarray, spec: SamplingSpec) -> np.ndarray:
    """Presentation indices the interval or fps asks for, before the frame cap."""
    n = len(timestamps)
    if n == 0:
        return np.zeros(0, np.int64)
    if spec.interval is not None:
        candidates = np.arange(0, n, spec.interval, dtype=np.int64)
    else:
        assert spec.fps is not None
        targets = np.arange(0.0, float(timestamps[-1]) + 1e-9, 1.0 / spec.fps)
        right = np.clip(np.searchsorted(timestamps, targets), 0, n - 1)
        left = np.clip(right - 1, 0, n - 1)
        closer_left = (targets - timestamps[left]) < (timestamps[right] - targets)
        candidates = np.unique(np.where(closer_left, left, right)).astype(np.int64)
    return candidates


def _packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    deadline: float,
) -> Iterator[av.Packet]:
    """Non-empty packets of ``stream``; stops quietly where the data is cut off."""
    demuxer = container.demux(stream)
    while True:
        if time.monotonic() > deadline:
            raise MediaRejected("decoding took too long")
        try:
            packet = next(demuxer)
        except StopIteration:
            return
        except (av.error.FFmpegError, OSError, EOFError) as exc:
            logger.warning("video data ends early or is corrupt: %s", exc)
            return
        if packet.size and not packet.is_discard:
            yield packet


def index_stream(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    limits: MediaLimits,
    deadline: float,
) -> StreamIndex:
    """Demux ``stream`` (no decoding) and record each packet's pts and keyframe flag."""
    pts = array("q")  # compact: a three-hour video has ~650k packets
    keys = bytearray()
    for packet in _packets(container, stream, deadline):
        value = packet.pts if packet.pts is not None else packet.dts
        if value is None:
            value = pts[-1] + 1 if pts else 0
        pts.append(value)
        keys.append(packet.is_keyframe)
        if len(pts) > limits.max_video_frames:
            raise MediaTooLarge(f"video has more than {limits.max_video_frames} frames")
    if not pts:
        raise MediaRejected("video has no frames")
    arr = np.frombuffer(pts, np.int64).copy()
    start = stream.start_time if stream.start_time is not None else int(arr.min())
    start = min(start, int(arr.min()))
    keyframe = np.frombuffer(bytes(keys), np.uint8).astype(bool)
    return StreamIndex(arr, keyframe, float(stream.time_base or 0.0), start)


class _Collector:
    """Receives decoded frames; keeps, scales and rotates the wanted ones in place."""

    def __init__(self, want_pts: np.ndarray, size: tuple[int, int], rotation: int) -> None:
        n = len(want_pts)
        self.slot = {int(p): i for i, p in enumerate(want_pts)}
        self.filled = np.zeros(n, bool)
        height, width = size
        self.rotation = rotation
        self.stored = (width, height) if rotation in (90, 270) else (height, width)
        # One spare row when n is odd, so the final even count needs no copy.
        self.frames = np.empty((n + n % 2, height, width, 3), np.uint8)
        # One scaler for all frames: a new one per frame costs more than the scaling.
        self.scaler = VideoReformatter()

    def take(self, frame: av.VideoFrame) -> int | None:
        """Store ``frame`` if wanted and new; return its pts when stored."""
        if frame.pts is None:
            return None
        i = self.slot.get(frame.pts)
        if i is None or self.filled[i]:
            return None
        h, w = self.stored
        interpolation = "AREA" if h * w <= frame.width * frame.height else "BICUBIC"
        scaled = self.scaler.reformat(
            frame, width=w, height=h, format="rgb24", interpolation=interpolation
        )
        rgb = scaled.to_ndarray()
        if self.rotation:
            rgb = np.rot90(rgb, k=-(self.rotation // 90))
        self.frames[i] = rgb
        self.filled[i] = True
        return int(frame.pts)


def _decode_wanted(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    index: StreamIndex,
    collector: _Collector,
    limits: MediaLimits,
    deadline: float,
) -> None:
    """Pass 2: feed only the GOPs (and GOP heads) that hold wanted frames."""
    gop = np.maximum(np.cumsum(index.keyframe) - 1, 0)
    first_keys = index.pts[np.flatnonzero(index.keyframe)]  # keyframe pts by GOP number
    order = np.argsort(index.pts, kind="stable")
    want = np.fromiter(collector.slot, np.int64, len(collector.slot))
    want_gops = gop[order[np.searchsorted(index.pts[order], want)]]
    remaining: dict[int, int] = {}
    whole: set[int] = set()  # GOPs feeding a wanted leading picture of the next GOP
    gop_of_pts: dict[int, int] = {}
    for p, g in zip(want.tolist(), want_gops.tolist(), strict=True):
        gop_of_pts[p] = g
        remaining[g] = remaining.get(g, 0) + 1
        if 0 < g < len(first_keys) and p < first_keys[g]:
            whole.add(g - 1)
    codec = stream.codec_context
    codec.thread_type = "AUTO"
    codec.thread_count = limits.decode_threads
    # H.264 frames with nal_ref_idc == 0 are never referenced, and FFmpeg's decoder reads
    # skip_frame when each packet is submitted, so unwanted ones can go undecoded
    # (about a third less work on typical x264 streams). Other decoders either ignore it,
    # apply it at output time, or have sub-layer subtleties: leave them alone.
    skip_nonref = codec.name == "h264"
    left, errors = len(collector.slot), 0

    def receive(frames: list[av.VideoFrame]) -> None:
        nonlocal left
        for frame in frames:
            got = collector.take(frame)
            if got is not None:
                remaining[gop_of_pts[got]] -= 1
                left -= 1

    for pos, packet in enumerate(_packets(container, stream, deadline)):
        g = int(gop[min(pos, len(gop) - 1)])
        if remaining.get(g, 0) <= 0 and g not in whole:
            continue  # no wanted frame (left) in this GOP: skip without decoding
        if skip_nonref:
            skip: SkipFrame = "DEFAULT" if packet.pts in collector.slot else "NONREF"
            if skip != codec.skip_frame:
                codec.skip_frame = skip
        try:
            receive(stream.decode(packet))
            errors = 0
        except (av.error.FFmpegError, ValueError) as exc:
            errors += 1
            if errors >= _MAX_CONSECUTIVE_ERRORS:
                logger.warning("giving up on a video after %d decode errors: %s", errors, exc)
                break
        if left == 0:
            return
    try:
        receive(stream.decode(None))
    except (av.error.FFmpegError, ValueError) as exc:
        logger.warning("video decoder failed while draining: %s", exc)


def sample_video(
    source: MediaSource,
    info: VideoInfo,
    spec: SamplingSpec,
    size: tuple[int, int] | PixelBudget,
    limits: MediaLimits,
) -> FrameBatch:
    """Decode the frames ``spec`` selects, resized and upright, as a video FrameBatch.

    Args:
        info: result of :func:`~serve_app.media.probe.probe_video` for ``source``.
        size: output ``(height, width)`` of every frame (upright), or a pixel budget
            from which it is computed for the planned number of frames.

    Returns:
        An even number of frames (the last one repeated when needed) with their true
        presentation indices and timestamps (seconds since the stream start).

    Raises:
        MediaRejected: nothing decodable, or ``limits.decode_timeout_s`` exceeded.
        MediaTooLarge: more frames than ``limits.max_video_frames``.
    """
    deadline = time.monotonic() + limits.decode_timeout_s
    with open_container(source, info.container) as (container, stream):
        index = index_stream(container, stream, limits, deadline)
    expected = info.frame_count if info.frame_count_exact else 0.9 * info.frame_count
    if index.frame_count < expected:
        logger.warning(
            "video looks truncated: %d of %d frames present", index.frame_count, info.frame_count
        )
    timestamps = index.timestamps()
    candidates = candidate_frames(timestamps, spec)
    chosen = thin(candidates, frame_cap(spec))
    planned = len(chosen) + len(chosen) % 2
    if isinstance(size, PixelBudget):
        size = video_target_size(info.height, info.width, planned, size)
    if size[0] < 1 or size[1] < 1:
        raise InvalidRequest("target frame size must be positive")
    want_pts = index.presentation_pts()[chosen]
    collector = _Collector(want_pts, size, info.rotation)
    with open_container(source, info.container) as (container, stream):
        _decode_wanted(container, stream, index, collector, limits, deadline)

    got = np.flatnonzero(collector.filled)
    if len(got) == 0:
        raise MediaRejected("no video frame could be decoded")
    if len(got) < len(chosen):
        logger.warning("decoded %d of %d wanted video frames", len(got), len(chosen))
        frames = collector.frames[np.append(got, got[-1]) if len(got) % 2 else got]
    else:
        frames = collector.frames
        if len(got) % 2:
            frames[-1] = frames[-2]
    indices = [int(i) for i in chosen[got]]
    times = [float(t) for t in timestamps[chosen[got]]]
    if len(indices) % 2:
        indices.append(indices[-1])
        times.append(times[-1])
    return FrameBatch(
        kind=MediaKind.VIDEO,
        frames=frames,
        frame_indices=tuple(indices),
        timestamps=tuple(times),
        source_fps=info.fps,
        total_frames=index.frame_count,
        duration_s=info.duration_s,
        extra={"codec": info.codec, "container": info.container, "rotation": str(info.rotation)},
        candidate_frames=len(candidates),
    )
