"""Autoscaling observed on the real graph: replicas over time under load and backlog.

The graph (tests/support/autoscaling.py) has delays of seconds: the model and the
FrameExtractor scale on ongoing requests (6 and 2 per replica, 1 to 2 replicas), JobRunner on
the job backlog through :class:`~serve_app.deployments.autoscaling.BacklogPolicy`
(1 job per replica, 0 to 2 replicas). ``serve.status()`` is sampled throughout; a
failed wait prints the timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_app.app import AppArgs, ModelEntry, build_graph
from tests.support.autoscaling import (
    DECODE_HEAVY_FIELDS,
    JOB_SETTINGS,
    Timeline,
    autoscaling_profile,
    decode_heavy_video,
    graph_options,
    job_statuses,
    ramp,
    submit_jobs,
    upload,
)
from tests.support.graphs import FAST_ACCOUNTS, create_api_token
from tests.support.job_videos import make_astronaut_video
from tests.support.media_files import make_image

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "autoscaling"
PREFIX = "/autoscaling"
MODEL, FRAMES, RUNNER = "VisionLanguageModel", "FrameExtractor", "JobRunner"


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> dict[str, object]:
    return {
        "data_dir": str(tmp_path_factory.mktemp("autoscaling")),
        # The load comes from one user: lift its rate limit and its cap on requests at once.
        "accounts": {**FAST_ACCOUNTS, "rate_limit_per_s": 1000, "rate_limit_burst": 1000},
        "admission": {"max_requests_in_flight_per_user": 64},
        "jobs": JOB_SETTINGS,
    }


@pytest.fixture(scope="module")
def token(settings) -> str:
    return create_api_token(settings, "admin", admin=True)[0]


@pytest.fixture(scope="module")
def url(ray_serve: int, tiny_model_dir: Path, settings, token) -> Iterator[str]:
    from ray import serve

    # One request at a time per model replica (no Serve batching): requests queue there.
    model = ModelEntry(profile=autoscaling_profile(tiny_model_dir), max_batch_size=1)
    args = AppArgs(models=[model], story_model=None, settings=settings)
    serve.run(build_graph(args, graph_options()), name=APP, route_prefix=PREFIX)
    try:
        yield f"http://127.0.0.1:{ray_serve}{PREFIX}"
    finally:
        serve.delete(APP)


@pytest.fixture(scope="module")
def timeline(url: str) -> Iterator[Timeline]:
    with Timeline(APP).recording() as recorded:
        yield recorded
    print(recorded.table([FRAMES, MODEL, RUNNER, "Detector"]))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {
        "image": make_image(root / "small.jpg", "jpeg", 96, 64),
        # Decode-heavy, model-light: ~1900 720p frames decoded for 32 tiny ones.
        "video": decode_heavy_video(root),
        "job_video": make_astronaut_video(root / "job.mp4", frames=90),
    }


def test_an_idle_job_runner_scales_to_zero(timeline: Timeline) -> None:
    # initial_replicas=1 looks at the database once; no backlog: down to zero.
    timeline.wait_for(RUNNER, lambda n: n == 0, 30, "scaled to zero")


def test_the_model_scales_out_and_back_under_describe_requests(
    url: str, token: str, timeline: Timeline, media: dict[str, Path]
) -> None:
    steps = [(2, 3), (12, 3)]
    result = ramp(timeline, url, token, media["image"], steps, "describe", until=(MODEL, 2, 60))
    assert not result.errors and result.ok
    timeline.wait_for(MODEL, lambda n: n == 1, 30, "scaled back to 1")
    assert max(timeline.counts(MODEL, "describe x12")) >= 2, timeline.table()
    assert set(timeline.counts(FRAMES)) == {1}, timeline.table()


def test_the_frame_extractor_scales_under_decode_heavy_requests(
    url: str, token: str, timeline: Timeline, media: dict[str, Path]
) -> None:
    fields = DECODE_HEAVY_FIELDS
    result = ramp(
        timeline, url, token, media["video"], [(6, 3)], "decode", fields, until=(FRAMES, 2, 60)
    )
    assert not result.errors and result.ok
    timeline.wait_for(FRAMES, lambda n: n == 1, 30, "scaled back to 1")
    assert max(timeline.counts(FRAMES, "decode x6")) >= 2, timeline.table()
    assert set(timeline.counts(MODEL, "decode x6")) == {1}, timeline.table()


def test_job_runners_follow_the_backlog_from_zero_and_back(
    url: str, token: str, timeline: Timeline, media: dict[str, Path]
) -> None:
    assert timeline.sample().replicas[RUNNER] == 0
    input_url = upload(url, token, media["job_video"])
    timeline.phase = "jobs"
    ids = submit_jobs(url, token, input_url, count=6, infer_fps=10)
    # The Ingress's wake() call, queued at zero replicas, is Serve's cold-start signal.
    timeline.wait_for(RUNNER, lambda n: n >= 1, 30, "woke up")
    timeline.wait_for(RUNNER, lambda n: n == 2, 30, "scaled out on the backlog")
    timeline.wait_for(
        RUNNER, lambda _: all(s != 1 for s in job_statuses(url, token, ids)), 90, "drained"
    )
    timeline.phase = "idle"
    assert job_statuses(url, token, ids) == [0] * len(ids)
    timeline.wait_for(RUNNER, lambda n: n == 0, 30, "scaled back to zero")
