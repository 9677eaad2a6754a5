"""What the ``/videoinfer/`` routes do with jobs: submit, status, cancel.

Signed upload URLs and results downloads are :mod:`serve_app.jobs.submit.uploads`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from dataclasses import replace
from pathlib import PurePath
from typing import Any

from serve_app.accounts.users import User
from serve_app.errors import InvalidRequest, MediaTooLarge, NotFound, PermissionDenied
from serve_app.frame_models.resolved import resolve_model
from serve_app.jobs import rules
from serve_app.jobs.callbacks import send_callback
from serve_app.jobs.context import JobsContext
from serve_app.jobs.spec import JobRequest, models_to_json
from serve_app.jobs.status import public_status
from serve_app.jobs.store.records import JobRecord, NewJob
from serve_app.media.probe import probe_video
from serve_app.storage.signed_urls import query_params

logger = logging.getLogger(__name__)

#: The tail of one of our signed upload URLs, whatever the host and route prefix.
_OWN_UPLOAD = re.compile(r"/(uploads/[A-Za-z0-9][A-Za-z0-9._-]{0,127})$")
#: Callback deliveries in flight (a reference keeps each task alive until it ends).
_background: set[asyncio.Task[None]] = set()


def own_upload(ctx: JobsContext, user: User, url: str) -> str | None:
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
        InvalidRequest, UnknownModel: bad fps, models, nothing uploaded yet.
        UrlRefused (400): an ``input_url`` or ``callback_url`` the fetcher would refuse.
        PermissionDenied: someone else's upload.
        InsufficientCredits: the estimate exceeds the balance.
        MediaRejected, MediaTooLarge, UnsupportedMedia: a bad upload.
    """
    jobs = ctx.jobs
    rules.check_request(jobs, request.infer_fps, len(request.models))
    for spec in request.models:
        resolve_model(ctx.catalog, spec, ctx.profiles, ctx.default_model)
    upload = own_upload(ctx, user, request.input_url)
    if upload is None:
        await asyncio.to_thread(ctx.http.check, request.input_url)
    if request.callback_url is not None:
        await asyncio.to_thread(ctx.http.check, request.callback_url)
    job_id = str(uuid.uuid4())
    key = await bind_upload(ctx, upload, job_id) if upload else None
    try:
        record = await _create(ctx, user, request, job_id, key)
    except BaseException:
        if key is not None:
            await asyncio.to_thread(ctx.blobs.delete, key)
        raise
    if ctx.wake is not None and record.error_code is None:
        try:
            ctx.wake()
        except Exception:
            logger.warning("could not wake the job runner; it will poll", exc_info=True)
    body: dict[str, Any] = {"job_id": job_id, "message": _submitted(record)}
    if record.callback_secret:
        body["callback_secret"] = record.callback_secret
    return body


async def bind_upload(ctx: JobsContext, upload: str, job_id: str) -> str:
    """Copy the upload to a key of the job's own (``inputs/<job id><ext>``).

    The job reads and is billed for this copy only: its signed upload URL stays valid,
    and whatever is uploaded there later is a new object the job never sees.
    """
    key = f"inputs/{job_id}{PurePath(upload).suffix}"
    try:
        await asyncio.to_thread(ctx.blobs.copy, upload, key)
    except NotFound:
        raise InvalidRequest("nothing has been uploaded to input_url yet") from None
    return key


async def _create(
    ctx: JobsContext, user: User, request: JobRequest, job_id: str, key: str | None
) -> JobRecord:
    """Store the job; with a local input, probe it and reserve the estimated cost."""
    jobs = ctx.jobs
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
        info = await asyncio.to_thread(probe_video, local, ctx.settings.media)
        frames = rules.estimate_frames(info.duration_s, info.frame_count, request.infer_fps)
        too_many = rules.frame_limit_problem(jobs, frames)
        if too_many is not None:
            raise MediaTooLarge(too_many)
        too_fast = rules.infer_fps_problem(request.infer_fps, info.fps)
        if too_fast is not None:
            job = replace(job, error_code=rules.INFER_FPS_TOO_HIGH, error_message=too_fast)
        elif job.billable:
            cost = rules.job_cost(jobs, request.models, frames)
    return await asyncio.to_thread(ctx.store.create, job, cost=cost, reason=f"video job {job_id}")


def _submitted(record: JobRecord) -> str:
    if record.error_code:
        return f"Job failed: {record.error_message}"
    return "Job submitted; poll GET /videoinfer/?job_id=<job_id> for its status."


def job_status(ctx: JobsContext, user: User, job_id: str, base_url: str | None) -> dict[str, Any]:
    """The status body of one of ``user``'s jobs. Raises NotFound."""
    return public_status(ctx, ctx.store.get(job_id, user.id, "infer"), base_url)


async def cancel(ctx: JobsContext, user: User, job_id: str, base_url: str | None) -> dict[str, Any]:
    """Cancel one of ``user``'s jobs (credits released) and post its callback."""
    record = await asyncio.to_thread(ctx.store.cancel, job_id, user.id, "infer")
    body = public_status(ctx, record, base_url)
    if record.callback_url and record.callback_secret and record.callback_state == "pending":
        deliver_later(ctx, record, body)
    return body


def deliver_later(ctx: JobsContext, record: JobRecord, body: dict[str, Any]) -> None:
    """Post ``record``'s callback with ``body`` in the background (the caller goes on)."""
    task = asyncio.get_running_loop().create_task(send_callback(ctx, record, body))
    _background.add(task)
    task.add_done_callback(_background.discard)
