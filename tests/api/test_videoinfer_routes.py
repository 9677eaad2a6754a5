"""The /videoinfer/ routes in process: signed uploads, submit, poll, cancel, download."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.settings import AccountSettings
from serve_app.accounts.users import User
from serve_app.config import Settings
from serve_app.engines.backend import EngineBackend
from serve_app.frame_models.backends import LocalDetector
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.registry import DetectorRegistry
from serve_app.http.app import create_app
from serve_app.jobs.context import JobsContext
from serve_app.jobs.settings import JobSettings
from serve_app.jobs.worker.executor import JobExecutor
from serve_app.jobs.worker.frame_models import FrameModels
from serve_app.jobs.worker.loop import JobWorker
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.describe import DescribePipeline
from tests.api.job_env import Env
from tests.jobs.conftest import make_user
from tests.jobs.support import FAST_JOBS
from tests.support.databases import SESSION_KEY
from tests.support.job_videos import make_astronaut_video
from tests.support.media_files import make_image

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
FACE = {"model_id": "face-detection", "model_version": "1", "inference_type": "object-detection"}
CAPTION = {
    "model_id": "frame-captioner",
    "inference_type": "vlm",
    "inference_params": {"prompt": "What is here?", "max_tokens": 4},
}


@pytest.fixture
async def env(database, tmp_path, tiny_engine) -> AsyncIterator[Env]:
    profile, engine = tiny_engine
    accounts = AccountsContext.build(
        database,
        AccountSettings(argon2_time_cost=1, argon2_memory_kib=8, rate_limit_burst=10_000),
        SESSION_KEY,
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        media=MediaLimits(max_video_bytes=400_000),
        jobs=JobSettings(**FAST_JOBS),
    )
    catalog = FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")
    jobs = JobsContext.build(
        settings, database, catalog, profiles={profile.name: profile}, default_model=profile.name
    )
    models = FrameModels(
        LocalDetector(DetectorRegistry(catalog)), {profile.name: EngineBackend(engine)}
    )
    worker = JobWorker(jobs, JobExecutor(jobs, models))
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine)}, profile.name, settings.media
    )
    app = create_app(pipeline, settings, accounts, jobs=jobs)
    user = make_user(accounts, credits=100)
    token = accounts.tokens.create(user.id, "t").token
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield Env(c, accounts, jobs, worker, user, token)


async def uploaded(env: Env, video: bytes, user: User | None = None) -> str:
    params = env.key(user)
    r = await env.client.post(
        "/video_upload_signed_url/", params=params, json={"file_name": "clip.MP4"}
    )
    assert r.status_code == 200, r.text
    url = r.json()["signed_url"]
    put = await env.client.put(url, content=video)
    assert put.status_code == 200, put.text
    assert put.json()["size"] == len(video)
    return url


async def submit(env: Env, body: dict, user: User | None = None) -> httpx.Response:
    return await env.client.post("/videoinfer/", params=env.key(user), json=body)


async def status(env: Env, job_id: str) -> dict:
    r = await env.client.get("/videoinfer/", params={**env.key(), "job_id": job_id})
    assert r.status_code == 200, r.text
    return r.json()


def blob_files(env: Env) -> list[Path]:
    return [p for p in (env.jobs.settings.data_dir / "blobs").rglob("*") if p.is_file()]


async def test_upload_submit_poll_and_download(env: Env, video: bytes) -> None:
    url = await uploaded(env, video)
    r = await submit(env, {"input_url": url, "infer_fps": 5, "models": [FACE, CAPTION]})
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    assert "message" in r.json() and "callback_secret" not in r.json()
    queued = await status(env, job_id)
    # Unknown until the worker has indexed the video: never an estimate that changes later.
    assert (queued["status"], queued["job_status"], queued["frames_total"]) == (1, "queued", None)
    assert env.accounts.credits.balance(env.user.id) == 100 - 22  # estimate (11 frames) reserved

    await env.worker.drain()
    done = await status(env, job_id)
    assert (done["status"], done["success"], done["frames_done"], done["progress"]) == (
        0,
        True,
        10,
        1.0,
    )
    assert done["credits_charged"] == 20
    assert env.accounts.credits.balance(env.user.id) == 80
    download = await env.client.get(done["output_signed_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    doc = download.json()
    assert doc["frame_offsets"] == list(range(0, 60, 6))
    assert doc["time_offsets"][:3] == [0.0, 0.2, 0.4]
    assert len(doc["face-detection"]) == len(doc["frame-captioner"]) == 10
    caption = doc["frame-captioner"][0]
    assert set(caption) == {"time", "text", "input_tokens", "output_tokens"}
    assert caption["input_tokens"] > 0 and 1 <= caption["output_tokens"] <= 4
    assert doc["face-detection"][0]["predictions"][0]["class"] == "face"


async def test_a_put_after_submit_changes_nothing_the_job_runs_or_bills(
    env: Env, video: bytes, tmp_path: Path
) -> None:
    """Issue 15 item 6, through the routes: the signed URL still takes a longer video."""
    url = await uploaded(env, video)
    r = await submit(env, {"input_url": url, "infer_fps": 5, "models": [FACE]})
    assert r.status_code == 200, r.text
    longer = make_astronaut_video(tmp_path / "longer.mp4", frames=120).read_bytes()
    put = await env.client.put(url, content=longer)
    assert put.status_code == 200 and put.json()["size"] == len(longer) > len(video)
    await env.worker.drain()
    done = await status(env, r.json()["job_id"])
    assert (done["status"], done["frames_done"], done["credits_charged"]) == (0, 10, 10)
    assert len((await env.client.get(done["output_signed_url"])).json()["frame_offsets"]) == 10
    assert env.accounts.credits.balance(env.user.id) == 90


async def test_bearer_tokens_work_too_and_no_token_is_401(env: Env) -> None:
    body = {"file_name": "a.mp4"}
    bearer = {"Authorization": f"Bearer {env.token}"}
    assert (
        await env.client.post("/video_upload_signed_url/", json=body, headers=bearer)
    ).status_code == 200
    assert (await env.client.post("/video_upload_signed_url/", json=body)).status_code == 401
    bad = await env.client.post(
        "/video_upload_signed_url/", params={"api_key": "sa_nope"}, json=body
    )
    assert bad.status_code == 401
    wrong = await env.client.post(
        "/video_upload_signed_url/", params=env.key(), json={"file_name": "a.exe"}
    )
    assert wrong.status_code == 400


async def test_tampered_and_expired_upload_urls_are_403(env: Env, video: bytes) -> None:
    r = await env.client.post(
        "/video_upload_signed_url/", params=env.key(), json={"file_name": "a.mp4"}
    )
    url = r.json()["signed_url"]
    parts = urlsplit(url)
    other_name = parts.path.replace(".mp4", "0.mp4")
    for bad in (
        url.replace("sig=", "sig=A"),
        url.replace("uid=", "uid=9"),
        f"{parts.scheme}://{parts.netloc}{other_name}?{parts.query}",
        url.split("?")[0],
    ):
        assert (await env.client.put(bad, content=video)).status_code == 403
    key = parts.path.lstrip("/")
    expired = env.jobs.signer.sign("PUT", key, env.user.id, ttl_s=-5)
    r = await env.client.put(f"http://test/{key}?{expired.query()}", content=video)
    assert r.status_code == 403 and "expired" in r.json()["detail"]
    assert blob_files(env) == []
    assert (await env.client.post(url, content=video)).status_code == 200  # POST works too


async def test_uploads_over_the_limit_leave_nothing(env: Env, video: bytes) -> None:
    r = await env.client.post(
        "/video_upload_signed_url/", params=env.key(), json={"file_name": "a.mp4"}
    )
    url = r.json()["signed_url"]
    big = video + b"\x00" * (400_001 - len(video))
    assert (await env.client.put(url, content=big)).status_code == 413  # by Content-Length

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    assert (await env.client.put(url, content=stream())).status_code == 413  # while streaming
    assert blob_files(env) == []


async def test_uploads_must_be_videos_that_fit_their_name(env: Env, tmp_path: Path) -> None:
    r = await env.client.post(
        "/video_upload_signed_url/", params=env.key(), json={"file_name": "a.webm"}
    )
    url = r.json()["signed_url"]
    png = make_image(tmp_path / "a.png", "png").read_bytes()
    assert (await env.client.put(url, content=png)).status_code == 400
    mp4 = make_astronaut_video(tmp_path / "v.mp4", frames=2).read_bytes()
    mismatch = await env.client.put(url, content=mp4)
    assert mismatch.status_code == 400 and "extension" in mismatch.json()["detail"]
    assert (await env.client.put(url, content=b"")).status_code == 422
    assert blob_files(env) == []


async def test_submit_validation(env: Env, video: bytes) -> None:
    url = await uploaded(env, video)
    cases = [
        ({"models": [{"model_id": "nope"}]}, 400, "face-detection"),
        ({"infer_fps": 0}, 400, "infer_fps"),
        ({"infer_fps": 100}, 400, "infer_fps"),
        ({"models": [FACE, FACE]}, 400, "once"),
        ({"models": [{**FACE, "inference_params": {"confidence": 5}}]}, 400, "confidence"),
        ({"input_url": "http://127.0.0.1:8000/v.mp4"}, 400, "private"),
        ({"input_url": "http://localhost:8000/v.mp4"}, 400, "resolves to a private"),
        ({"callback_url": "http://localhost/hook"}, 400, "resolves to a private"),
        ({"input_url": "http://2130706433/v.mp4"}, 400, "numeric"),
        ({"input_url": "file:///etc/passwd"}, 400, "http"),
        ({"callback_url": "http://10.0.0.1/hook"}, 400, "private"),
        ({"input_url": url.replace("sig=", "sig=x")}, 403, "signature"),
    ]
    for change, code, words in cases:
        body = {"input_url": url, "infer_fps": 5, "models": [FACE], **change}
        r = await submit(env, body)
        assert r.status_code == code, (change, r.text)
        assert words in r.json()["detail"], (change, r.text)
    other = make_user(env.accounts, credits=100)
    r = await submit(env, {"input_url": url, "models": [FACE]}, user=other)
    assert r.status_code == 403
    empty = await env.client.post(
        "/video_upload_signed_url/", params=env.key(), json={"file_name": "b.mp4"}
    )
    r = await submit(env, {"input_url": empty.json()["signed_url"], "models": [FACE]})
    assert r.status_code == 400 and "uploaded" in r.json()["detail"]
    assert env.accounts.credits.balance(env.user.id) == 100


async def test_infer_fps_above_the_videos_rate_fails_the_job(env: Env, video: bytes) -> None:
    url = await uploaded(env, video)
    r = await submit(env, {"input_url": url, "infer_fps": 45, "models": [FACE]})
    assert r.status_code == 200
    body = await status(env, r.json()["job_id"])
    assert body["status"] == 2 and body["error_code"] == "infer_fps_too_high"
    assert "30.000 fps" in body["error_message"]
    assert env.accounts.credits.balance(env.user.id) == 100


async def test_cancel_releases_credits(env: Env, video: bytes) -> None:
    url = await uploaded(env, video)
    job_id = (await submit(env, {"input_url": url, "infer_fps": 5, "models": [FACE]})).json()[
        "job_id"
    ]
    assert env.accounts.credits.balance(env.user.id) == 89
    params = {**env.key(), "job_id": job_id}
    cancelled = await env.client.delete("/videoinfer/", params=params)
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["error_code"]) == (3, "cancelled")
    assert env.accounts.credits.balance(env.user.id) == 100
    assert (await env.client.delete("/videoinfer/", params=params)).json()["status"] == 3
    await env.worker.drain()  # nothing to run
    assert (await status(env, job_id))["status"] == 3


async def test_jobs_are_private_and_finished_ones_cannot_be_cancelled(
    env: Env, video: bytes
) -> None:
    url = await uploaded(env, video)
    job_id = (await submit(env, {"input_url": url, "models": [FACE]})).json()["job_id"]
    await env.worker.drain()
    other = env.key(make_user(env.accounts))
    assert (
        await env.client.get("/videoinfer/", params={**other, "job_id": job_id})
    ).status_code == 404
    done = await env.client.delete("/videoinfer/", params={**env.key(), "job_id": job_id})
    assert done.status_code == 409
    assert (
        await env.client.get("/videoinfer/", params={**env.key(), "job_id": "x"})
    ).status_code == 400
    result_url = (await status(env, job_id))["output_signed_url"]
    assert (await env.client.get(result_url.replace("sig=", "sig=A"))).status_code == 403
    assert (await env.client.get(result_url.split("?")[0])).status_code == 403
    key = urlsplit(result_url).path.lstrip("/")
    upload_signed = env.jobs.signer.sign("PUT", key, env.user.id, 60)  # wrong method
    assert (await env.client.get(f"http://test/{key}?{upload_signed.query()}")).status_code == 403
    assert json.loads((await env.client.get(result_url)).content)["frame_offsets"][0] == 0


async def test_too_few_credits_is_402(env: Env, video: bytes) -> None:
    url = await uploaded(env, video)
    body = {"input_url": url, "infer_fps": 30, "models": [FACE]}  # 61 frames
    poor = make_user(env.accounts, credits=10)
    token = env.accounts.tokens.create(poor.id, "t").token
    r = await env.client.post("/videoinfer/", params={"api_key": token}, json={**body})
    assert r.status_code == 403  # someone else's upload
    own = await uploaded(env, video, user=poor)
    r = await env.client.post(
        "/videoinfer/", params={"api_key": token}, json={**body, "input_url": own}
    )
    assert r.status_code == 402


async def test_video_routes_spend_the_rate_limit(env: Env) -> None:
    env.accounts.api_limiter.burst = 2  # type: ignore[attr-defined]
    env.accounts.api_limiter.rate_per_s = 0.001  # type: ignore[attr-defined]
    params = {"api_key": env.token, "job_id": "00000000-0000-0000-0000-000000000000"}
    codes = [(await env.client.get("/videoinfer/", params=params)).status_code for _ in range(3)]
    assert codes[-1] == 429


def test_openapi_documents_the_job_routes(env: Env) -> None:
    import warnings

    app = env.client._transport.app  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = app.openapi()["paths"]
    assert set(paths["/uploads/{name}"]) == {"put", "post"}
    assert set(paths["/videoinfer/"]) == {"get", "post", "delete"}
    assert "/video_upload_signed_url/" in paths and "/results/{name}" in paths
