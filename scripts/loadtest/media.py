"""The media the load test sends, made in memory: a JPEG, a PNG and a short H.264 MP4.

Plain synthetic pictures (gradients and moving shapes): the tiny model's text is
meaningless anyway, and nothing here needs a download or the test helpers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class MediaFile:
    """One file as a multipart part: its name, bytes and content type."""

    name: str
    data: bytes
    content_type: str

    def part(self) -> tuple[str, bytes, str]:
        return (self.name, self.data, self.content_type)


@dataclass(frozen=True)
class MediaSet:
    jpeg: MediaFile
    png: MediaFile
    video: MediaFile

    @property
    def images(self) -> tuple[MediaFile, MediaFile]:
        return (self.jpeg, self.png)


def picture(width: int, height: int, shift: int = 0) -> np.ndarray:
    """An RGB gradient with a red and a blue block; ``shift`` moves the blocks."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack(
        [(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), np.full_like(x, 90)],
        axis=-1,
    ).astype(np.uint8)
    bw, bh = max(1, width // 4), max(1, height // 4)
    left = (shift * 3) % max(1, width - bw)
    img[bh : 2 * bh, left : left + bw] = (220, 30, 30)
    img[2 * bh : 3 * bh, width - bw - left : width - left] = (30, 30, 220)
    return img


def encode_image(width: int, height: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture(width, height)).save(buffer, format=fmt)
    return buffer.getvalue()


def encode_video(width: int = 320, height: int = 240, fps: int = 30, frames: int = 60) -> bytes:
    """An H.264 MP4 (``frames / fps`` seconds) of blocks sliding over a gradient."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", fps, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(width, height, i), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def make_media() -> MediaSet:
    """A 320x240 JPEG, a 256x192 PNG and a 2 s 320x240 30 fps MP4."""
    return MediaSet(
        jpeg=MediaFile("photo.jpg", encode_image(320, 240, "JPEG"), "image/jpeg"),
        png=MediaFile("drawing.png", encode_image(256, 192, "PNG"), "image/png"),
        video=MediaFile("clip.mp4", encode_video(), "video/mp4"),
    )
