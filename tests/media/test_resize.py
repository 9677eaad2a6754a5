"""Qwen2.5-VL resize rules, checked against qwen-vl-utils' reference code."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from serve_app.errors import InvalidRequest, MediaRejected
from serve_app.media.budget import PixelBudget
from serve_app.media.resize import (
    FACTOR,
    image_target_size,
    resize_rgb,
    smart_resize,
    video_frame_max_pixels,
    video_target_size,
)


def reference_smart_resize(
    height: int, width: int, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """qwen-vl-utils 0.0.x ``smart_resize`` (with the ``max(factor, ...)`` floor guard)."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def test_matches_reference_on_many_sizes() -> None:
    rng = random.Random(0)
    budget = PixelBudget()
    for _ in range(2000):
        h, w = rng.randint(10, 5000), rng.randint(10, 5000)
        if max(h, w) / min(h, w) > 200:
            continue
        expected = reference_smart_resize(
            h, w, FACTOR, budget.image_min_pixels, budget.image_max_pixels
        )
        assert image_target_size(h, w, budget) == expected


@pytest.mark.parametrize(
    ("h", "w"), [(1080, 1920), (1920, 1080), (480, 640), (28, 28), (10, 10), (4000, 3000)]
)
def test_result_is_valid_and_keeps_aspect(h: int, w: int) -> None:
    min_px, max_px = 4 * 784, 1280 * 784
    th, tw = smart_resize(h, w, min_pixels=min_px, max_pixels=max_px)
    assert th % FACTOR == 0 and tw % FACTOR == 0
    assert min_px <= th * tw <= max_px
    # Aspect kept up to rounding to 28 px on each side.
    assert abs(tw / th - w / h) <= (w / h) * (FACTOR / th + FACTOR / tw) + 1e-9
    # Already-valid sizes are a fixed point (the model's processor leaves them alone).
    assert smart_resize(th, tw, min_pixels=min_px, max_pixels=max_px) == (th, tw)


def test_clamps() -> None:
    th, tw = smart_resize(4000, 3000, min_pixels=784, max_pixels=100 * 784)
    assert th * tw <= 100 * 784
    th, tw = smart_resize(20, 30, min_pixels=64 * 784, max_pixels=1000 * 784)
    assert th * tw >= 64 * 784


def test_extreme_aspect_ratio_is_rejected() -> None:
    with pytest.raises(MediaRejected, match="aspect ratio"):
        smart_resize(10, 2010, min_pixels=784, max_pixels=10**6)
    assert smart_resize(10, 2000, min_pixels=784, max_pixels=10**6)[0] == FACTOR


def test_bad_arguments() -> None:
    with pytest.raises(MediaRejected):
        smart_resize(0, 10, min_pixels=784, max_pixels=10**6)
    with pytest.raises(InvalidRequest):
        smart_resize(100, 100, min_pixels=10**6, max_pixels=784)


def test_video_frame_budget_formula() -> None:
    budget = PixelBudget()
    # Few frames: capped by video_max_pixels.
    assert video_frame_max_pixels(budget, 4) == budget.video_max_pixels
    # Many frames share the total: total / n * 2 ...
    n = 100
    assert video_frame_max_pixels(budget, n) == int(budget.video_total_pixels / n * 2)
    # ... but never below video_min_pixels * 1.05.
    assert video_frame_max_pixels(budget, 100000) == int(budget.video_min_pixels * 1.05)
    for n in (2, 8, 32, 64, 128, 512):
        expected = max(
            min(budget.video_max_pixels, budget.video_total_pixels / n * 2),
            int(budget.video_min_pixels * 1.05),
        )
        assert video_frame_max_pixels(budget, n) == int(expected)


def test_video_target_size_shrinks_with_frame_count() -> None:
    budget = PixelBudget()
    few = video_target_size(1080, 1920, 8, budget)
    many = video_target_size(1080, 1920, 256, budget)
    assert few[0] * few[1] <= budget.video_max_pixels
    assert many[0] * many[1] < few[0] * few[1]
    assert many[0] * many[1] >= budget.video_min_pixels
    assert all(side % FACTOR == 0 for side in few + many)


def test_resize_rgb() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 100:] = 255
    small = resize_rgb(img, (28, 56))
    assert small.shape == (28, 56, 3) and small.dtype == np.uint8 and small.flags.c_contiguous
    assert small[:, :20].max() == 0 and small[:, 36:].min() == 255  # area keeps edges clean
    big = resize_rgb(img, (280, 560))
    assert big.shape == (280, 560, 3)
    assert resize_rgb(img, (100, 200)) is img
