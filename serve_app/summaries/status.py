"""What a client sees of a summary job: its status, progress, ETA and (partial) result.

``chunks_done``/``chunks_total`` are the job row's ``frames_done``/``frames_total``
(a summary job counts chunks there). While the job runs, ``result`` holds the chunks
stored so far, with ``chapters`` empty and ``summary``, ``sampling`` null; once it has
succeeded, the whole stored document.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from serve_app.jobs.context import JobsContext
from serve_app.jobs.store.records import JobRecord
from serve_app.jobs.store.tables import JobStatus
from serve_app.storage.orm import utcnow
from serve_app.summaries.results import ChunkResult
from serve_app.summaries.settings import SummarySettings
from serve_app.summaries.spec import SummaryParams

#: ``kind`` of summary jobs in ``video_jobs``.
KIND = "summary"


def eta_seconds(
    record: JobRecord, settings: SummarySettings, now: dt.datetime | None = None
) -> float | None:
    """Seconds until the chunks are done, at the pace of this attempt so far.

    None while nothing is known (queued, or not planned yet); 0 once finished.
    """
    if record.status.finished:
        return 0.0
    total, done = record.frames_total, record.frames_done
    if record.status is not JobStatus.RUNNING or total is None:
        return None
    remaining = max(0, total - done)
    if done == 0 or record.started_at is None:
        return round(remaining * settings.assumed_seconds_per_chunk, 1)
    elapsed = ((now or utcnow()) - record.started_at).total_seconds()
    return round(remaining * max(elapsed, 0.0) / done, 1)


def partial_result(ctx: JobsContext, record: JobRecord) -> dict[str, Any]:
    """The result so far: stored chunks, in order (see the module docstring)."""
    chunks: list[ChunkResult] = [json.loads(p) for _, p in ctx.store.parts(record.id)]
    params = SummaryParams.model_validate_json(record.params_json or "{}")
    return {
        "job_id": record.id,
        "clip": {"start_s": params.request.start_s, "end_s": params.request.end_s},
        "sampling": None,
        "chunks": chunks,
        "chapters": [],
        "summary": None,
        "language": params.language,
        "tokens": {
            "input": sum(c["tokens"]["input"] for c in chunks),
            "output": sum(c["tokens"]["output"] for c in chunks),
        },
    }


def stored_result(ctx: JobsContext, record: JobRecord) -> dict[str, Any]:
    """The final document of a succeeded job."""
    assert record.result_key is not None
    document: dict[str, Any] = json.loads(ctx.blobs.read_bytes(record.result_key))
    return document


def summary_status(
    ctx: JobsContext, settings: SummarySettings, record: JobRecord, with_result: bool = True
) -> dict[str, Any]:
    """The status body of ``GET /api/video_summaries/{job_id}``."""
    total = record.frames_total
    body: dict[str, Any] = {
        "job_id": record.id,
        "job_status": record.status.value,
        "chunks_done": record.frames_done,
        "chunks_total": total,
        "progress": round(record.frames_done / total, 4) if total else 0.0,
        "eta_s": eta_seconds(record, settings),
        "attempt": record.attempt,
        "credits_charged": record.credits_charged,
        "created_at": record.created_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "error_code": record.error_code,
        "error_message": record.error_message,
    }
    if with_result:
        succeeded = record.status is JobStatus.SUCCEEDED and record.result_key
        body["result"] = stored_result(ctx, record) if succeeded else partial_result(ctx, record)
    return body
