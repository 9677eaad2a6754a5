"""Value objects that carry decoded pixels between stages.

A :class:`FrameBatch` is what ``FrameExtractor`` returns and what engines consume. It
holds RGB ``uint8`` frames as one ``(T, H, W, 3)`` numpy array (so it moves through
Ray's object store zero-copy) plus the metadata a video model needs to place each
frame in time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True)
class FrameBatch:
    """Decoded, sampled and resized frames from one image or one video.

    Attributes:
        kind: ``image`` (T == 1) or ``video``.
        frames: RGB uint8 array of shape ``(T, H, W, 3)``.
        frame_indices: true source frame index of each frame (0 for an image).
        timestamps: presentation time of each frame in seconds (0.0 for an image).
        source_fps: the video's average frame rate (0.0 for an image).
        total_frames: the source's frame count (1 for an image).
        duration_s: the source's duration in seconds (0.0 for an image).
        candidate_frames: frames the requested interval or fps picked before the frame
            budget thinned them (0 when not known, e.g. for an image).
    """

    kind: MediaKind
    frames: np.ndarray
    frame_indices: tuple[int, ...]
    timestamps: tuple[float, ...]
    source_fps: float = 0.0
    total_frames: int = 1
    duration_s: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)
    candidate_frames: int = 0

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"frames must be (T, H, W, 3), got {self.frames.shape}")
        if self.frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {self.frames.dtype}")
        n = self.frames.shape[0]
        if len(self.frame_indices) != n or len(self.timestamps) != n:
            raise ValueError("frame_indices and timestamps must have one entry per frame")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])
