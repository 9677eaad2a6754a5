"""Video probing: codec, size, frame rate, duration, frame count and rotation.

Probing reads container headers and decodes at most the first frame (to prove the
stream decodes and to read its display matrix). Only when the headers give no duration
(e.g. WebM recorded by a browser) are the packets scanned, without decoding. Every
loop is bounded by ``MediaLimits.decode_timeout_s`` and the frame cap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import av
import av.container
import av.video.stream

from serve_app.errors import MediaRejected, MediaTooLarge, UnsupportedMedia
from serve_app.media.detect import DEMUXERS, MediaSource, detect_media_type, open_source, read_head
from serve_app.media.frames import MediaKind
from serve_app.media.limits import MediaLimits

#: Packets read while looking for the first decodable frame before giving up.
_FIRST_FRAME_PACKETS = 600


@dataclass(frozen=True)
class VideoInfo:
    """What a video's headers say about its main video stream.

    Attributes:
        codec: codec name (``h264``, ``hevc``, ``vp9``, ``av1``...).
        width: displayed width, after rotation.
        height: displayed height, after rotation.
        fps: average frame rate.
        frame_count: frames in the stream; estimated from ``duration_s * fps`` when
            the container does not store it (see ``frame_count_exact``).
        duration_s: stream duration in seconds.
        rotation: clockwise rotation (0, 90, 180, 270) that makes stored frames upright.
        container: detected container format (``mp4``, ``mov``, ``matroska``, ``webm``).
        frame_count_exact: whether ``frame_count`` came from the container.
    """

    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    rotation: int
    container: str
    frame_count_exact: bool = True

    @property
    def stored_size(self) -> tuple[int, int]:
        """``(height, width)`` of frames as decoded, before rotation."""
        if self.rotation in (90, 270):
            return self.width, self.height
        return self.height, self.width


@contextmanager
def open_container(
    source: MediaSource, container: str | None = None
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """Open ``source`` with the demuxer of its detected format; yield its video stream.

    FFmpeg reads through a Python file object, so no FFmpeg protocol (file, http,
    concat...) is ever reachable from the media's content.

    Raises:
        UnsupportedMedia: not a video format we accept.
        MediaRejected: empty, corrupt or truncated container, or no video stream.
    """
    if container is None:
        detected = detect_media_type(read_head(source))
        if detected.kind is not MediaKind.VIDEO:
            raise UnsupportedMedia(f"expected a video, got a {detected.format} image")
        container = detected.format
    with open_source(source) as f:
        try:
            handle = av.open(f, mode="r", format=DEMUXERS[container], buffer_size=1 << 16)
        except (av.error.FFmpegError, ValueError, OSError, EOFError) as exc:
            raise MediaRejected(f"video container ({container}) is corrupt or truncated") from exc
        with handle:
            yield handle, _video_stream(handle)


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    try:
        best = container.streams.best("video")
    except (av.error.FFmpegError, ValueError):  # pragma: no cover - defensive
        best = None
    if isinstance(best, av.video.stream.VideoStream):
        return best
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaRejected("file has no video stream")


def _rotation_cw(ccw_degrees: float) -> int:
    """Clockwise display rotation (0/90/180/270) from PyAV's counter-clockwise angle."""
    return (-round(ccw_degrees / 90) * 90) % 360


def _first_frame_rotation(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    deadline: float,
) -> tuple[int, int, int]:
    """Decode the first frame; return ``(rotation_cw, stored_width, stored_height)``."""
    try:
        for n, packet in enumerate(container.demux(stream)):
            if time.monotonic() > deadline:
                raise MediaRejected("video probing took too long")
            if n >= _FIRST_FRAME_PACKETS:
                break
            try:
                frames = stream.decode(packet)
            except av.error.InvalidDataError:
                continue  # a damaged packet; a later one may decode
            except (av.error.FFmpegError, ValueError) as exc:
                raise MediaRejected("video codec is not supported or cannot be decoded") from exc
            if frames:
                frame = frames[0]
                return _rotation_cw(frame.rotation), frame.width, frame.height
    except (av.error.FFmpegError, OSError, EOFError) as exc:
        raise MediaRejected("video stream is corrupt or truncated") from exc
    raise MediaRejected("video stream could not be decoded")


