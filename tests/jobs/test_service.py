"""Submit logic that the route tests do not reach: S3 presigned uploads, callbacks."""

from __future__ import annotations

import pytest

from serve_app.config import Settings
from serve_app.errors import PermissionDenied
from serve_app.jobs.context import JobsContext
from serve_app.jobs.spec import JobRequest
from serve_app.jobs.submit.service import submit
from serve_app.jobs.submit.uploads import upload_url
from serve_app.storage.blob import S3BlobStore
from tests.jobs.conftest import make_user
from tests.storage.test_blob import s3_client


async def test_s3_upload_urls_are_submitted_without_a_probe(accounts, tmp_path, catalog) -> None:
    pytest.importorskip("boto3")
    blobs = S3BlobStore("bucket", prefix="svc/", client=s3_client())
    ctx = JobsContext.build(Settings(data_dir=tmp_path), accounts.database, catalog, blobs=blobs)
    owner, other = make_user(accounts, credits=10), make_user(accounts, credits=10)
    url = upload_url(ctx, owner, "clip.mov", "http://ignored/")
    assert url.startswith("https://bucket.s3.amazonaws.com/svc/uploads/") and "X-Amz-" in url
    request = JobRequest(
        input_url=url,
        infer_fps=2,
        models=[{"model_id": "face-detection"}],
        callback_url="https://hooks.example.com/done",
    )
    body = await submit(ctx, owner, request)
    assert len(body["callback_secret"]) == 48
    job = ctx.store.get(body["job_id"])
    assert job.input_key and job.input_key.startswith("uploads/") and job.input_url is None
    assert job.reservation_id is None and job.frames_total is None  # reserved by the runner
    assert accounts.credits.balance(owner.id) == 10
    with pytest.raises(PermissionDenied):
        await submit(ctx, other, request)
