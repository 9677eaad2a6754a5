"""Batch video inference: signed uploads, ``/videoinfer/`` jobs, result downloads.

The shape follows the widely used hosted video-inference API, so its clients work by
changing the base URL. Every route takes ``Authorization: Bearer <token>`` or
``?api_key=<token>``, except the signed upload and result URLs, whose signature is
the credential.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from serve_app.http.api.job_schemas import (
    JobStatusResponse,
    SignedUrlRequest,
    SignedUrlResponse,
    SubmitResponse,
    UploadResponse,
)
from serve_app.http.api.schemas import error_responses
from serve_app.http.context import base_url
from serve_app.http.deps import Accounts, CurrentUserOrApiKey, Jobs
from serve_app.jobs.spec import JobRequest
from serve_app.jobs.submit import service, uploads

router = APIRouter(tags=["video inference"])

JobId = Annotated[
    str,
    Query(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The job_id that POST /videoinfer/ returned.",
    ),
]


@router.post(
    "/video_upload_signed_url/",
    response_model=SignedUrlResponse,
    responses=error_responses({400: "file_name is not a video name", 401: "No valid API token"}),
)
async def video_upload_signed_url(
    body: SignedUrlRequest, user: CurrentUserOrApiKey, jobs: Jobs, request: Request
) -> dict[str, str]:
    """A signed URL to upload one video to (``PUT`` or ``POST`` the raw bytes)."""
    return {"signed_url": uploads.upload_url(jobs, user, body.file_name, base_url(request))}


_UPLOAD_ERRORS = error_responses(
    {
        400: "Not a video, or content that does not fit the extension",
        403: "Missing, tampered or expired signature",
        413: "Over the upload size limit (nothing is kept)",
        429: "Rate limited",
    }
)


@router.put(
    "/uploads/{name}",
    response_model=UploadResponse,
    responses=_UPLOAD_ERRORS,
    operation_id="put_upload",
)
@router.post(
    "/uploads/{name}",
    response_model=UploadResponse,
    responses=_UPLOAD_ERRORS,
    operation_id="post_upload",
)
async def upload_object(name: str, request: Request, jobs: Jobs, accounts: Accounts) -> Any:
    """Store the request body (a video) at a signed upload URL."""
    key = f"uploads/{name}"
    user_id = uploads.verify_upload(jobs, key, dict(request.query_params))
    accounts.api_limiter.hit(f"user:{user_id}")
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    size = await uploads.receive_upload(jobs, key, request.stream(), declared)
    return {"key": key, "size": size}


@router.get(
    "/results/{name}",
    responses=error_responses(
        {403: "Missing, tampered or expired signature", 404: "No such results"}
    ),
)
async def download_results(name: str, request: Request, jobs: Jobs) -> Response:
    """The results JSON of a job (the ``output_signed_url`` of its status)."""
    key = f"results/{name}"
    stream = await asyncio.to_thread(uploads.open_result, jobs, key, dict(request.query_params))
    local = jobs.blobs.local_path(key)
    if local is not None:
        stream.close()
        return FileResponse(local, media_type="application/json")
    return StreamingResponse(iter(lambda: stream.read(1 << 16), b""), media_type="application/json")


@router.post(
    "/videoinfer/",
    response_model=SubmitResponse,
    response_model_exclude_none=True,
    responses=error_responses(
        {
            400: "Bad infer_fps, unknown model, bad inference_params, refused input_url "
            "or callback_url, nothing uploaded yet",
            401: "No valid API token",
            402: "Not enough credits for the estimated frames",
            403: "input_url is someone else's (or an expired) upload URL",
            413: "The video is beyond the size, duration or frame limits",
            422: "The uploaded video is corrupt or cannot be decoded",
            429: "Rate limited",
        }
    ),
)
async def submit_job(body: JobRequest, user: CurrentUserOrApiKey, jobs: Jobs) -> dict[str, Any]:
    """Submit a video inference job; poll ``GET /videoinfer/?job_id=`` for its status."""
    return await service.submit(jobs, user, body)


@router.get(
    "/videoinfer/",
    response_model=JobStatusResponse,
    responses=error_responses({401: "No valid API token", 404: "No such job", 429: "Rate limited"}),
)
def job_status(
    job_id: JobId, user: CurrentUserOrApiKey, jobs: Jobs, request: Request
) -> dict[str, Any]:
    """``status`` 0: succeeded (``output_signed_url``), 1: queued or running (progress),
    2: failed, 3: cancelled (``error_code``, ``error_message``)."""
    return service.job_status(jobs, user, job_id, base_url(request))


@router.delete(
    "/videoinfer/",
    response_model=JobStatusResponse,
    responses=error_responses(
        {401: "No valid API token", 404: "No such job", 409: "The job already finished"}
    ),
)
async def cancel_job(
    job_id: JobId, user: CurrentUserOrApiKey, jobs: Jobs, request: Request
) -> dict[str, Any]:
    """Cancel a queued or running job; its reserved credits are released."""
    return await service.cancel(jobs, user, job_id, base_url(request))
