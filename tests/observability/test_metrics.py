"""Metrics work without Ray: in-process values, no exceptions, no export."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serve_app.media.resize import estimate_visual_tokens
from serve_app.observability import metrics


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    metrics.reset()
    yield
    metrics.reset()


def test_visual_tokens_follow_the_qwen_grid() -> None:
    # one 448x448 image: 16 x 16 cells of 28 px
    assert estimate_visual_tokens("image", 1, 448, 448) == 256
    assert estimate_visual_tokens("image", 3, 56, 84) == 3 * 2 * 3
    # video frames are merged in pairs; an odd count is padded to the next pair
    assert estimate_visual_tokens("video", 8, 112, 224) == 4 * 4 * 8
    assert estimate_visual_tokens("video", 7, 112, 224) == 4 * 4 * 8
    assert estimate_visual_tokens("video", 0, 112, 224) == 0


def test_counters_accumulate_per_tag_set() -> None:
    metrics.record_frames_decoded("video", 8)
    metrics.record_frames_decoded("video", 4)
    metrics.record_frames_decoded("image", 1)
    metrics.record_frames_decoded("image", 0)  # ignored, as Ray rejects it
    assert metrics.FRAMES_DECODED.value(kind="video") == 12
    assert metrics.FRAMES_DECODED.value(kind="image") == 1


def test_generation_records_tokens_and_latency() -> None:
    for latency in (0.5, 1.5):
        metrics.record_generation(
            "m",
            input_tokens=100,
            output_tokens=20,
            latency_s=latency,
            visual_tokens=64,
            kind="image",
        )
    assert metrics.INPUT_TOKENS.value(model="m") == 200
    assert metrics.GENERATED_TOKENS.value(model="m") == 40
    assert metrics.VISUAL_TOKENS.value(model="m", kind="image") == 128
    assert metrics.MODEL_LATENCY.count(model="m") == 2
    assert metrics.MODEL_LATENCY.value(model="m") == pytest.approx(2.0)


def test_in_flight_gauge_goes_back_down_on_errors() -> None:
    with metrics.track_in_flight("VisionLanguageModel", "m"):
        with metrics.track_in_flight("VisionLanguageModel", "m"):
            assert metrics.IN_FLIGHT.value(deployment="VisionLanguageModel", model="m") == 2
        with pytest.raises(RuntimeError), metrics.track_in_flight("VisionLanguageModel", "m"):
            raise RuntimeError("boom")
    assert metrics.IN_FLIGHT.value(deployment="VisionLanguageModel", model="m") == 0


def test_gauges_credits_and_jobs() -> None:
    metrics.set_queue_depth("VisionLanguageModel", "m", -3)
    assert metrics.QUEUE_DEPTH.value(deployment="VisionLanguageModel", model="m") == 0
    metrics.record_credits_charged("analysis", 10)
    metrics.record_credits_charged("analysis", 10)
    assert metrics.CREDITS_CHARGED.value(kind="analysis") == 20
    metrics.set_job_counts({"queued": 3, "running": 1})
    metrics.record_job_transition("succeeded")
    assert metrics.JOBS.value(state="queued") == 3
    assert metrics.JOB_TRANSITIONS.value(state="succeeded") == 1
    metrics.record_model_error("m", TimeoutError())
    assert metrics.MODEL_ERRORS.value(model="m", error="TimeoutError") == 1


def test_snapshot_lists_every_metric_with_valid_prometheus_names() -> None:
    import re

    snap = metrics.snapshot()
    assert set(snap) == {m.name for m in metrics.ALL_METRICS}
    for name in snap:
        assert re.fullmatch(r"serve_app_[a-z_]+", name)


def test_nothing_is_exported_outside_ray() -> None:
    # In a fresh interpreter: this test session may already have started Ray.
    import subprocess
    import sys

    code = (
        "import ray\n"
        "from serve_app.deployments.ray_metrics import export_metrics_through_ray\n"
        "from serve_app.observability import metrics\n"
        "assert not ray.is_initialized()\n"
        "metrics.record_frames_decoded('image', 1)\n"
        "assert metrics.FRAMES_DECODED._twin is None\n"  # no exporter set
        "export_metrics_through_ray()\n"
        "metrics.record_frames_decoded('image', 1)\n"
        "assert metrics.FRAMES_DECODED._twin is None\n"  # Ray's exports nothing outside Ray
        "assert metrics.FRAMES_DECODED.value(kind='image') == 2\n"
        "assert not ray.is_initialized()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


def test_observe_latency_times_calls_and_counts_errors() -> None:
    with metrics.observe_latency("Detector", "face-detection"):
        assert metrics.IN_FLIGHT.value(deployment="Detector", model="face-detection") == 1
    with pytest.raises(ValueError), metrics.observe_latency("Detector", "face-detection"):
        raise ValueError("bad frames")
    assert metrics.MODEL_LATENCY.count(model="face-detection") == 1  # errors are not timed
    assert metrics.MODEL_ERRORS.value(model="face-detection", error="ValueError") == 1
    assert metrics.IN_FLIGHT.value(deployment="Detector", model="face-detection") == 0


def test_job_transitions_take_a_count() -> None:
    metrics.record_job_transition("queued", 3)
    metrics.record_job_transition("queued", 0)  # nothing moved: nothing recorded
    metrics.record_job_transition("failed")
    assert metrics.JOB_TRANSITIONS.value(state="queued") == 3
    assert metrics.JOB_TRANSITIONS.value(state="failed") == 1
