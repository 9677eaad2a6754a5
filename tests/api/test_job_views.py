"""``GET /api/jobs`` and ``GET /videoinfer/frame`` in process, with the real face detector.

The web page draws a job's boxes on the frames this route returns, so the main test
runs a real job over the astronaut video and checks that each box lies on the face in
the returned JPEG's own pixels.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User
from serve_app.config import Settings
from serve_app.frame_models.backends import LocalDetector
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.registry import DetectorRegistry
from serve_app.http.app import create_app
from serve_app.jobs.context import JobsContext
from serve_app.jobs.settings import JobSettings
from serve_app.jobs.worker.executor import JobExecutor
from serve_app.jobs.worker.frame_models import FrameModels
from serve_app.jobs.worker.loop import JobWorker
from serve_app.pipeline.describe import DescribePipeline
from tests.api.conftest import tiny_profile
from tests.api.job_env import Env
from tests.jobs.conftest import make_user
from tests.jobs.support import FAST_JOBS
from tests.support.databases import FAST_SETTINGS, SESSION_KEY
from tests.support.job_videos import astronaut, astronaut_frame, expected_face
from tests.support.story_engines import ScriptedEngine

ROOT = Path(__file__).resolve().parents[2]
FACE = {"model_id": "face-detection", "model_version": "1", "inference_type": "object-detection"}
FRAMES = 60  # the astronaut video: 2 s at 30 fps, 480x360
SUMMARY_KEYS = {
    "job_id",
    "status",
    "state",
    "created_at",
    "updated_at",
    "finished_at",
    "infer_fps",
    "models",
    "frames_done",
    "frames_total",
    "error_code",
    "error_message",
}


@pytest.fixture
async def env(database, tmp_path) -> AsyncIterator[Env]:
    accounts = AccountsContext.build(
        database, FAST_SETTINGS.model_copy(update={"rate_limit_burst": 10_000}), SESSION_KEY
    )
    settings = Settings(data_dir=tmp_path / "data", jobs=JobSettings(**FAST_JOBS))
    catalog = FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")
    jobs = JobsContext.build(settings, database, catalog)
    worker = JobWorker(
        jobs, JobExecutor(jobs, FrameModels(LocalDetector(DetectorRegistry(catalog))))
    )
    profile = tiny_profile(tmp_path / "unused")  # analysis is not used here
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, ScriptedEngine())}, profile.name, settings.media
    )
    app = create_app(pipeline, settings, accounts, jobs=jobs)
    user = make_user(accounts, credits=1000)
    token = accounts.tokens.create(user.id, "t").token
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield Env(c, accounts, jobs, worker, user, token)


async def submit_job(env: Env, video: bytes, user: User | None = None, **body: object) -> str:
    """Upload ``video`` by signed URL and submit a face-detection job; the job id."""
    params = env.key(user)
    r = await env.client.post(
        "/video_upload_signed_url/", params=params, json={"file_name": "clip.mp4"}
    )
    url = r.json()["signed_url"]
    assert (await env.client.put(url, content=video)).status_code == 200
    job = {"input_url": url, "infer_fps": 5, "models": [FACE], **body}
    r = await env.client.post("/videoinfer/", params=params, json=job)
    assert r.status_code == 200, r.text
    return str(r.json()["job_id"])


async def results(env: Env, job_id: str) -> dict:
    r = await env.client.get("/videoinfer/", params={**env.key(), "job_id": job_id})
    assert r.json()["status"] == 0, r.text
    return (await env.client.get(r.json()["output_signed_url"])).json()


async def frame(env: Env, job_id: str, offset: object, **params: str) -> httpx.Response:
    query = {**env.key(), "job_id": job_id, "frame_offset": offset, **params}
    return await env.client.get("/videoinfer/frame", params=query)


def detect_faces(rgb: np.ndarray) -> list[tuple[float, float, float]]:
    """Centre x, centre y and side of each face OpenCV's frontal cascade finds."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    return [(x + w / 2, y + h / 2, float(w)) for x, y, w, h in boxes]


async def test_result_boxes_lie_on_the_face_in_the_frames(env: Env, video: bytes) -> None:
    job_id = await submit_job(env, video)
    await env.worker.drain()
    doc = await results(env, job_id)
    assert doc["frame_offsets"] == list(range(0, FRAMES, 6))
    photo = astronaut()
    for offset, entry in zip(doc["frame_offsets"], doc["face-detection"], strict=True):
        if offset % 12:
            continue  # every other sampled frame is enough
        r = await frame(env, job_id, offset)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"].startswith("private")
        size = (int(r.headers["x-frame-width"]), int(r.headers["x-frame-height"]))
        assert size == (entry["image"]["width"], entry["image"]["height"]) == (480, 360)
        assert float(r.headers["x-frame-time"]) == pytest.approx(offset / 30, abs=1e-4)
        rgb = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
        assert rgb.shape == (360, 480, 3)
        # the JPEG is this frame of the video (the same geometry, not a neighbour)
        drawn = astronaut_frame(photo, offset, FRAMES, 480, 360).astype(np.int16)
        assert np.abs(rgb.astype(np.int16) - drawn).mean() < 4
        (box,) = entry["predictions"]
        x, y, side = expected_face(offset, FRAMES)
        assert abs(box["x"] - x) < 5 and abs(box["y"] - y) < 5 and abs(box["width"] - side) < 8
        (found,) = detect_faces(rgb)  # the face, found afresh in the returned image
        assert abs(found[0] - box["x"]) < 4 and abs(found[1] - box["y"]) < 4
        assert abs(found[2] - box["width"]) < 6


