"""Qwen2.5-VL resizing rules (as in qwen-vl-utils ``smart_resize`` and ``fetch_video``).

One visual token covers a 28x28 pixel patch after the 2x2 merge, so both sides are
rounded to multiples of :data:`FACTOR`, keeping the aspect ratio, and the area is
clamped to ``[min_pixels, max_pixels]``. Video frames share a total pixel budget.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from serve_app.errors import InvalidRequest, MediaRejected
from serve_app.media.budget import PixelBudget

#: Side length (pixels) of one visual token: patch 14 x spatial merge 2.
FACTOR = 28
#: Largest aspect ratio Qwen2.5-VL accepts.
MAX_RATIO = 200
#: Video frames are merged in pairs (temporal patch size).
FRAME_FACTOR = 2


def smart_resize(
    height: int, width: int, *, min_pixels: int, max_pixels: int, factor: int = FACTOR
) -> tuple[int, int]:
    """Target ``(height, width)``: multiples of ``factor``, aspect kept, area clamped.

    Raises:
        MediaRejected: the aspect ratio exceeds :data:`MAX_RATIO` or a side is empty.
        InvalidRequest: ``min_pixels > max_pixels``.
    """
    if height <= 0 or width <= 0:
        raise MediaRejected("media has an empty frame")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise MediaRejected(
            f"aspect ratio {max(height, width) / min(height, width):.0f}:1 is too extreme "
            f"(at most {MAX_RATIO}:1)"
        )
    if min_pixels > max_pixels:
        raise InvalidRequest("min_pixels must not exceed max_pixels")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def image_target_size(height: int, width: int, budget: PixelBudget) -> tuple[int, int]:
    """Target ``(height, width)`` of an image under ``budget``."""
    return smart_resize(
        height, width, min_pixels=budget.image_min_pixels, max_pixels=budget.image_max_pixels
    )


def video_frame_max_pixels(budget: PixelBudget, n_frames: int) -> int:
    """Per-frame pixel cap for ``n_frames`` frames sharing ``budget.video_total_pixels``.

    ``max(min(video_max_pixels, total / n * 2), int(video_min_pixels * 1.05))``, as
    in qwen-vl-utils (frames are merged in pairs, hence ``* 2``).
    """
    n = max(1, n_frames)
    share = budget.video_total_pixels / n * FRAME_FACTOR
    return int(max(min(budget.video_max_pixels, share), int(budget.video_min_pixels * 1.05)))


def video_target_size(
    height: int, width: int, n_frames: int, budget: PixelBudget
) -> tuple[int, int]:
    """Target ``(height, width)`` of each of ``n_frames`` video frames under ``budget``."""
    return smart_resize(
        height,
        width,
        min_pixels=budget.video_min_pixels,
        max_pixels=video_frame_max_pixels(budget, n_frames),
    )


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB ``(H, W, 3)`` array to ``size = (height, width)``.

    Uses area averaging when shrinking and bicubic interpolation when growing.
    """
    height, width = size
    if image.shape[0] == height and image.shape[1] == width:
        return image
    shrinking = height * width <= image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    out = cv2.resize(image, (width, height), interpolation=interpolation)
    return np.ascontiguousarray(out)


def estimate_visual_tokens(kind: str, frames: int, height: int, width: int) -> int:
    """Qwen2.5-VL visual tokens for ``frames`` frames of ``height``x``width`` pixels.

    Images: ``frames * (H/28)*(W/28)``; video: ``ceil(frames/2) * (H/28)*(W/28)`` (frames are
    merged in temporal pairs; an odd count is padded). Sides are rounded to whole
    28-pixel cells, as the processor resizes them.
    """
    if frames <= 0 or height <= 0 or width <= 0:
        return 0
    per_frame = max(1, round(height / FACTOR)) * max(1, round(width / FACTOR))
    groups = math.ceil(frames / FRAME_FACTOR) if kind == "video" else frames
    return groups * per_frame
