"""A video given as a list of still images (JPEG/PNG/WebP frames), as vLLM accepts it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serve_app.errors import InvalidRequest, MediaRejected
from serve_app.media.budget import PixelBudget
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.media.images import load_image
from serve_app.media.limits import MediaLimits
from serve_app.media.resize import resize_rgb, video_target_size
from serve_app.media.sampling import thin


def frames_to_video(
    images: Sequence[bytes], fps: float, budget: PixelBudget, limits: MediaLimits
) -> FrameBatch:
    """Decode ``images`` (taken ``fps`` apart) into one video :class:`FrameBatch`.

    At most ``budget.max_frames`` frames are kept (evenly thinned, first and last
    kept); every frame is resized to the first frame's target size under the video
    budget, and an odd count is padded by repeating the last frame, as sampled videos
    are (Qwen2.5-VL merges frames in pairs).

    Raises:
        InvalidRequest: no frames, or a frame rate that is not positive.
        UnsupportedMedia, MediaTooLarge, MediaRejected: a frame is refused.
    """
    if not images:
        raise InvalidRequest("a video given as frames needs at least one frame")
    if fps <= 0:
        raise InvalidRequest("the frame rate of a video given as frames must be positive")
    cap = max(2, budget.max_frames - budget.max_frames % 2)
    keep = thin(np.arange(len(images)), cap).tolist()
    first = load_image(images[keep[0]], limits)
    height, width = video_target_size(first.shape[0], first.shape[1], len(keep), budget)
    frames = [resize_rgb(first, (height, width))]
    for i in keep[1:]:
        frame = load_image(images[i], limits)
        frames.append(resize_rgb(frame, (height, width)))
    if len(frames) % 2:
        frames.append(frames[-1])
        keep.append(keep[-1])
    try:
        stacked = np.stack(frames)
    except ValueError as exc:  # pragma: no cover - sizes are forced equal above
        raise MediaRejected("the frames could not be stacked") from exc
    return FrameBatch(
        kind=MediaKind.VIDEO,
        frames=stacked,
        frame_indices=tuple(int(i) for i in keep),
        timestamps=tuple(i / fps for i in keep),
        source_fps=float(fps),
        total_frames=len(images),
        duration_s=len(images) / fps,
        extra={"container": "frames"},
        candidate_frames=len(images),
    )
