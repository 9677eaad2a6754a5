"""Model-written times: parsed as models write them, clamped to the clip, snapped to a frame."""

from __future__ import annotations

import math
import random

import pytest

from serve_app.summaries.results import Clip
from serve_app.summaries.timeline import (
    clamp_to_clip,
    parse_timecode,
    place_model_time,
    snap_to_frame,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("75", 75.0),
        ("75.5", 75.5),
        ("75.5s", 75.5),
        ("75 s", 75.0),
        ("75 seconds", 75.0),
        ("0", 0.0),
        ("1:15", 75.0),
        ("01:15", 75.0),
        ("75:00", 4500.0),  # minutes past 59 in the leading field
        ("1:02:03", 3723.0),
        ("01:02:03.250", 3723.25),
        ("00:01:15,500", 75.5),  # SRT's comma
        ("00:00:01.5", 1.5),
        ("123:00:00.001", 442800.001),  # past 99 hours
        (" [1:15] ", 75.0),
        ("(75.5s)", 75.5),
        ("1h2m3s", 3723.0),
        ("2m 30s", 150.0),
        ("1 min 15 s", 75.0),
        ("1h", 3600.0),
        ("\uff15\uff1a\uff10\uff10", 300.0),  # full-width "5:00", as CJK output writes it
    ],
)
def test_parse_timecode_reads_what_models_write(text: str, seconds: float) -> None:
    assert parse_timecode(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "-5",
        "-0:05",
        "1:75",
        "1:60:00",
        "1:02:60",
        "1:2:3:4",
        "1.2.3",
        "12:3a",
        "500ms",
        "٣٠",
        "1:15 - 2:30",
        "nan",
        "inf",
        "[]",
    ],
)
def test_parse_timecode_refuses_the_rest(text: str) -> None:
    assert parse_timecode(text) is None


def test_clamp_to_clip() -> None:
    assert clamp_to_clip(5.0, 10.0, 20.0) == 10.0
    assert clamp_to_clip(25.0, 10.0, 20.0) == 20.0
    assert clamp_to_clip(12.5, 10.0, 20.0) == 12.5
    assert clamp_to_clip(3.0, 3.0, 3.0) == 3.0
    with pytest.raises(ValueError, match="before it starts"):
        clamp_to_clip(1.0, 20.0, 10.0)


def test_snap_to_frame_nearest_and_edges() -> None:
    frames = [1.0, 2.0, 4.0]
    assert snap_to_frame(0.0, frames) == 1.0
    assert snap_to_frame(9.0, frames) == 4.0
    assert snap_to_frame(2.0, frames) == 2.0
    assert snap_to_frame(2.9, frames) == 2.0
    assert snap_to_frame(3.1, frames) == 4.0
    with pytest.raises(ValueError, match="no sampled frames"):
        snap_to_frame(1.0, [])


def test_snap_ties_go_to_the_earlier_frame_despite_float_noise() -> None:
    # 0.2 - 0.1 > 0.3 - 0.2 in binary floating point; in milliseconds they tie.
    assert 0.3 - 0.2 < 0.2 - 0.1
    assert snap_to_frame(0.2, [0.1, 0.3]) == 0.1
    assert snap_to_frame(3.0, [1.0, 2.0, 4.0]) == 2.0


def test_snap_matches_brute_force_on_variable_frame_rate_times() -> None:
    rng = random.Random(17)
    frames = sorted({round(rng.uniform(0, 600), 3) for _ in range(300)})
    for _ in range(2000):
        t = round(rng.uniform(-10, 610), 3)
        best = min(frames, key=lambda f: (abs(round(f * 1000) - round(t * 1000)), f))
        assert snap_to_frame(t, frames) == best


CLIP: Clip = {"start_s": 60.0, "end_s": 120.0}
# Variable frame rate: the sampled frames of two chunks, irregular spacing.
FRAMES = [60.0, 63.733, 67.4, 71.2, 90.0, 93.367, 97.1, 118.9]


@pytest.mark.parametrize(
    ("value", "placed"),
    [
        ("1:05", 63.733),  # 65 s: nearest sampled frame
        ("01:09.3", 67.4),  # 69.3: equidistant from 67.4 and 71.2 -> the earlier
        ("00:01:30,000", 90.0),
        ("5:00", 118.9),  # past the clip's end: clamped, then the last frame
        ("0:10", 60.0),  # before the clip: its start
        (95, 93.367),  # a number in the model's JSON
        (96.5, 97.1),
    ],
)
def test_place_model_time(value: str | float, placed: float) -> None:
    assert place_model_time(value, CLIP, FRAMES) == placed


@pytest.mark.parametrize("value", ["soon", "", "-1:00", -3.0, math.nan, math.inf, True])
def test_place_model_time_unreadable_is_none(value: str | float) -> None:
    assert place_model_time(value, CLIP, FRAMES) is None


def test_place_model_time_without_frames_only_clamps() -> None:
    assert place_model_time("1:05.1234", CLIP, []) == 65.123
    assert place_model_time("3:00", CLIP, []) == 120.0
