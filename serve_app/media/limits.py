"""Resource limits applied to every image and video before and while decoding."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class MediaLimits(BaseModel):
    """Caps that protect CPU replicas from hostile or merely enormous media.

    Defaults admit anything a phone or camera produces (up to 4K video, 40 MP photos,
    three hours of video) and refuse what only wastes resources (8K video, pixel
    bombs). Every limit is checked from headers before any pixel is decoded, except
    :attr:`decode_timeout_s`, which bounds the decode loop itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Largest image, in pixels (width x height) as declared by its header.
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    #: Largest image file.
    max_image_bytes: int = Field(default=50 * MIB, ge=1)
    #: Largest video frame width after rotation (4096 admits DCI 4K, refuses 8K).
    max_video_width: int = Field(default=4096, ge=16)
    #: Largest video frame height after rotation.
    max_video_height: int = Field(default=4096, ge=16)
    #: Longest video.
    max_video_duration_s: float = Field(default=3 * 3600.0, gt=0)
    #: Most frames a source video may have (three hours at 60 fps).
    max_video_frames: int = Field(default=3 * 3600 * 60, ge=1)
    #: Largest video file.
    max_video_bytes: int = Field(default=2048 * MIB, ge=1)
    #: Wall-clock budget for demuxing and decoding one video, in seconds.
    decode_timeout_s: float = Field(default=120.0, gt=0)
    #: Decoder threads per video (0 = one per CPU core).
    decode_threads: int = Field(default=0, ge=0, le=64)

    def max_bytes(self, kind: str) -> int:
        """File size cap for ``kind`` (``image`` or ``video``)."""
        return self.max_image_bytes if kind == "image" else self.max_video_bytes
