"""Job prices and estimates."""

from __future__ import annotations

from serve_app.jobs.rules import estimate_frames, job_cost
from serve_app.jobs.settings import JobSettings
from tests.jobs.conftest import FACE, PEOPLE


def test_estimates_bound_the_sampled_frames() -> None:
    assert estimate_frames(2.0, 60, 5) == 11
    assert estimate_frames(60.0, 1800, 5) == 301
    assert estimate_frames(1.0, 10, 30) == 10  # never more than the video has
    assert estimate_frames(0.01, 1, 1) == 1


def test_prices_are_per_frame_per_model() -> None:
    settings = JobSettings(credits_per_frame=2, model_prices={"people-detection": 5})
    assert job_cost(settings, [FACE], 10) == 20
    assert job_cost(settings, [FACE, PEOPLE], 10) == 70
    assert job_cost(JobSettings(credits_per_frame=0), [FACE], 10) == 0
