"""A summary request's video as a local file, for probing at submit and preflight."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from serve_app.errors import InvalidRequest
from serve_app.jobs.context import JobsContext
from serve_app.jobs.inputs import local_video


@contextlib.asynccontextmanager
async def local_copy(ctx: JobsContext, key: str | None, url: str) -> AsyncIterator[Path]:
    """The blob ``key`` (in place when the store is local), else ``url`` fetched.

    Raises:
        InvalidRequest: nothing has been uploaded at ``key`` yet.
    """
    async with local_video(
        ctx,
        key,
        None if key else url,
        f"summary-probe-{uuid.uuid4().hex}.input",
        lambda: InvalidRequest("nothing has been uploaded to input_url yet"),
    ) as path:
        yield path