async def test_frame_errors(env: Env, video: bytes) -> None:
    job_id = await submit_job(env, video)
    assert (await frame(env, job_id, 59)).status_code == 200  # queued jobs have frames too
    for offset, words in ((-1, "frame_offset"), (60, "last frame (59)"), ("x", "frame_offset")):
        r = await frame(env, job_id, offset)
        assert r.status_code == 400 and words in r.json()["detail"], r.text
    other = make_user(env.accounts)
    r = await env.client.get(
        "/videoinfer/frame", params={**env.key(other), "job_id": job_id, "frame_offset": 0}
    )
    assert r.status_code == 404 and r.json() == {"detail": "no such job"}
    unknown = await frame(env, "00000000-0000-0000-0000-000000000000", 0)
    assert unknown.status_code == 404
    assert (await frame(env, "not-a-job", 0)).status_code == 400
    no_key = await env.client.get("/videoinfer/frame", params={"job_id": job_id, "frame_offset": 0})
    assert no_key.status_code == 401
    bearer = await env.client.get(
        "/videoinfer/frame",
        params={"job_id": job_id, "frame_offset": 0},
        headers={"Authorization": f"Bearer {env.token}"},
    )
    assert bearer.status_code == 200
    key = env.jobs.store.get(job_id).input_key
    assert key is not None and env.jobs.blobs.delete(key)
    gone = await frame(env, job_id, 0)
    assert gone.status_code == 410 and "no longer exists" in gone.json()["detail"]


async def test_job_list(env: Env, video: bytes) -> None:
    first = await submit_job(env, video)
    second = await submit_job(env, video)
    third = await submit_job(env, video, infer_fps=45)  # above the video's rate: failed
    cancel = await env.client.delete("/videoinfer/", params={**env.key(), "job_id": second})
    assert cancel.status_code == 200
    listed = await env.client.get("/api/jobs", params=env.key())
    assert listed.status_code == 200
    jobs = listed.json()["jobs"]
    assert [j["job_id"] for j in jobs] == [third, second, first]
    assert all(set(j) == SUMMARY_KEYS for j in jobs)
    assert [(j["status"], j["state"]) for j in jobs] == [
        (2, "failed"),
        (3, "cancelled"),
        (1, "queued"),
    ]
    assert jobs[0]["error_code"] == "infer_fps_too_high" and jobs[0]["infer_fps"] == 45
    assert jobs[2]["models"] == ["face-detection"] and jobs[2]["frames_total"] is None

    await env.worker.drain()
    bearer = {"Authorization": f"Bearer {env.token}"}
    latest = await env.client.get("/api/jobs", params={"limit": 3}, headers=bearer)
    done = latest.json()["jobs"][2]
    assert (done["job_id"], done["status"], done["state"]) == (first, 0, "succeeded")
    assert (done["frames_done"], done["frames_total"]) == (10, 10)
    assert done["finished_at"] is not None and done["updated_at"] >= done["created_at"]
    one = await env.client.get("/api/jobs", params={**env.key(), "limit": 1})
    assert [j["job_id"] for j in one.json()["jobs"]] == [third]

    for limit in (0, 101, "x"):
        r = await env.client.get("/api/jobs", params={**env.key(), "limit": limit})
        assert r.status_code == 400 and "limit" in r.json()["detail"], r.text
    other = await env.client.get("/api/jobs", params=env.key(make_user(env.accounts)))
    assert other.json() == {"jobs": []}
    assert (await env.client.get("/api/jobs")).status_code == 401


def test_openapi_documents_the_job_views(env: Env) -> None:
    import warnings

    app = env.client._transport.app  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = app.openapi()["paths"]
    listing = paths["/api/jobs"]["get"]
    assert {"200", "400", "401"} <= set(listing["responses"])
    frames = paths["/videoinfer/frame"]["get"]
    assert set(frames["responses"]) >= {"200", "400", "401", "404", "410", "422"}
    assert "image/jpeg" in frames["responses"]["200"]["content"]
    params = {p["name"] for p in frames["parameters"]}
    assert {"job_id", "frame_offset"} <= params
