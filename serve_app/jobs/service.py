"""What the ``/videoinfer/`` routes do: signed uploads, submit, status, cancel, results.

Object keys double as URL paths: ``uploads/<name>`` is served at ``/uploads/<name>``,
``results/<job id>.json`` at ``/results/<job id>.json``, each with the signature in
the query string. With the S3 store the URLs are S3's own presigned ones instead.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterable
from dataclasses import replace
from pathlib import PurePath
from typing import Any, BinaryIO

from serve_app.accounts.users import User
from serve_app.errors import InvalidRequest, MediaTooLarge, NotFound, PermissionDenied
from serve_app.jobs.billing import estimate_frames, job_cost
from serve_app.jobs.callbacks import deliver
from serve_app.jobs.context import JobsContext
from serve_app.jobs.inference import vlm_profile
from serve_app.jobs.netguard import parse_target
from serve_app.jobs.records import JobRecord, NewJob
from serve_app.jobs.spec import JobRequest, models_to_json
from serve_app.jobs.status import status_body
from serve_app.media.detect import check_extension, detect_media_type
from serve_app.media.frames import MediaKind
from serve_app.media.probe import probe_video
from serve_app.storage.blob import check_key
from serve_app.storage.signed_urls import query_params

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
#: The tail of one of our signed upload URLs, whatever the host and route prefix.
_OWN_UPLOAD = re.compile(r"/(uploads/[A-Za-z0-9][A-Za-z0-9._-]{0,127})$")
INFER_FPS_TOO_HIGH = "infer_fps_too_high"
#: Callback deliveries in flight (a reference keeps each task alive until it ends).
_background: set[asyncio.Task[None]] = set()


def object_url(
    ctx: JobsContext, base_url: str | None, key: str, method: str, user_id: int, ttl_s: int
) -> str | None:
    """A signed URL for ``key`` (S3's own, or the service's under ``base_url``)."""
    presigned = ctx.blobs.presigned_url(key, "GET" if method == "GET" else "PUT", ttl_s)
    if presigned is not None:
        return presigned
    base = ctx.jobs.public_base_url or base_url
    if base is None:
        return None
    params = ctx.signer.sign(method, key, user_id, ttl_s)
    return f"{base.rstrip('/')}/{key}?{params.query()}"


def upload_url(ctx: JobsContext, user: User, file_name: str, base_url: str) -> str:
    """A new signed upload URL for a video called ``file_name`` (extension checked)."""
    suffix = PurePath(file_name.replace("\\", "/")).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise InvalidRequest(f"file_name must end in one of {', '.join(VIDEO_EXTENSIONS)}")
    key = f"uploads/{user.id}-{uuid.uuid4().hex}{suffix}"
    url = object_url(ctx, base_url, key, "PUT", user.id, ctx.jobs.upload_url_ttl_s)
    assert url is not None
    return url


def upload_limit(ctx: JobsContext) -> int:
    settings = ctx.settings
    return min(
        ctx.jobs.max_upload_bytes, settings.media.max_video_bytes, settings.max_request_bytes
    )


def verify_upload(ctx: JobsContext, key: str, params: dict[str, str]) -> int:
    """The uploader's user id. Raises PermissionDenied (403) for a bad signature."""
    return ctx.signer.verify("PUT", check_key(key), params)


async def receive_upload(
    ctx: JobsContext, key: str, chunks: AsyncIterable[bytes], declared: int | None
) -> int:
    """Stream an upload into the blob store: video content only, size-capped.

    Raises:
        MediaTooLarge: over the limit (by ``Content-Length`` or while streaming).
        UnsupportedMedia: not a video, or content that does not fit the extension.
    """
    limit = upload_limit(ctx)
    if declared is not None and declared > limit:
        raise MediaTooLarge(f"upload is {declared} bytes; the limit is {limit} bytes")

    def check(head: bytes) -> None:
        detected = detect_media_type(head)
        if detected.kind is not MediaKind.VIDEO:
            raise InvalidRequest(f"expected a video, got a {detected.format} image")
        check_extension(key, detected)

    return await ctx.blobs.put_stream(key, chunks, limit, check)


def open_result(ctx: JobsContext, key: str, params: dict[str, str]) -> BinaryIO:
    """The results file a signed GET URL names. Raises PermissionDenied, NotFound."""
    ctx.signer.verify("GET", check_key(key), params)
    if not key.startswith("results/"):
        raise NotFound("no such object")
    return ctx.blobs.open(key)


def _own_upload(ctx: JobsContext, user: User, url: str) -> str | None:
    """The blob key when ``url`` is one of our upload URLs (checked), else None."""
    key = ctx.blobs.key_for_url(url)
    if key is not None:
        owner = key.removeprefix("uploads/").split("-", 1)[0]
        if not key.startswith("uploads/") or owner != str(user.id):
            raise PermissionDenied("input_url is an upload URL of another user")
        return key
    path = url.split("?", 1)[0].split("#", 1)[0]
    match = _OWN_UPLOAD.search(path)
    params = query_params(url)
    if match is None or "sig" not in params:
        return None
    key = match.group(1)
    if ctx.signer.verify("PUT", key, params) != user.id:
        raise PermissionDenied("input_url is an upload URL of another user")
    return key


