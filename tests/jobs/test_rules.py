"""The rules of a job: request bounds, fps and frame limits, prices and estimates."""

from __future__ import annotations

import pytest

from serve_app.errors import InvalidRequest
from serve_app.jobs.rules import (
    check_request,
    estimate_frames,
    frame_limit_problem,
    infer_fps_problem,
    job_cost,
)
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


def test_request_bounds() -> None:
    settings = JobSettings(min_infer_fps=0.1, max_infer_fps=10, max_models_per_job=2)
    check_request(settings, 10, 2)
    with pytest.raises(InvalidRequest, match=r"infer_fps must be between 0\.1 and 10"):
        check_request(settings, 11, 1)
    with pytest.raises(InvalidRequest, match="at most 2 models per job"):
        check_request(settings, 1, 3)


def test_fps_and_frame_limits_explain_themselves() -> None:
    assert infer_fps_problem(30.0, 29.97) is not None
    assert infer_fps_problem(29.97, 29.97) is None
    settings = JobSettings(max_frames_per_job=10)
    assert frame_limit_problem(settings, 10) is None
    assert frame_limit_problem(settings, 11) == "the job would process 11 frames; the limit is 10"
