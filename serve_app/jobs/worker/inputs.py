"""A job's input video as a local file: the upload in place, downloaded, or fetched.

A fetched or downloaded copy goes to the spool directory, named per attempt, and is
removed when the job lets go of it. ``input_url`` is fetched through the SSRF-safe
client of the context (:mod:`serve_app.net.fetch`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from serve_app.errors import NotFound
from serve_app.jobs.context import JobsContext
from serve_app.jobs.store.records import JobRecord


@contextlib.asynccontextmanager
async def job_input(ctx: JobsContext, job: JobRecord) -> AsyncIterator[Path]:
    """A local file with the job's video (downloaded or fetched when needed)."""
    blobs = ctx.blobs
    if job.input_key:
        local = blobs.local_path(job.input_key)
        if local is not None:
            if not local.is_file():
                raise NotFound("the uploaded video no longer exists")
            yield local
            return
    spool = ctx.settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"job-{job.id}-{job.attempt}.input"
    try:
        if job.input_key:
            await asyncio.to_thread(blobs.download_to, job.input_key, path)
        else:
            assert job.input_url is not None
            await asyncio.to_thread(_fetch, ctx, job.input_url, path)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _fetch(ctx: JobsContext, url: str, path: Path) -> None:
    with path.open("wb") as out:
        ctx.http.fetch_to(url, out)
