"""The extraction entry point: images and videos in, model-ready FrameBatches out."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from serve_app.errors import MediaRejected, MediaTooLarge, ServeAppError, UnsupportedMedia
from serve_app.media.budget import PixelBudget
from serve_app.media.extract import extract_frames, inspect_media
from serve_app.media.frames import MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.media.resize import video_frame_max_pixels
from serve_app.media.sampling import SamplingSpec
from tests.media.conftest import Clips
from tests.support.media_files import (
    decode_index,
    make_image,
    make_png_header_bomb,
    real_photo,
    truncate_file,
)

BUDGET = PixelBudget(
    image_min_pixels=4 * 784,
    image_max_pixels=64 * 784,
    video_min_pixels=16 * 784,
    video_max_pixels=64 * 784,
    video_total_pixels=256 * 784,
    max_frames=16,
)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_image_becomes_one_frame(limits: MediaLimits, as_bytes: bool) -> None:
    path = real_photo("astronaut")
    batch = extract_frames(path.read_bytes() if as_bytes else path, None, BUDGET, limits)
    assert batch.kind is MediaKind.IMAGE
    assert batch.frames.shape[0] == 1 and batch.frame_indices == (0,)
    assert batch.height % 28 == 0 and batch.width % 28 == 0
    assert batch.height * batch.width <= BUDGET.image_max_pixels
    assert batch.height == batch.width  # astronaut.png is square


def test_video_uses_spec_budget_and_frame_cap(clips: Clips, limits: MediaLimits) -> None:
    batch = extract_frames(
        clips.get(frames=90), SamplingSpec(interval=3, max_frames=64), BUDGET, limits
    )
    assert batch.kind is MediaKind.VIDEO
    assert batch.num_frames == BUDGET.max_frames  # spec allowed 64; the budget caps at 16
    assert batch.frame_indices[0] == 0 and batch.frame_indices[-1] == 87
    assert [decode_index(f) for f in batch.frames] == list(batch.frame_indices)
    per_frame = batch.height * batch.width
    assert per_frame <= video_frame_max_pixels(BUDGET, batch.num_frames)
    assert batch.height % 28 == 0 and batch.width % 28 == 0
    assert batch.extra["codec"] == "h264"


def test_video_default_sampling_is_two_fps(clips: Clips, limits: MediaLimits) -> None:
    batch = extract_frames(clips.get(), None, BUDGET, limits)
    assert batch.frame_indices == (0, 15, 30, 45)


def test_rotated_video_is_upright_and_portrait(clips: Clips, limits: MediaLimits) -> None:
    batch = extract_frames(clips.get(rotation=90), SamplingSpec(interval=30), BUDGET, limits)
    assert batch.height > batch.width
    assert [decode_index(np.rot90(f)) for f in batch.frames] == [0, 30]


def test_inspect_image_and_video(tmp_path: Path, clips: Clips, limits: MediaLimits) -> None:
    image = inspect_media(
        make_image(tmp_path / "a.webp", "webp", 64, 48), limits, filename="a.webp"
    )
    assert (image.kind, image.format, image.width, image.height, image.video) == (
        MediaKind.IMAGE,
        "webp",
        64,
        48,
        None,
    )
    video = inspect_media(clips.get(rotation=90).read_bytes(), limits, filename="clip.MP4")
    assert (video.kind, video.format, video.width, video.height) == (
        MediaKind.VIDEO,
        "mp4",
        240,
        320,
    )
    assert video.video is not None and video.video.frame_count == 60
    assert video.size_bytes == clips.get(rotation=90).stat().st_size


def test_size_limits(tmp_path: Path, clips: Clips) -> None:
    small = MediaLimits(max_image_bytes=100, max_video_bytes=1000)
    with pytest.raises(MediaTooLarge, match="image file"):
        inspect_media(make_image(tmp_path / "a.png", "png", 64, 48), small)
    with pytest.raises(MediaTooLarge, match="video file"):
        extract_frames(clips.get(), None, BUDGET, small)


def test_pixel_bomb(tmp_path: Path, limits: MediaLimits) -> None:
    bomb = make_png_header_bomb(tmp_path / "bomb.png")
    with pytest.raises(MediaTooLarge):
        inspect_media(bomb, limits)
    with pytest.raises(MediaTooLarge):
        extract_frames(bomb, None, BUDGET, limits)
    big = make_png_header_bomb(tmp_path / "big.png", 8000, 6000)
    with pytest.raises(MediaTooLarge, match="8000x6000"):
        inspect_media(big, limits)


def test_mislabelled_uploads(tmp_path: Path, clips: Clips, limits: MediaLimits) -> None:
    png = make_image(tmp_path / "a.png", "png")
    with pytest.raises(UnsupportedMedia, match="does not match"):
        inspect_media(png, limits, filename="movie.mp4")
    with pytest.raises(UnsupportedMedia, match="does not match"):
        extract_frames(clips.get(), None, BUDGET, limits, filename="photo.jpg")
    text = tmp_path / "photo.jpg"
    text.write_text("hello")
    with pytest.raises(UnsupportedMedia):
        extract_frames(text, None, BUDGET, limits, filename="photo.jpg")


def _hostile(tmp_path: Path, clips: Clips) -> list[Path]:
    rng = random.Random(5)
    files = {
        "empty.mp4": b"",
        "random.bin": rng.randbytes(50_000),
        "fake.mkv": b"\x1a\x45\xdf\xa3" + rng.randbytes(50_000),
        "fake.mp4": b"\x00\x00\x00\x18ftypisom" + rng.randbytes(50_000),
        "fake.png": b"\x89PNG\r\n\x1a\n" + rng.randbytes(5_000),
        "fake.jpg": b"\xff\xd8\xff\xe0" + rng.randbytes(5_000),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    paths.append(truncate_file(clips.get(), tmp_path / "cut.mp4", 0.5))
    paths.append(truncate_file(real_photo("astronaut"), tmp_path / "cut.png", 0.3))
    return paths


def test_hostile_files_fail_cleanly(tmp_path: Path, clips: Clips) -> None:
    limits = MediaLimits(decode_timeout_s=5)
    for path in _hostile(tmp_path, clips):
        calls: list[Callable[[Path], object]] = [
            lambda p: extract_frames(p, SamplingSpec(interval=5), BUDGET, limits)
        ]
        if path.name != "cut.png":  # inspect reads image headers only; this one's is intact
            calls.append(lambda p: inspect_media(p, limits))
        for call in calls:
            with pytest.raises((UnsupportedMedia, MediaRejected)) as info:
                call(path)
            assert isinstance(info.value, ServeAppError)
            assert str(tmp_path) not in info.value.detail, info.value.detail
            assert path.name not in info.value.detail
