"""How much summary work waits, and how fast it goes: for preflight ETAs.

Read-only queries over ``video_jobs`` (like :mod:`serve_app.jobs.submit.listing`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from serve_app.jobs.store.tables import JobRow, JobStatus
from serve_app.storage.db import Database
from serve_app.summaries.status import KIND

#: Finished jobs the pace is averaged over.
RECENT_JOBS = 20


@dataclass(frozen=True)
class Backlog:
    """Chunks still to caption in queued and running summary jobs.

    ``unplanned_jobs`` are queued jobs whose chunk count is not known yet (a URL input).
    """

    chunks: int
    unplanned_jobs: int


def summary_backlog(database: Database) -> Backlog:
    active = (JobRow.kind == KIND, JobRow.status.in_(("queued", "running")))
    with database.transaction() as session:
        remaining = session.scalar(
            select(func.coalesce(func.sum(JobRow.frames_total - JobRow.frames_done), 0)).where(
                *active, JobRow.frames_total.is_not(None)
            )
        )
        unplanned = session.scalar(
            select(func.count()).where(*active, JobRow.frames_total.is_(None))
        )
    return Backlog(chunks=int(remaining or 0), unplanned_jobs=int(unplanned or 0))


def seconds_per_chunk(database: Database, default: float) -> float:
    """Mean wall time per chunk of the last :data:`RECENT_JOBS` succeeded summaries."""
    query = (
        select(JobRow.started_at, JobRow.finished_at, JobRow.frames_total)
        .where(
            JobRow.kind == KIND,
            JobRow.status == JobStatus.SUCCEEDED.value,
            JobRow.frames_total > 0,
            JobRow.started_at.is_not(None),
        )
        .order_by(JobRow.finished_at.desc())
        .limit(RECENT_JOBS)
    )
    with database.transaction() as session:
        rows = session.execute(query).all()
    paces = [
        (finished - started).total_seconds() / total
        for started, finished, total in rows
        if started is not None and finished is not None and total
    ]
    return sum(paces) / len(paces) if paces else default
