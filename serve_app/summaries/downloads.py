"""A summary as a file: the JSON document, SRT or WebVTT (partial while it runs)."""

from __future__ import annotations

from typing import Any

from serve_app.accounts.users import User
from serve_app.jobs.store.tables import JobStatus
from serve_app.summaries.exports import Export, render
from serve_app.summaries.service import Summaries
from serve_app.summaries.status import partial_result, stored_result


def export(
    summaries: Summaries,
    user: User,
    job_id: str,
    fmt: str,
    track: str = "captions",
    variant: str = "source",
) -> Export:
    """One of ``user``'s summaries as ``fmt`` (see :func:`~serve_app.summaries.exports.
    render`). Raises NotFound, InvalidRequest."""
    record = summaries.record(user, job_id)
    document: Any
    if record.status is JobStatus.SUCCEEDED and record.result_key:
        document = stored_result(summaries.jobs, record)
    else:
        document = partial_result(summaries.jobs, record)
    return render(document, fmt, variant, track)
