"""Still images: header inspection and safe decoding to RGB arrays.

The pixel count is read from the header and checked before any pixel is decoded, and
Pillow's decompression-bomb warning is raised as an error, so a small file that claims
a huge canvas is refused without allocating it.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from serve_app.errors import MediaRejected, MediaTooLarge, UnsupportedMedia
from serve_app.media.detect import MediaSource, detect_media_type, open_source, read_head
from serve_app.media.frames import MediaKind
from serve_app.media.limits import MediaLimits

_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
#: EXIF orientations that swap width and height when applied.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)


@dataclass(frozen=True)
class ImageInfo:
    """Header facts about an image.

    Attributes:
        width: displayed width in pixels (after the EXIF orientation is applied).
        height: displayed height in pixels.
        format: ``jpeg``, ``png`` or ``webp``.
        orientation: EXIF orientation tag (1 when absent).
    """

    width: int
    height: int
    format: str
    orientation: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


@contextmanager
def _open_image(source: MediaSource) -> Iterator[tuple[Image.Image, str]]:
    """Open ``source`` lazily with only the Pillow plugin its magic bytes name."""
    detected = detect_media_type(read_head(source))
    if detected.kind is not MediaKind.IMAGE:
        raise UnsupportedMedia(f"expected an image, got a {detected.format} video")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with (
                open_source(source) as f,
                Image.open(f, formats=[_PIL_FORMATS[detected.format]]) as img,
            ):
                yield img, detected.format
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaTooLarge("image has too many pixels (decompression bomb)") from exc
        except _DECODE_ERRORS as exc:
            raise MediaRejected(f"image is corrupt or truncated ({detected.format})") from exc


def _orientation(img: Image.Image) -> int:
    """EXIF orientation from the metadata read at open (``getexif`` may decode a PNG)."""
    raw = img.info.get("exif")
    if not isinstance(raw, bytes) or not raw:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw)
        value = exif.get(0x0112, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _info(img: Image.Image, fmt: str) -> ImageInfo:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise MediaRejected("image has no pixels")
    orientation = _orientation(img)
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(width=width, height=height, format=fmt, orientation=orientation)


def check_image_pixels(info: ImageInfo, limits: MediaLimits) -> None:
    """Raise MediaTooLarge when ``info`` exceeds ``limits.max_image_pixels``."""
    if info.pixels > limits.max_image_pixels:
        raise MediaTooLarge(
            f"image is {info.width}x{info.height} pixels; the limit is "
            f"{limits.max_image_pixels} pixels"
        )


def read_image_info(source: MediaSource) -> ImageInfo:
    """Read an image's size, format and orientation from its header, decoding no pixels.

    Raises:
        UnsupportedMedia: not a JPEG, PNG or WebP image.
        MediaTooLarge: Pillow's decompression-bomb guard fired.
        MediaRejected: the header is corrupt.
    """
    with _open_image(source) as (img, fmt):
        return _info(img, fmt)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """RGB uint8 array of ``img``; transparency is composited onto white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8)


def load_image(
    source: MediaSource, limits: MediaLimits, *, min_pixels_hint: int | None = None
) -> np.ndarray:
    """Decode an image to an upright RGB ``uint8`` array of shape ``(H, W, 3)``.

    The pixel limit is enforced from the header before decoding; the EXIF orientation
    is applied; alpha is composited onto white.

    Args:
        min_pixels_hint: when the caller will shrink the image to about this many
            pixels, JPEGs may be decoded at a reduced DCT scale that still keeps at
            least four times as many pixels (faster, less memory).

    Raises:
        UnsupportedMedia: not a JPEG, PNG or WebP image.
        MediaTooLarge: more than ``limits.max_image_pixels`` pixels.
        MediaRejected: corrupt or truncated data.
    """
    with _open_image(source) as (img, fmt):
        info = _info(img, fmt)
        check_image_pixels(info, limits)
        try:
            if min_pixels_hint and fmt == "jpeg" and info.pixels > 16 * min_pixels_hint:
                scale = (4 * min_pixels_hint / info.pixels) ** 0.5
                img.draft("RGB", (max(1, int(img.width * scale)), max(1, int(img.height * scale))))
            img.load()
            upright = ImageOps.exif_transpose(img) if info.orientation != 1 else img
            return _to_rgb(upright)
        except _DECODE_ERRORS as exc:
            raise MediaRejected(f"image is corrupt or truncated ({fmt})") from exc
