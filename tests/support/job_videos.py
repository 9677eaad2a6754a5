"""Videos with a known face: skimage's astronaut.png, panned and zoomed frame by frame.

OpenCV's default frontal-face cascade finds the astronaut's face at x=177, y=66,
95x95 px (top-left corner) in the original 512x512 photo, so its centre is at
(224.5, 113.5). Every frame here is the photo scaled by ``s`` and shifted by
``(tx, ty)``, so the face's centre in frame ``i`` is ``(s * 224.5 + tx, s * 113.5 + ty)``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.video.stream
import cv2
import numpy as np
from PIL import Image

from tests.support.media_files import real_photo

REPEATABLE_X264 = {
    "preset": "veryfast",
    "crf": "18",
    "x264-params": "mbtree=0:threads=1:lookahead-threads=1:sync-lookahead=0",
}
FACE_CENTRE = (224.5, 113.5)
FACE_SIZE = 95.0


def astronaut() -> np.ndarray:
    return np.asarray(Image.open(real_photo("astronaut")).convert("RGB"))


def transform(i: int, frames: int) -> tuple[float, float, float]:
    """``(scale, tx, ty)`` of frame ``i``: a slow zoom out and a pan to the right."""
    t = i / max(1, frames - 1)
    return 1.0 - 0.2 * t, -40.0 + 60.0 * t, -10.0 + 10.0 * t


def expected_face(i: int, frames: int) -> tuple[float, float, float]:
    """Centre x, centre y and side of the face in frame ``i``."""
    s, tx, ty = transform(i, frames)
    return s * FACE_CENTRE[0] + tx, s * FACE_CENTRE[1] + ty, s * FACE_SIZE


def astronaut_frame(photo: np.ndarray, i: int, frames: int, width: int, height: int) -> np.ndarray:
    s, tx, ty = transform(i, frames)
    matrix = np.array([[s, 0, tx], [0, s, ty]], np.float32)
    return cv2.warpAffine(photo, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def make_astronaut_video(
    path: str | Path, *, frames: int = 60, fps: int = 30, width: int = 480, height: int = 360
) -> Path:
    """An H.264 MP4 of the moving astronaut, the same bytes every time.

    x264's macroblock-tree lookahead made the output (and so, once, what the face
    detector found in a decoded frame) differ from run to run at this frame width;
    without it, and with one thread, the encoding is repeatable.
    """
    path = Path(path)
    photo = astronaut()
    with av.open(str(path), "w", format="mp4") as out:
        stream = cast(
            av.video.stream.VideoStream,
            out.add_stream("libx264", fps, options=REPEATABLE_X264),
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                astronaut_frame(photo, i, frames, width, height), format="rgb24"
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
