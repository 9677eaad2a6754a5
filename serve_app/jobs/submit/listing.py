"""A user's most recent jobs, newest first (``GET /api/jobs``).

Read-only and separate from :class:`~serve_app.jobs.store.JobStore` (whose writes
carry the fencing logic); rows come back as the same :class:`JobRecord` values, and
``status`` is the public code of ``GET /videoinfer/`` (:data:`STATUS_CODES`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from serve_app.errors import InvalidRequest
from serve_app.jobs.status import STATUS_CODES
from serve_app.jobs.store.records import JobRecord
from serve_app.jobs.store.tables import JobRow
from serve_app.storage.db import Database

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def recent_jobs(
    database: Database, user_id: int, limit: int = DEFAULT_LIMIT, kind: str = "infer"
) -> list[JobRecord]:
    """Up to ``limit`` (1..:data:`MAX_LIMIT`) of ``user_id``'s jobs of ``kind``, newest first.

    Raises:
        InvalidRequest: ``limit`` out of range.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    query = (
        select(JobRow)
        .where(JobRow.user_id == user_id, JobRow.kind == kind)
        .order_by(JobRow.created_at.desc(), JobRow.id.desc())
        .limit(limit)
    )
    with database.transaction() as session:
        return [JobRecord.from_row(row) for row in session.scalars(query)]


def job_summary(job: JobRecord) -> dict[str, Any]:
    """What a job list shows of ``job`` (no URLs, secrets or lease details)."""
    return {
        "job_id": job.id,
        "status": STATUS_CODES[job.status],
        "state": job.status.value,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "infer_fps": job.infer_fps,
        "models": [m.model_id for m in job.models],
        "frames_done": job.frames_done,
        "frames_total": job.frames_total,
        "error_code": job.error_code,
        "error_message": job.error_message,
    }


def list_jobs(database: Database, user_id: int, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """``{"jobs": [...]}``: :func:`job_summary` of each of :func:`recent_jobs`."""
    return {"jobs": [job_summary(job) for job in recent_jobs(database, user_id, limit)]}
