"""The one entry point of frame extraction: bytes or a file in, a FrameBatch out.

``FrameExtractor`` calls :func:`extract_frames`; the HTTP ingress calls
:func:`inspect_media` first to refuse bad uploads before any model work is charged.
"""

from __future__ import annotations

from dataclasses import dataclass

from serve_app.errors import MediaTooLarge
from serve_app.media.budget import PixelBudget
from serve_app.media.detect import (
    DetectedType,
    MediaSource,
    check_extension,
    detect_media_type,
    read_head,
    source_size,
)
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.media.images import check_image_pixels, load_image, read_image_info
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import VideoInfo, probe_video
from serve_app.media.resize import image_target_size, resize_rgb
from serve_app.media.sampling import SamplingSpec, sample_video

#: Sampling used for videos when the caller gives none (qwen-vl-utils' default rate).
DEFAULT_SAMPLING = SamplingSpec(fps=2.0)


@dataclass(frozen=True)
class MediaInfo:
    """Validated facts about one upload.

    Attributes:
        kind: image or video.
        format: detected format (``jpeg``, ``png``, ``webp``, ``mp4``, ``mov``,
            ``matroska``, ``webm``).
        width: displayed width (after EXIF orientation or video rotation).
        height: displayed height.
        size_bytes: file size.
        video: probe result for videos, else None.
    """

    kind: MediaKind
    format: str
    width: int
    height: int
    size_bytes: int
    video: VideoInfo | None = None


def _detect(
    source: MediaSource, limits: MediaLimits, filename: str | None
) -> tuple[DetectedType, int]:
    detected = detect_media_type(read_head(source))
    check_extension(filename, detected)
    size = source_size(source)
    cap = limits.max_bytes(detected.kind.value)
    if size > cap:
        raise MediaTooLarge(f"{detected.kind.value} file is {size} bytes; the limit is {cap} bytes")
    return detected, size


def inspect_media(
    source: MediaSource, limits: MediaLimits, *, filename: str | None = None
) -> MediaInfo:
    """Detect, validate and measure ``source`` without decoding it (one video frame at most).

    Args:
        filename: the client's file name, whose extension must fit the content.

    Raises:
        UnsupportedMedia: unknown type, or an extension that does not fit.
        MediaTooLarge: file size, pixel, duration or frame-count limit exceeded.
        MediaRejected: empty, corrupt or truncated media.
    """
    detected, size = _detect(source, limits, filename)
    if detected.kind is MediaKind.IMAGE:
        image = read_image_info(source)
        check_image_pixels(image, limits)
        return MediaInfo(MediaKind.IMAGE, detected.format, image.width, image.height, size)
    video = probe_video(source, limits, container=detected.format)
    return MediaInfo(MediaKind.VIDEO, detected.format, video.width, video.height, size, video)


def extract_frames(
    source: MediaSource,
    spec: SamplingSpec | None,
    budget: PixelBudget,
    limits: MediaLimits,
    *,
    filename: str | None = None,
    known: MediaInfo | None = None,
) -> FrameBatch:
    """Decode ``source`` into model-ready frames.

    Images give one frame resized to the image budget. Videos are probed, sampled by
    ``spec`` (default :data:`DEFAULT_SAMPLING`) with at most
    ``min(spec.max_frames, budget.max_frames)`` frames, and every frame is resized to
    the per-frame video budget for the planned frame count.

    Args:
        known: what :func:`inspect_media` found for this very ``source``; its checks
            are not repeated (the file is decoded, not probed again).

    Raises:
        UnsupportedMedia, MediaTooLarge, MediaRejected: see :func:`inspect_media`;
        MediaRejected also when decoding exceeds ``limits.decode_timeout_s``.
    """
    if known is not None:
        kind, media_format, info = known.kind, known.format, known.video
    else:
        detected, _ = _detect(source, limits, filename)
        kind, media_format, info = detected.kind, detected.format, None
    if kind is MediaKind.IMAGE:
        rgb = load_image(source, limits, min_pixels_hint=budget.image_max_pixels)
        rgb = resize_rgb(rgb, image_target_size(rgb.shape[0], rgb.shape[1], budget))
        return FrameBatch(
            kind=MediaKind.IMAGE,
            frames=rgb[None],
            frame_indices=(0,),
            timestamps=(0.0,),
            extra={"format": media_format},
        )
    if info is None:
        info = probe_video(source, limits, container=media_format)
    spec = spec or DEFAULT_SAMPLING
    if spec.max_frames > budget.max_frames:
        spec = spec.model_copy(update={"max_frames": budget.max_frames})
    return sample_video(source, info, spec, budget, limits)
