"""The status body of ``GET /videoinfer/`` (and of callbacks).

``status`` is ``0`` for succeeded (with ``output_signed_url``), ``1`` for queued or
running (with progress), and above 1 for a job that ended without results: ``2``
failed, ``3`` cancelled, each with a stable ``error_code`` and a message.

Object keys double as URL paths: ``uploads/<name>`` is served at ``/uploads/<name>``,
``results/<job id>.json`` at ``/results/<job id>.json``, each with the signature in
the query string. With the S3 store the URLs are S3's own presigned ones instead.
"""

from __future__ import annotations

from typing import Any

from serve_app.jobs.context import JobsContext
from serve_app.jobs.store.records import JobRecord
from serve_app.jobs.store.tables import JobStatus

STATUS_CODES: dict[JobStatus, int] = {
    JobStatus.SUCCEEDED: 0,
    JobStatus.QUEUED: 1,
    JobStatus.RUNNING: 1,
    JobStatus.FAILED: 2,
    JobStatus.CANCELLED: 3,
}

MESSAGES: dict[JobStatus, str] = {
    JobStatus.SUCCEEDED: "Job succeeded; download the results from output_signed_url.",
    JobStatus.QUEUED: "Job is queued.",
    JobStatus.RUNNING: "Job is running.",
    JobStatus.FAILED: "Job failed.",
    JobStatus.CANCELLED: "Job was cancelled.",
}


def status_body(job: JobRecord, output_signed_url: str | None = None) -> dict[str, Any]:
    """What a client sees of ``job``."""
    total = job.frames_total
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": STATUS_CODES[job.status],
        "job_status": job.status.value,
        "message": MESSAGES[job.status],
        "success": job.status is JobStatus.SUCCEEDED,
        "infer_fps": job.infer_fps,
        "models": [m.model_dump() for m in job.models],
        "frames_done": job.frames_done,
        "frames_total": total,
        "progress": round(job.frames_done / total, 4) if total else 0.0,
        "attempt": job.attempt,
        "credits_charged": job.credits_charged,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if job.status is JobStatus.SUCCEEDED:
        body["output_signed_url"] = output_signed_url
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        body["error_code"] = job.error_code
        body["error_message"] = job.error_message
        body["message"] = f"{MESSAGES[job.status]} {job.error_message or ''}".strip()
    return body


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


def public_status(ctx: JobsContext, record: JobRecord, base_url: str | None) -> dict[str, Any]:
    """``record``'s status body with a fresh ``output_signed_url`` when it has results."""
    url = None
    if record.result_key:
        url = object_url(
            ctx, base_url, record.result_key, "GET", record.user_id, ctx.jobs.result_url_ttl_s
        )
    return status_body(record, url)
