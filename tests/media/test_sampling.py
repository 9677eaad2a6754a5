"""Frame selection and decoding: true indices, timestamps and content on real clips."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import ValidationError

from serve_app.errors import MediaRejected, MediaTooLarge
from serve_app.media import sampling
from serve_app.media.budget import PixelBudget
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import probe_video
from serve_app.media.sampling import SamplingSpec, sample_video, select_frames, thin
from tests.media.conftest import CODEC_CONTAINERS, Clips
from tests.support.media_files import decode_index, truncate_file, vfr_timestamps_ms

SIZE = (112, 140)  # (height, width), small and fast


def run(path: Path, spec: SamplingSpec, limits: MediaLimits, size: object = SIZE) -> FrameBatch:
    info = probe_video(path, limits)
    return sample_video(path, info, spec, size, limits)  # type: ignore[arg-type]


def content(batch: FrameBatch, rotation: int = 0) -> list[int]:
    """Frame indices drawn into the pixels (after undoing a clockwise ``rotation``)."""
    return [decode_index(np.rot90(f, k=rotation // 90)) for f in batch.frames]


# -- selection (pure) ------------------------------------------------------------------


def test_spec_needs_exactly_one_mode() -> None:
    for kwargs in (
        {},
        {"interval": 2, "fps": 1.0},
        {"interval": 0},
        {"fps": 0},
        {"fps": 1.0, "max_frames": 1},
    ):
        with pytest.raises(ValidationError):
            SamplingSpec.model_validate(kwargs)


def test_select_interval() -> None:
    ts = np.arange(60) / 30
    assert select_frames(ts, SamplingSpec(interval=10)).tolist() == [0, 10, 20, 30, 40, 50]
    assert select_frames(ts, SamplingSpec(interval=1000)).tolist() == [0]


def test_select_fps_by_timestamps() -> None:
    ts = np.arange(60) / 30
    assert select_frames(ts, SamplingSpec(fps=2)).tolist() == [0, 15, 30, 45]
    # Faster than the source: every frame once, never twice.
    assert select_frames(ts, SamplingSpec(fps=100, max_frames=1000)).tolist() == list(range(60))


def test_select_fps_on_variable_frame_rate_picks_nearest() -> None:
    ts = np.array(vfr_timestamps_ms(60)) / 1000
    chosen = select_frames(ts, SamplingSpec(fps=4, max_frames=1000))
    for i, target in zip(chosen, np.arange(0, ts[-1] + 1e-9, 0.25), strict=False):
        assert abs(ts[i] - target) == pytest.approx(np.abs(ts - target).min())


def test_thinning_keeps_first_and_last_and_caps() -> None:
    picked = thin(np.arange(100), 8)
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == 99
    assert np.all(np.diff(picked) >= 13)
    # max_frames is rounded down to even, so padding can never exceed it.
    assert len(select_frames(np.arange(100) / 30, SamplingSpec(interval=1, max_frames=7))) == 6


# -- decoding real clips ----------------------------------------------------------------


@pytest.mark.parametrize(("codec", "container"), CODEC_CONTAINERS)
def test_interval_sampling_across_codecs(
    clips: Clips, limits: MediaLimits, codec: str, container: str
) -> None:
    batch = run(clips.get(codec=codec, container=container), SamplingSpec(interval=10), limits)
    assert batch.kind is MediaKind.VIDEO
    assert batch.frames.shape == (6, *SIZE, 3)
    assert batch.frame_indices == (0, 10, 20, 30, 40, 50)
    assert content(batch) == [0, 10, 20, 30, 40, 50]
    assert batch.timestamps == pytest.approx([i / 30 for i in batch.frame_indices], abs=2e-3)
    assert (batch.total_frames, batch.source_fps) == (60, pytest.approx(30))


@pytest.mark.parametrize(
    ("codec", "container"), [("h264", "mp4"), ("vp9", "webm"), ("hevc", "mp4")]
)
def test_fps_sampling(clips: Clips, limits: MediaLimits, codec: str, container: str) -> None:
    batch = run(clips.get(codec=codec, container=container), SamplingSpec(fps=2), limits)
    assert batch.frame_indices == (0, 15, 30, 45)
    assert content(batch) == [0, 15, 30, 45]
    assert batch.timestamps == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=2e-3)


def test_variable_frame_rate_timestamps_are_true_pts(clips: Clips, limits: MediaLimits) -> None:
    truth = [t / 1000 for t in vfr_timestamps_ms(60)]
    batch = run(clips.get(vfr=True), SamplingSpec(interval=7), limits)
    assert content(batch)[: len(range(0, 60, 7))] == list(range(0, 60, 7))
    assert batch.timestamps == pytest.approx([truth[i] for i in batch.frame_indices], abs=1e-3)
    by_time = run(clips.get(vfr=True), SamplingSpec(fps=3, max_frames=100), limits)
    assert content(by_time) == list(by_time.frame_indices)
    for i, target in zip(by_time.frame_indices, np.arange(0, 3, 1 / 3), strict=False):
        assert abs(truth[i] - target) <= min(abs(t - target) for t in truth) + 1e-9


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_rotation_makes_frames_upright(
    clips: Clips, limits: MediaLimits, rotation: int, container: str
) -> None:
    batch = run(
        clips.get(rotation=rotation, container=container),
        SamplingSpec(interval=20),
        limits,
        size=(140, 112),
    )
    assert batch.frames.shape[1:3] == (140, 112)
    assert content(batch, rotation) == [0, 20, 40, 40]
    if rotation == 90:  # stored top-left marker shows at the top right when upright
        marker = batch.frames[0, 5, -5]
        assert marker[0] > 150 and marker[1] < 100


def test_budget_sizes_frames(clips: Clips, limits: MediaLimits) -> None:
    budget = PixelBudget(video_min_pixels=28 * 28, video_max_pixels=20 * 28 * 28)
    batch = run(clips.get(), SamplingSpec(interval=5), limits, size=budget)
    assert batch.height % 28 == 0 and batch.width % 28 == 0
    assert batch.height * batch.width <= 20 * 28 * 28
    assert content(batch) == list(range(0, 60, 5))


def test_max_frames_thins_evenly(clips: Clips, limits: MediaLimits) -> None:
    batch = run(clips.get(), SamplingSpec(interval=1, max_frames=8), limits)
    assert batch.num_frames == 8
    assert batch.frame_indices[0] == 0 and batch.frame_indices[-1] == 59
    assert content(batch) == list(batch.frame_indices)


def test_odd_count_repeats_last_frame(clips: Clips, limits: MediaLimits) -> None:
    batch = run(clips.get(), SamplingSpec(interval=20), limits)
    assert batch.frame_indices == (0, 20, 40, 40)
    assert np.array_equal(batch.frames[-1], batch.frames[-2])
    single = run(clips.get(frames=1), SamplingSpec(fps=1), limits)
    assert single.frame_indices == (0, 0) and content(single) == [0, 0]


def test_sparse_sampling_skips_gops_correctly(clips: Clips, limits: MediaLimits) -> None:
    # Short GOPs with B-frames: most GOPs are skipped, and the tail of the others.
    path = clips.get(gop=12, frames=120)
    batch = run(path, SamplingSpec(interval=25), limits)
    assert content(batch) == [0, 25, 50, 75, 100, 100]
    batch = run(path, SamplingSpec(fps=1), limits)
    assert content(batch) == [0, 30, 60, 90]
    hevc = run(clips.get(codec="hevc", gop=12, frames=120), SamplingSpec(interval=37), limits)
    assert content(hevc) == [0, 37, 74, 111]


def test_wanted_non_reference_frames_are_decoded(clips: Clips, limits: MediaLimits) -> None:
    # The H.264 clips have B-pyramids: odd frames are non-reference and skipped unless
    # wanted; every third frame hits both kinds.
    batch = run(clips.get(), SamplingSpec(interval=3, max_frames=64), limits)
    assert content(batch) == list(range(0, 60, 3))


def test_unwanted_non_reference_frames_are_not_decoded(
    clips: Clips, limits: MediaLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    take = sampling._Collector.take

    def counting_take(self: sampling._Collector, frame: av.VideoFrame) -> int | None:
        seen.append(frame.pts)
        return take(self, frame)

    monkeypatch.setattr(sampling._Collector, "take", counting_take)
    batch = run(clips.get(), SamplingSpec(interval=10), limits)
    assert content(batch) == [0, 10, 20, 30, 40, 50]
    assert len(seen) < 45  # about half of the 60 frames are non-reference B-frames


def test_bytes_source(clips: Clips, limits: MediaLimits) -> None:
    path = clips.get()
    info = probe_video(path, limits)
    batch = sample_video(path.read_bytes(), info, SamplingSpec(interval=30), SIZE, limits)
    assert content(batch) == [0, 30]


def test_truncated_streamable_file_returns_what_decodes(
    tmp_path: Path, clips: Clips, limits: MediaLimits, caplog: pytest.LogCaptureFixture
) -> None:
    full = clips.get(container="mkv")
    info = probe_video(full, limits)
    cut = truncate_file(full, tmp_path / "cut.mkv", 0.6)
    with caplog.at_level(logging.WARNING, logger="serve_app.media.sampling"):
        batch = sample_video(cut, info, SamplingSpec(interval=10), SIZE, limits)
    assert 2 <= batch.num_frames < 6 and batch.num_frames % 2 == 0
    assert content(batch) == list(batch.frame_indices)
    assert "truncated" in caplog.text
    # A truncated MP4 with its index up front still plays up to the cut.
    fast = clips.get(faststart=True)
    cut_mp4 = truncate_file(fast, tmp_path / "cut.mp4", 0.6)
    batch = run(cut_mp4, SamplingSpec(interval=10), limits)
    assert 2 <= batch.num_frames <= 6
    assert content(batch) == list(batch.frame_indices)


def test_corrupt_middle_never_hangs(tmp_path: Path, clips: Clips, limits: MediaLimits) -> None:
    data = bytearray(clips.get(container="mkv").read_bytes())
    rng = random.Random(3)
    start = len(data) // 3
    data[start : start + len(data) // 3] = rng.randbytes(len(data) // 3)
    path = tmp_path / "corrupt.mkv"
    path.write_bytes(bytes(data))
    info = probe_video(path, limits)
    try:
        batch = sample_video(path, info, SamplingSpec(interval=10), SIZE, limits)
    except MediaRejected:
        return
    assert batch.num_frames % 2 == 0 and batch.frame_indices[0] == 0


def test_decode_timeout(clips: Clips) -> None:
    path = clips.get()
    info = probe_video(path, MediaLimits())
    with pytest.raises(MediaRejected, match="took too long"):
        sample_video(path, info, SamplingSpec(interval=1), SIZE, MediaLimits(decode_timeout_s=1e-6))


def test_frame_cap_during_indexing(clips: Clips) -> None:
    path = clips.get(container="mkv")
    info = probe_video(path, MediaLimits())
    with pytest.raises(MediaTooLarge):
        sample_video(path, info, SamplingSpec(interval=10), SIZE, MediaLimits(max_video_frames=30))
