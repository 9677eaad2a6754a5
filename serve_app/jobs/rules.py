"""The rules of a job, written once for submit and worker: fps, frame limit, price.

Each rule is computed here; the caller picks how a broken rule is reported (submit
answers the request, the worker fails the job with a stable error code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from serve_app.errors import InvalidRequest
from serve_app.frame_models.spec import ModelSpec
from serve_app.jobs.settings import JobSettings

#: Error code of a job whose ``infer_fps`` is above its video's frame rate.
INFER_FPS_TOO_HIGH = "infer_fps_too_high"
#: Error code of a job that would process more than ``max_frames_per_job`` frames.
TOO_MANY_FRAMES = "too_many_frames"
#: Slack when comparing ``infer_fps`` with a video's (float) frame rate.
_FPS_EPSILON = 1e-6


def check_request(settings: JobSettings, infer_fps: float, model_count: int) -> None:
    """A job's ``infer_fps`` bounds and model count. Raises InvalidRequest."""
    if not settings.min_infer_fps <= infer_fps <= settings.max_infer_fps:
        raise InvalidRequest(
            f"infer_fps must be between {settings.min_infer_fps:g} and {settings.max_infer_fps:g}"
        )
    if model_count > settings.max_models_per_job:
        raise InvalidRequest(f"at most {settings.max_models_per_job} models per job")


def infer_fps_problem(infer_fps: float, video_fps: float) -> str | None:
    """Why ``infer_fps`` cannot sample a ``video_fps`` video (None: it can)."""
    if infer_fps <= video_fps + _FPS_EPSILON:
        return None
    return (
        f"infer_fps {infer_fps:g} is above the video's frame rate ({video_fps:.3f} fps); "
        "use an infer_fps at or below it"
    )


def frame_limit_problem(settings: JobSettings, frames: int) -> str | None:
    """Why a job of ``frames`` frames is too large (None: it is not)."""
    if frames <= settings.max_frames_per_job:
        return None
    return f"the job would process {frames} frames; the limit is {settings.max_frames_per_job}"


def estimate_frames(duration_s: float, frame_count: int, infer_fps: float) -> int:
    """Frames sampled at ``infer_fps`` from a video (an upper bound of the real count)."""
    return max(1, min(frame_count, math.floor(duration_s * infer_fps + 1e-9) + 1))


def job_cost(settings: JobSettings, models: Sequence[ModelSpec], frames: int) -> int:
    """Credits for ``frames`` frames through every model of the job."""
    return frames * sum(settings.price(m.model_id) for m in models)
