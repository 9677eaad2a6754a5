"""A job's video as a local file: a blob in place, a blob downloaded, or a URL fetched.

Used by the job worker (for the run) and by the summaries' submit and preflight (to
probe a video before anything is stored). Copies go to the spool directory and are
removed on exit; a fetch goes through the SSRF-safe client of the context
(:mod:`serve_app.net.fetch`), within its size and time limits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from serve_app.errors import NotFound, ServeAppError
from serve_app.jobs.context import JobsContext


@contextlib.asynccontextmanager
async def local_video(
    ctx: JobsContext,
    key: str | None,
    url: str | None,
    spool_name: str,
    missing: Callable[[], ServeAppError],
) -> AsyncIterator[Path]:
    """The blob ``key`` (in place when the store is local), else ``url`` fetched.

    Raises ``missing()`` when there is no blob at ``key``.
    """
    if key is not None:
        local = ctx.blobs.local_path(key)
        if local is not None:
            if not local.is_file():
                raise missing()
            yield local
            return
    spool = ctx.settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / spool_name
    try:
        if key is not None:
            try:
                await asyncio.to_thread(ctx.blobs.download_to, key, path)
            except NotFound:
                raise missing() from None
        else:
            assert url is not None
            await asyncio.to_thread(_fetch, ctx, url, path)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _fetch(ctx: JobsContext, url: str, path: Path) -> None:
    with path.open("wb") as out:
        ctx.http.fetch_to(url, out)
