"""Submit logic that the route tests do not reach: S3 presigned uploads, callbacks,
the binding of an upload at submit, input URLs refused before a job is stored."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from serve_app.config import Settings
from serve_app.errors import PermissionDenied
from serve_app.jobs.context import JobsContext
from serve_app.jobs.spec import JobRequest
from serve_app.jobs.store.tables import JobStatus
from serve_app.jobs.submit.service import submit
from serve_app.jobs.submit.uploads import receive_upload, upload_url
from serve_app.jobs.worker.executor import JobExecutor
from serve_app.jobs.worker.results import result_key
from serve_app.net.fetch import FetchPolicy, SafeHttp
from serve_app.net.netguard import UrlRefused, parse_networks
from serve_app.storage.blob import S3BlobStore
from tests.jobs.conftest import FACE, make_user
from tests.jobs.support import FakeModels, jobs_context
from tests.storage.test_blob import FakeS3
from tests.support.job_videos import make_astronaut_video


async def test_s3_upload_urls_are_submitted_without_a_probe(accounts, tmp_path, catalog) -> None:
    pytest.importorskip("boto3")
    fake = FakeS3()
    blobs = S3BlobStore("bucket", prefix="svc/", client=fake)
    ctx = JobsContext.build(Settings(data_dir=tmp_path), accounts.database, catalog, blobs=blobs)
    owner, other = make_user(accounts, credits=10), make_user(accounts, credits=10)
    url = upload_url(ctx, owner, "clip.mov", "http://ignored/")
    assert url.startswith("https://bucket.s3.amazonaws.com/svc/uploads/") and "X-Amz-" in url
    key = blobs.key_for_url(url)
    assert key is not None
    fake.objects["bucket", blobs.object_name(key)] = b"a video"  # the client's PUT
    request = JobRequest(
        input_url=url,
        infer_fps=2,
        models=[{"model_id": "face-detection"}],
        callback_url="https://hooks.example.com/done",
    )
    body = await submit(ctx, owner, request)
    assert len(body["callback_secret"]) == 48
    job = ctx.store.get(body["job_id"])
    assert job.input_key == f"inputs/{job.id}.mov" and job.input_url is None
    assert fake.objects["bucket", f"svc/inputs/{job.id}.mov"] == b"a video"  # bound at submit
    assert job.reservation_id is None and job.frames_total is None  # reserved by the runner
    assert accounts.credits.balance(owner.id) == 10
    with pytest.raises(PermissionDenied):
        await submit(ctx, other, request)


async def _chunks(data: bytes):
    yield data


async def test_a_later_put_to_the_upload_url_changes_nothing_the_job_runs_or_bills(
    accounts, tmp_path, catalog, astronaut_video
) -> None:
    """Issue 15 item 6: the job binds the uploaded object at submit."""
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts, credits=100)
    url = upload_url(ctx, user, "clip.mp4", "http://svc/")
    key = "uploads/" + urlsplit(url).path.rsplit("/", 1)[1]
    await receive_upload(ctx, key, _chunks(astronaut_video.read_bytes()), None)
    body = await submit(ctx, user, JobRequest(input_url=url, infer_fps=5, models=[FACE]))
    assert accounts.credits.balance(user.id) == 100 - 11  # 10 frames estimated as 11

    # The signed PUT URL is still valid: a 4 s video replaces the 2 s one.
    longer = make_astronaut_video(tmp_path / "longer.mp4", frames=120)
    await receive_upload(ctx, key, _chunks(longer.read_bytes()), None)

    job = ctx.store.claim("test", ctx.jobs.lease_s)
    assert job is not None and job.id == body["job_id"]
    assert await JobExecutor(ctx, FakeModels()).execute(job) is JobStatus.SUCCEEDED
    done = ctx.store.get(job.id)
    assert (done.frames_done, done.frames_total, done.credits_charged) == (10, 10, 10)
    doc = json.loads(ctx.blobs.read_bytes(result_key(job.id)))
    assert len(doc["frame_offsets"]) == 10
    assert accounts.credits.balance(user.id) == 90 == accounts.credits.ledger_sum(user.id)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/v.mp4",
        "http://localhost:8000/v.mp4",
        "http://LocalHost/v.mp4",
        "http://127.0.0.1/v.mp4",
        "http://[::1]/v.mp4",
        "http://10.1.2.3/v.mp4",
    ],
)
async def test_loopback_and_private_input_urls_are_refused_at_submit(
    accounts, tmp_path, catalog, url
) -> None:
    """Issue 15 item 11b: refused with 400 at submit (the fetch guard), nothing stored."""
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts, credits=10)
    with pytest.raises(UrlRefused, match="private, loopback or reserved"):
        await submit(ctx, user, JobRequest(input_url=url, models=[FACE]))
    with pytest.raises(UrlRefused, match="private, loopback or reserved"):
        await submit(
            ctx,
            user,
            JobRequest(
                input_url="https://videos.example.com/v.mp4", models=[FACE], callback_url=url
            ),
        )
    assert ctx.store.counts()["queued"] == 0


async def test_networks_the_fetcher_allows_are_accepted_at_submit(
    accounts, tmp_path, catalog
) -> None:
    """The submit check is the fetch guard itself: its allowance applies there too."""
    allowed = parse_networks(["127.0.0.0/8", "::1/128"])
    http = SafeHttp(FetchPolicy(max_bytes=10**6), allowed=allowed)
    ctx = jobs_context(accounts, tmp_path / "data", catalog, http=http)
    user = make_user(accounts)
    for url in ("http://localhost:9/v.mp4", "http://127.0.0.1:9/v.mp4"):
        body = await submit(ctx, user, JobRequest(input_url=url, models=[FACE]))
        assert ctx.store.get(body["job_id"]).input_url == url
