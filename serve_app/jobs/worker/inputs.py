"""A job's input video as a local file: the upload in place, downloaded, or fetched.

A fetched or downloaded copy goes to the spool directory, named per attempt, and is
removed when the job lets go of it (:func:`serve_app.jobs.inputs.local_video`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from serve_app.errors import NotFound
from serve_app.jobs.context import JobsContext
from serve_app.jobs.inputs import local_video
from serve_app.jobs.store.records import JobRecord


@contextlib.asynccontextmanager
async def job_input(ctx: JobsContext, job: JobRecord) -> AsyncIterator[Path]:
    """A local file with the job's video (downloaded or fetched when needed)."""
    async with local_video(
        ctx,
        job.input_key,
        None if job.input_key else job.input_url,
        f"job-{job.id}-{job.attempt}.input",
        lambda: NotFound("the uploaded video no longer exists"),
    ) as path:
        yield path
