"""A summary request's video as a local file, for probing at submit and preflight."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from serve_app.errors import InvalidRequest, NotFound
from serve_app.jobs.context import JobsContext


@contextlib.asynccontextmanager
async def local_copy(ctx: JobsContext, key: str | None, url: str) -> AsyncIterator[Path]:
    """The blob ``key`` (in place when the store is local), else ``url`` fetched.

    Copies go to the spool directory and are removed on exit. A fetch obeys the
    SSRF guard and the size and time limits of ``jobs.fetch``.

    Raises:
        InvalidRequest: nothing has been uploaded at ``key`` yet.
    """
    if key is not None:
        local = ctx.blobs.local_path(key)
        if local is not None:
            if not local.is_file():
                raise InvalidRequest("nothing has been uploaded to input_url yet")
            yield local
            return
    spool = ctx.settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"summary-probe-{uuid.uuid4().hex}.input"
    try:
        if key is not None:
            try:
                await asyncio.to_thread(ctx.blobs.download_to, key, path)
            except NotFound:
                raise InvalidRequest("nothing has been uploaded to input_url yet") from None
        else:
            await asyncio.to_thread(_fetch, ctx, url, path)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _fetch(ctx: JobsContext, url: str, path: Path) -> None:
    with path.open("wb") as out:
        ctx.http.fetch_to(url, out)