def _scan_packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    limits: MediaLimits,
    deadline: float,
) -> tuple[int, float]:
    """Count packets and measure the pts span (seconds) without decoding."""
    count, first, last = 0, math.inf, -math.inf
    tb = float(stream.time_base or 0)
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            count += 1
            if count > limits.max_video_frames:
                raise MediaTooLarge(f"video has more than {limits.max_video_frames} frames")
            if count % 256 == 0 and time.monotonic() > deadline:
                raise MediaRejected("video probing took too long")
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is not None:
                first, last = min(first, pts * tb), max(last, pts * tb)
    except (av.error.FFmpegError, OSError, EOFError):
        pass  # a truncated tail still tells us what came before it
    span = last - first if count > 1 and last > first else 0.0
    return count, span * count / (count - 1) if count > 1 else span


def probe_video(
    source: MediaSource, limits: MediaLimits, *, container: str | None = None
) -> VideoInfo:
    """Read a video's facts from its headers (and first frame) and enforce ``limits``.

    Args:
        container: detected format, when the caller already ran detection.

    Raises:
        UnsupportedMedia: not a video format we accept.
        MediaTooLarge: frame size, duration or frame count beyond ``limits``.
        MediaRejected: empty, corrupt, truncated, undecodable or without video.
    """
    deadline = time.monotonic() + limits.decode_timeout_s
    with open_container(source, container) as (handle, stream):
        fmt = container or _format_of(source)
        try:
            codec = stream.codec_context.codec.canonical_name
            width, height = stream.codec_context.width, stream.codec_context.height
        except (av.error.FFmpegError, ValueError, AttributeError) as exc:
            raise MediaRejected("video codec is not supported") from exc
        if width <= 0 or height <= 0:
            raise MediaRejected("video stream has no frame size")
        _check_size(width, height, limits, either_orientation=True)

        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration = _header_duration(handle, stream)
        frame_count, exact = int(stream.frames or 0), bool(stream.frames)
        if duration <= 0 or fps <= 0:
            frame_count, duration = _scan_packets(handle, stream, limits, deadline)
            exact = True
            if fps <= 0 and duration > 0:
                fps = frame_count / duration
            try:
                handle.seek(0)
            except (av.error.FFmpegError, OSError) as exc:
                raise MediaRejected("video container is corrupt (cannot rewind)") from exc
        if not exact:
            frame_count = max(1, round(duration * fps))
        if duration <= 0 or fps <= 0 or frame_count <= 0:
            raise MediaRejected("video has no frames")
        if duration > limits.max_video_duration_s:
            raise MediaTooLarge(
                f"video is {duration:.0f} s long; the limit is {limits.max_video_duration_s:.0f} s"
            )
        if frame_count > limits.max_video_frames:
            raise MediaTooLarge(
                f"video has {frame_count} frames; the limit is {limits.max_video_frames}"
            )
        rotation, width, height = _first_frame_rotation(handle, stream, deadline)

    if rotation in (90, 270):
        width, height = height, width
    _check_size(width, height, limits, either_orientation=False)
    return VideoInfo(
        codec=codec,
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration_s=duration,
        rotation=rotation,
        container=fmt,
        frame_count_exact=exact,
    )


def _format_of(source: MediaSource) -> str:
    return detect_media_type(read_head(source)).format


def _header_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _check_size(width: int, height: int, limits: MediaLimits, *, either_orientation: bool) -> None:
    fits = width <= limits.max_video_width and height <= limits.max_video_height
    if either_orientation:
        fits = fits or (height <= limits.max_video_width and width <= limits.max_video_height)
    if not fits:
        raise MediaTooLarge(
            f"video frames are {width}x{height}; the limit is "
            f"{limits.max_video_width}x{limits.max_video_height}"
        )