async def submit(ctx: JobsContext, user: User, request: JobRequest) -> dict[str, Any]:
    """Check and store a job; reserve its credits when the input can be probed here.

    Raises:
        InvalidRequest, UnknownModel: bad fps, models, URLs; PermissionDenied: someone
        else's upload; InsufficientCredits: the estimate exceeds the balance;
        MediaRejected, MediaTooLarge, UnsupportedMedia: a bad upload.
    """
    jobs = ctx.jobs
    if not jobs.min_infer_fps <= request.infer_fps <= jobs.max_infer_fps:
        raise InvalidRequest(
            f"infer_fps must be between {jobs.min_infer_fps:g} and {jobs.max_infer_fps:g}"
        )
    if len(request.models) > jobs.max_models_per_job:
        raise InvalidRequest(f"at most {jobs.max_models_per_job} models per job")
    for spec in request.models:
        entry = ctx.catalog.resolve(spec)
        if entry.inference_type == "vlm":
            vlm_profile(entry, ctx.profiles, ctx.default_model)
    key = _own_upload(ctx, user, request.input_url)
    if key is None:
        parse_target(request.input_url)
    if request.callback_url is not None:
        parse_target(request.callback_url)
    job_id = str(uuid.uuid4())
    job = NewJob(
        id=job_id,
        user_id=user.id,
        infer_fps=request.infer_fps,
        models_json=models_to_json(request.models),
        max_attempts=jobs.max_attempts,
        billable=not user.is_admin,
        input_key=key,
        input_url=None if key else request.input_url,
        callback_url=request.callback_url,
        callback_secret=secrets.token_hex(24) if request.callback_url else None,
    )
    cost = 0
    local = ctx.blobs.local_path(key) if key else None
    if local is not None:
        if not local.is_file():
            raise InvalidRequest("nothing has been uploaded to input_url yet")
        info = await asyncio.to_thread(probe_video, local, ctx.settings.media)
        frames = estimate_frames(info.duration_s, info.frame_count, request.infer_fps)
        if frames > jobs.max_frames_per_job:
            raise MediaTooLarge(
                f"the job would process {frames} frames; the limit is {jobs.max_frames_per_job}"
            )
        if request.infer_fps > info.fps + 1e-6:
            job = _failed(job, request.infer_fps, info.fps)
        elif job.billable:
            cost = job_cost(jobs, request.models, frames)
        job = replace(job, frames_total=frames)
    record = await asyncio.to_thread(ctx.store.create, job, cost=cost, reason=f"video job {job_id}")
    if ctx.wake is not None and record.error_code is None:
        try:
            ctx.wake()
        except Exception:
            logger.warning("could not wake the job runner; it will poll", exc_info=True)
    body: dict[str, Any] = {"job_id": job_id, "message": _submitted(record)}
    if record.callback_secret:
        body["callback_secret"] = record.callback_secret
    return body


def infer_fps_message(infer_fps: float, video_fps: float) -> str:
    return (
        f"infer_fps {infer_fps:g} is above the video's frame rate ({video_fps:.3f} fps); "
        "use an infer_fps at or below it"
    )


def _failed(job: NewJob, infer_fps: float, video_fps: float) -> NewJob:
    return replace(
        job, error_code=INFER_FPS_TOO_HIGH, error_message=infer_fps_message(infer_fps, video_fps)
    )


def _submitted(record: JobRecord) -> str:
    if record.error_code:
        return f"Job failed: {record.error_message}"
    return "Job submitted; poll GET /videoinfer/?job_id=<job_id> for its status."


def job_status(ctx: JobsContext, user: User, job_id: str, base_url: str | None) -> dict[str, Any]:
    """The status body of one of ``user``'s jobs. Raises NotFound."""
    return public_status(ctx, ctx.store.get(job_id, user.id), base_url)


def public_status(ctx: JobsContext, record: JobRecord, base_url: str | None) -> dict[str, Any]:
    """``record``'s status body with a fresh ``output_signed_url`` when it has results."""
    url = None
    if record.result_key:
        url = object_url(
            ctx, base_url, record.result_key, "GET", record.user_id, ctx.jobs.result_url_ttl_s
        )
    return status_body(record, url)


async def cancel(ctx: JobsContext, user: User, job_id: str, base_url: str | None) -> dict[str, Any]:
    """Cancel one of ``user``'s jobs (credits released) and post its callback."""
    record = await asyncio.to_thread(ctx.store.cancel, job_id, user.id)
    body = public_status(ctx, record, base_url)
    if record.callback_url and record.callback_secret and record.callback_state == "pending":
        task = asyncio.get_running_loop().create_task(send_callback(ctx, record, body))
        _background.add(task)
        task.add_done_callback(_background.discard)
    return body


async def send_callback(ctx: JobsContext, record: JobRecord, body: dict[str, Any]) -> None:
    """Deliver ``body`` to the job's callback URL and record the outcome."""
    assert record.callback_url and record.callback_secret
    delivered = await deliver(
        ctx.http,
        record.callback_url,
        record.callback_secret,
        body,
        attempts=ctx.jobs.callback_attempts,
        backoff_s=ctx.jobs.callback_backoff_s,
    )
    await asyncio.to_thread(
        ctx.store.set_callback_state, record.id, "delivered" if delivered else "failed"
    )
