"""Video probing on real clips of several codecs and containers, and hostile files."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from serve_app.errors import MediaRejected, MediaTooLarge, UnsupportedMedia
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import probe_video
from tests.media.conftest import CODEC_CONTAINERS, Clips
from tests.support.media_files import (
    make_audio_only,
    make_image,
    truncate_file,
    vfr_timestamps_ms,
)

CANONICAL = {"h264": "h264", "hevc": "hevc", "vp9": "vp9", "av1": "av1"}


@pytest.mark.parametrize(("codec", "container"), CODEC_CONTAINERS)
def test_probe_real_clips(clips: Clips, limits: MediaLimits, codec: str, container: str) -> None:
    info = probe_video(clips.get(codec=codec, container=container), limits)
    assert info.codec == CANONICAL[codec]
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert info.fps == pytest.approx(30)
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.frame_count == 60
    assert info.frame_count_exact == (container in ("mp4", "mov"))
    assert info.container == {"mkv": "matroska"}.get(container, container)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_swaps_display_size(clips: Clips, limits: MediaLimits, rotation: int) -> None:
    info = probe_video(clips.get(rotation=rotation), limits)
    assert info.rotation == rotation
    expected = (240, 320) if rotation in (90, 270) else (320, 240)
    assert (info.width, info.height) == expected
    assert info.stored_size == (240, 320)


def test_rotation_in_matroska(clips: Clips, limits: MediaLimits) -> None:
    info = probe_video(clips.get(container="mkv", rotation=90), limits)
    assert (info.rotation, info.width, info.height) == (90, 240, 320)


def test_variable_frame_rate(clips: Clips, limits: MediaLimits) -> None:
    info = probe_video(clips.get(vfr=True), limits)
    times = vfr_timestamps_ms(60)
    assert info.frame_count == 60
    assert info.duration_s == pytest.approx(times[-1] / 1000, abs=0.1)
    assert info.fps == pytest.approx(60 / info.duration_s, rel=0.05)


def test_live_webm_without_duration_is_scanned(clips: Clips, limits: MediaLimits) -> None:
    info = probe_video(clips.get(codec="vp9", container="webm", live=True), limits)
    assert info.frame_count == 60 and info.frame_count_exact
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.fps == pytest.approx(30, rel=0.05)


def test_audio_track_is_ignored(clips: Clips, limits: MediaLimits) -> None:
    info = probe_video(clips.get(audio=True), limits)
    assert (info.codec, info.frame_count) == ("h264", 60)


def test_bytes_source(clips: Clips, limits: MediaLimits) -> None:
    assert probe_video(clips.get().read_bytes(), limits) == probe_video(clips.get(), limits)


def test_limits(clips: Clips) -> None:
    path = clips.get()
    with pytest.raises(MediaTooLarge, match="320x240"):
        probe_video(path, MediaLimits(max_video_width=300))
    with pytest.raises(MediaTooLarge, match="long"):
        probe_video(path, MediaLimits(max_video_duration_s=1.5))
    with pytest.raises(MediaTooLarge, match="frames"):
        probe_video(path, MediaLimits(max_video_frames=59))
    # Portrait video fits a landscape cap only after rotation is known.
    with pytest.raises(MediaTooLarge):
        probe_video(clips.get(rotation=90), MediaLimits(max_video_width=400, max_video_height=300))


def test_wider_than_4096_is_refused_by_default(clips: Clips) -> None:
    with pytest.raises(MediaTooLarge, match="4112x32"):
        probe_video(clips.get(width=4112, height=32, frames=2), MediaLimits())


def test_no_video_stream(tmp_path: Path, limits: MediaLimits) -> None:
    with pytest.raises(MediaRejected, match="no video stream"):
        probe_video(make_audio_only(tmp_path / "a.mkv"), limits)


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.9])
def test_truncated_mp4_without_index_is_rejected(
    tmp_path: Path, clips: Clips, limits: MediaLimits, fraction: float
) -> None:
    cut = truncate_file(clips.get(), tmp_path / "cut.mp4", fraction)
    with pytest.raises(MediaRejected):
        probe_video(cut, limits)


def test_hostile_inputs(tmp_path: Path, limits: MediaLimits) -> None:
    started = time.monotonic()
    with pytest.raises(UnsupportedMedia, match="empty"):
        probe_video(b"", limits)
    with pytest.raises(UnsupportedMedia):
        probe_video(random.Random(1).randbytes(10_000), limits)
    with pytest.raises(UnsupportedMedia, match="expected a video"):
        probe_video(make_image(tmp_path / "x.png", "png"), limits)
    rng = random.Random(2)
    for magic in (b"\x1a\x45\xdf\xa3", b"\x00\x00\x00\x18ftypisom"):
        with pytest.raises(MediaRejected) as info:
            probe_video(magic + rng.randbytes(20_000), limits)
        assert str(tmp_path) not in info.value.detail
    assert time.monotonic() - started < 10
