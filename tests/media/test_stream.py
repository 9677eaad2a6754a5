"""Whole-video sampling at a fixed rate, in batches (video jobs)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from serve_app.errors import MediaRejected
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import open_container, probe_video
from serve_app.media.sampling import index_stream
from serve_app.media.stream import frames_at_rate, iter_frames, output_size, plan_frames
from tests.support.media_files import decode_index


def test_frames_at_rate_picks_the_nearest_true_timestamps() -> None:
    times = np.arange(90) / 30
    assert frames_at_rate(times, 5).tolist() == list(range(0, 90, 6))
    assert frames_at_rate(times, 30).tolist() == list(range(90))
    assert frames_at_rate(times, 60).tolist() == list(range(90))  # never more than exist
    assert frames_at_rate(np.array([0.0, 0.5, 0.55, 2.0]), 1).tolist() == [0, 2, 3]
    assert frames_at_rate(np.zeros(0), 5).tolist() == []


def collect(path, fps: float, batch: int, limits: MediaLimits, **kwargs):
    info = probe_video(path, limits)
    plan = plan_frames(path, info, fps, limits, **kwargs)
    chunks = list(iter_frames(path, info, plan, batch, limits))
    return plan, chunks


@pytest.mark.parametrize("options", [{}, {"vfr": True}, {"codec": "vp9", "container": "webm"}])
def test_batches_carry_the_planned_frames_in_order(clips, limits, options) -> None:
    path = clips.get(frames=90, width=160, height=120, **options)
    plan, chunks = collect(path, 5, 4, limits)
    assert [len(c.frame_indices) for c in chunks[:-1]] == [4] * (len(chunks) - 1)
    indices = [i for c in chunks for i in c.frame_indices]
    assert indices == list(plan.frame_indices)
    content = [decode_index(f) for c in chunks for f in c.frames]
    assert content == indices
    times = [t for c in chunks for t in c.timestamps]
    assert times == list(plan.timestamps)
    if not options:
        assert indices == list(range(0, 90, 6))


def test_rotation_and_downscaling(clips, limits) -> None:
    path = clips.get(frames=30, width=160, height=120, rotation=90)
    plan, chunks = collect(path, 10, 8, limits, max_side=80)
    assert plan.size == (80, 60)
    frame = chunks[0].frames[0]
    assert frame.shape == (80, 60, 3)
    assert decode_index(np.rot90(frame, k=1)) == 0


def test_output_size_keeps_even_sides(clips, limits) -> None:
    info = probe_video(clips.get(frames=10, width=160, height=120), limits)
    assert output_size(info, 0) == (120, 160)
    assert output_size(info, 100) == (74, 100)


def test_decoding_is_time_limited(clips) -> None:
    path = clips.get(frames=30, width=160, height=120)
    limits = MediaLimits(decode_timeout_s=1e-6)
    info = probe_video(path, MediaLimits())
    with pytest.raises(MediaRejected):
        plan_frames(path, info, 5, limits)


@pytest.mark.parametrize("options", [{}, {"codec": "vp9", "container": "webm", "live": True}])
def test_a_seek_starts_decoding_at_a_keyframe(clips, limits, options) -> None:
    path = clips.get(frames=60, width=160, height=120, gop=12, **options)
    info = probe_video(path, limits)
    plan = plan_frames(path, info, 30, limits)
    every = np.concatenate([c.frames for c in iter_frames(path, info, plan, 8, limits)])
    keys = np.sort(plan_keyframes(path, info, limits))
    seek = int(keys[2])
    first = plan.pts.index(seek)
    seeked = list(iter_frames(path, info, plan, 8, limits, seek_pts=seek))
    indices = [i for c in seeked for i in c.frame_indices]
    assert indices == list(plan.frame_indices[first:])  # nothing before the keyframe
    frames = np.concatenate([c.frames for c in seeked])
    assert np.array_equal(frames, every[first:])  # the same pixels as without the seek


def plan_keyframes(path, info, limits: MediaLimits) -> np.ndarray:
    with open_container(path, info.container) as (container, stream):
        index = index_stream(container, stream, limits, time.monotonic() + 30)
    return index.pts[index.keyframe]
