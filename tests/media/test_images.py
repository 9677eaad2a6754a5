"""Image header inspection and safe decoding."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serve_app.errors import MediaRejected, MediaTooLarge, UnsupportedMedia
from serve_app.media.images import load_image, read_image_info
from serve_app.media.limits import MediaLimits
from tests.media.conftest import Clips
from tests.support.media_files import (
    make_image,
    make_png_header_bomb,
    real_photo,
    truncate_file,
)

RED, BLUE = (220, 20, 20), (20, 20, 220)


def _near(pixel: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - colour) <= tol))


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_info_and_pixels(tmp_path: Path, fmt: str) -> None:
    path = make_image(tmp_path / f"x.{fmt}", fmt, width=64, height=48)
    info = read_image_info(path)
    assert (info.width, info.height, info.format, info.orientation) == (64, 48, fmt, 1)
    rgb = load_image(path.read_bytes(), MediaLimits())
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert _near(rgb[5, 5], RED) and _near(rgb[-5, -5], BLUE)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_exif_orientation_is_applied(tmp_path: Path, fmt: str) -> None:
    # Orientation 6: the stored pixels must be turned 90° clockwise to display.
    path = make_image(tmp_path / f"o.{fmt}", fmt, width=64, height=48, orientation=6)
    info = read_image_info(path)
    assert (info.width, info.height, info.orientation) == (48, 64, 6)
    rgb = load_image(path, MediaLimits())
    assert rgb.shape == (64, 48, 3)
    assert _near(rgb[5, -5], RED)  # the top-left red quadrant moved to the top right
    assert _near(rgb[-5, 5], BLUE)


def test_header_bomb_is_refused_without_allocating(tmp_path: Path) -> None:
    bomb = make_png_header_bomb(tmp_path / "bomb.png", 50000, 50000)
    assert bomb.stat().st_size < 200
    started = time.monotonic()
    with pytest.raises(MediaTooLarge):
        load_image(bomb, MediaLimits())
    with pytest.raises(MediaTooLarge):
        read_image_info(bomb)
    assert time.monotonic() - started < 1.0  # 7.5 GB were never allocated


def test_pixel_limit_checked_before_decoding(tmp_path: Path) -> None:
    bomb = make_png_header_bomb(tmp_path / "b.png", 8000, 6000)  # 48 MP, a tiny file
    info = read_image_info(bomb)
    assert (info.width, info.height) == (8000, 6000)
    with pytest.raises(MediaTooLarge, match="8000x6000"):
        load_image(bomb, MediaLimits())
    with pytest.raises(MediaTooLarge):
        load_image(
            make_image(tmp_path / "s.png", "png", 64, 48), MediaLimits(max_image_pixels=1000)
        )


def test_pillow_bomb_warning_is_an_error(tmp_path: Path) -> None:
    # Above Pillow's own warning threshold but within our (raised) limit.
    pixels = Image.MAX_IMAGE_PIXELS or 89_478_485
    side = int((pixels * 1.2) ** 0.5)
    bomb = make_png_header_bomb(tmp_path / "w.png", side, side)
    with pytest.raises(MediaTooLarge, match="decompression bomb"):
        load_image(bomb, MediaLimits(max_image_pixels=10**10))


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_truncated_images_are_rejected(tmp_path: Path, fmt: str) -> None:
    full = make_image(tmp_path / f"f.{fmt}", fmt, width=256, height=256)
    cut = truncate_file(full, tmp_path / f"cut.{fmt}", 0.5)
    with pytest.raises(MediaRejected, match="corrupt or truncated"):
        load_image(cut, MediaLimits())


def test_corrupt_png_is_rejected(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / "c.png"
    Image.fromarray(noise).save(path)
    data = bytearray(path.read_bytes())
    data[200:400] = b"\xff" * 200  # inside the compressed pixel data
    assert read_image_info(bytes(data)).width == 64  # the header alone is fine
    with pytest.raises(MediaRejected):
        load_image(bytes(data), MediaLimits())


def test_non_images_are_refused(tmp_path: Path, clips: Clips) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("definitely not a photo")
    with pytest.raises(UnsupportedMedia):
        load_image(text, MediaLimits())
    with pytest.raises(UnsupportedMedia, match="expected an image"):
        load_image(clips.get(), MediaLimits())
    with pytest.raises(UnsupportedMedia, match="empty"):
        read_image_info(b"")


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "1", "CMYK"])
def test_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    fmt = "jpeg" if mode == "CMYK" else "png"
    path = make_image(tmp_path / f"m.{fmt}", fmt, 32, 24, mode=mode)
    rgb = load_image(path, MediaLimits())
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    arr = np.zeros((8, 8, 4), np.uint8)  # fully transparent black
    path = tmp_path / "t.png"
    Image.fromarray(arr, "RGBA").save(path)
    assert (load_image(path, MediaLimits()) == 255).all()


def test_sixteen_bit_grey_is_scaled(tmp_path: Path) -> None:
    path = tmp_path / "g16.png"
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(path)
    assert (load_image(path, MediaLimits()) == 255).all()


def test_real_photo() -> None:
    rgb = load_image(real_photo("astronaut"), MediaLimits())
    assert rgb.shape == (512, 512, 3)
    assert rgb.std() > 30  # a real picture, not a flat fill


def test_jpeg_draft_decoding_keeps_enough_pixels(tmp_path: Path) -> None:
    path = make_image(tmp_path / "big.jpg", "jpeg", 2048, 1536)
    hint = 100 * 100
    rgb = load_image(path, MediaLimits(), min_pixels_hint=hint)
    assert rgb.shape[0] * rgb.shape[1] >= 4 * hint
    assert rgb.shape[0] < 1536  # decoded at a reduced DCT scale
    assert abs(rgb.shape[1] / rgb.shape[0] - 2048 / 1536) < 0.02
