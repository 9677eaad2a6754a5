"""Chunk boundaries and the frames each chunk is captioned from (pure)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from serve_app.errors import InvalidRequest
from serve_app.summaries.plan import (
    chunk_spans,
    frames_per_chunk,
    pick_frames,
    plan_summary,
    video_duration,
)
from serve_app.summaries.spec import SummaryRequest
from tests.support.media_files import vfr_timestamps_ms


def request(**fields: object) -> SummaryRequest:
    return SummaryRequest(input_url="https://example.com/v.mp4", **fields)  # type: ignore[arg-type]


def test_spans_cover_the_clip_and_the_last_ends_at_its_end() -> None:
    assert chunk_spans(0, 95, 30, 0) == [(0, 30), (30, 60), (60, 90), (90, 95)]
    assert chunk_spans(10, 40, 30, 0) == [(10, 40)]


def test_overlapping_spans_share_exactly_the_overlap() -> None:
    spans = chunk_spans(0, 70, 30, 5)
    assert spans == [(0, 30), (25, 55), (50, 70)]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end - start == 5


def test_frames_are_spread_evenly_within_the_span() -> None:
    timestamps = np.arange(300) / 30  # 10 s at 30 fps
    picked = pick_frames(timestamps, 0.0, 2.0, 4, last=False)
    # Centres of four 0.5 s slices: 0.25, 0.75, 1.25, 1.75 s = frames 7.5, 22.5, 37.5,
    # 52.5: each halfway between two frames, where the earlier one wins.
    assert picked.tolist() == [7, 22, 37, 52]
    assert all(0 <= timestamps[i] < 2.0 for i in picked)


def test_the_last_span_includes_its_end_and_a_sparse_span_gives_fewer_frames() -> None:
    timestamps = np.array([0.0, 1.0, 2.0])
    assert pick_frames(timestamps, 1.0, 2.0, 8, last=True).tolist() == [1, 2]
    assert pick_frames(timestamps, 1.0, 2.0, 8, last=False).tolist() == [1]


def test_a_span_without_frames_takes_the_nearest_one() -> None:
    timestamps = np.array([0.0, 10.0])
    assert pick_frames(timestamps, 4.0, 5.0, 4, last=False).tolist() == [0]


def test_variable_frame_rate_chunks_use_true_times() -> None:
    timestamps = np.array(vfr_timestamps_ms(120)) / 1000
    plan = plan_summary(timestamps, video_duration(timestamps, 0, 30), request(chunk_s=2), 4)
    for chunk in plan.chunks:
        assert chunk.timestamps == tuple(float(timestamps[i]) for i in chunk.frame_indices)
        assert all(chunk.start_s <= t <= chunk.end_s for t in chunk.timestamps)
    assert plan.chunks[-1].end_s == pytest.approx(timestamps[-1] + 1 / 30)


def test_clip_bounds_and_effective_fps() -> None:
    timestamps = np.arange(600) / 30  # 20 s
    plan = plan_summary(timestamps, 20.0, request(chunk_s=4, start_s=5, end_s=13), 4)
    assert [(c.start_s, c.end_s) for c in plan.chunks] == [(5, 9), (9, 13)]
    assert plan.frames_used == 8 and plan.effective_fps == 1.0
    assert plan.chunks[0].effective_fps == 1.0


def test_a_clip_past_the_end_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"the video is 20\.000 s long"):
        plan_summary(np.arange(600) / 30, 20.0, request(start_s=25), 4)


def test_frames_per_chunk_from_min_fps_within_the_budget() -> None:
    assert frames_per_chunk(request(), 8) == 8
    assert frames_per_chunk(request(), 4) == 4
    assert frames_per_chunk(request(chunk_s=10, min_fps=0.5), 8) == 5
    with pytest.raises(InvalidRequest, match="use shorter chunks"):
        frames_per_chunk(request(chunk_s=30, min_fps=1), 8)
    with pytest.raises(InvalidRequest, match="frames_per_chunk 9"):
        frames_per_chunk(request(frames_per_chunk=9), 8)


def test_request_rules() -> None:
    with pytest.raises(ValueError, match="not both"):
        request(frames_per_chunk=4, min_fps=1)
    with pytest.raises(ValueError, match="half of chunk_s"):
        request(chunk_s=10, overlap_s=5)
    with pytest.raises(ValueError, match="after start_s"):
        request(start_s=5, end_s=5)
