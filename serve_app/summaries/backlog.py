"""How fast summary work goes, for preflight ETAs (how much waits is
:meth:`JobStore.backlog`).

A read-only query over ``video_jobs`` (like :mod:`serve_app.jobs.submit.listing`).
"""

from __future__ import annotations

from sqlalchemy import select

from serve_app.jobs.store.tables import JobRow, JobStatus
from serve_app.storage.db import Database
from serve_app.summaries.status import KIND

#: Finished jobs the pace is averaged over.
RECENT_JOBS = 20


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
