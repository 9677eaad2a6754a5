"""The /videoinfer/ routes with the S3 blob store on moto's server (loopback HTTP).

What a client of the S3 profile sees: the upload URL is S3's own presigned PUT with the
lifetime the service is configured for (``jobs.upload_url_ttl_s`` in X-Amz-Expires),
a plain HTTP PUT to it stores the video in the bucket, the job reads it from there,
and ``output_signed_url`` is a presigned S3 GET (``jobs.result_url_ttl_s``) of the
results. The web pages then allow the bucket's origin in their CSP ``connect-src``.
moto does not enforce the expiry itself (tests/storage/test_s3_server.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.settings import AccountSettings
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
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.describe import DescribePipeline
from serve_app.storage.blob import S3BlobStore
from tests.api.job_env import Env
from tests.jobs.conftest import make_user
from tests.jobs.support import FAST_JOBS
from tests.support.databases import SESSION_KEY
from tests.support.s3_server import s3_client

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
FACE = {"model_id": "face-detection", "model_version": "1", "inference_type": "object-detection"}
UPLOAD_TTL_S, RESULT_TTL_S = 900, 120


@pytest.fixture
async def env(database, tmp_path, tiny_engine, s3_endpoint, s3_bucket) -> AsyncIterator[Env]:
    profile, engine = tiny_engine
    accounts = AccountsContext.build(
        database,
        AccountSettings(argon2_time_cost=1, argon2_memory_kib=8, rate_limit_burst=10_000),
        SESSION_KEY,
    )
    jobs_settings = {
        **FAST_JOBS,
        "upload_url_ttl_s": UPLOAD_TTL_S,
        "result_url_ttl_s": RESULT_TTL_S,
        "blob_store": "s3",
        "s3": {"bucket": s3_bucket, "prefix": "svc/", "endpoint_url": s3_endpoint},
    }
    settings = Settings(
        data_dir=tmp_path / "data",
        media=MediaLimits(max_video_bytes=400_000),
        jobs=JobSettings(**jobs_settings),
    )
    catalog = FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")
    blobs = S3BlobStore(s3_bucket, prefix="svc/", client=s3_client(s3_endpoint))
    jobs = JobsContext.build(settings, database, catalog, blobs=blobs)
    worker = JobWorker(
        jobs, JobExecutor(jobs, FrameModels(LocalDetector(DetectorRegistry(catalog))))
    )
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine)}, profile.name, settings.media
    )
    app = create_app(pipeline, settings, accounts, jobs=jobs)
    user = make_user(accounts, credits=100)
    token = accounts.tokens.create(user.id, "t").token
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield Env(c, accounts, jobs, worker, user, token)


def lifetime(url: str) -> int:
    """The X-Amz-Expires of a presigned URL, checking it was signed just now."""
    query = parse_qs(urlsplit(url).query)
    signed_at = time.mktime(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
    assert abs(signed_at - time.mktime(time.gmtime())) < 60
    assert query["X-Amz-Signature"][0]
    return int(query["X-Amz-Expires"][0])


async def test_upload_to_s3_run_and_download_from_s3(
    env: Env, video: bytes, s3_endpoint: str, s3_bucket: str
) -> None:
    r = await env.client.post(
        "/video_upload_signed_url/", params=env.key(), json={"file_name": "clip.mp4"}
    )
    assert r.status_code == 200, r.text
    url = r.json()["signed_url"]
    assert url.startswith(f"{s3_endpoint}/{s3_bucket}/svc/uploads/")
    assert lifetime(url) == UPLOAD_TTL_S
    assert httpx.put(url, content=video).status_code == 200  # straight to the bucket
    r = await env.client.post(
        "/videoinfer/", params=env.key(), json={"input_url": url, "infer_fps": 5, "models": [FACE]}
    )
    assert r.status_code == 200, r.text
    await env.worker.drain()
    done = await env.client.get("/videoinfer/", params={**env.key(), "job_id": r.json()["job_id"]})
    body = done.json()
    assert (body["status"], body["frames_done"], body["credits_charged"]) == (0, 10, 10)
    result_url = body["output_signed_url"]
    assert result_url.startswith(f"{s3_endpoint}/{s3_bucket}/svc/results/")
    assert lifetime(result_url) == RESULT_TTL_S
    doc = httpx.get(result_url).json()
    assert doc["frame_offsets"] == list(range(0, 60, 6))
    assert doc["face-detection"][0]["predictions"][0]["class"] == "face"


async def test_pages_may_connect_to_the_bucket(env: Env, s3_endpoint: str) -> None:
    login = await env.client.post(
        "/login", json={"username": env.user.username, "password": "a-password"}
    )
    assert login.status_code == 200, login.text
    page = await env.client.get("/ui/jobs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert f"connect-src 'self' {s3_endpoint};" in policy
    assert "default-src 'self';" in policy and "script-src 'self';" in policy
