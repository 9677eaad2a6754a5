"""Several async streams as one: each item tagged with its stream's index, as it comes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import TypeVar

T = TypeVar("T")


async def merge_streams(
    streams: Sequence[AsyncGenerator[T, None]],
) -> AsyncGenerator[tuple[int, T | None], None]:
    """Items of ``streams`` in arrival order as ``(index, item)``; ``(index, None)`` when
    stream ``index`` ends. An error of any stream is raised here.

    Closing the merged stream (or an error) cancels the pending reads and closes every
    stream, so each one's own cleanup (e.g. aborting a generation) runs.
    """
    reads: dict[asyncio.Future[T], int] = {}
    try:
        for i, stream in enumerate(streams):
            reads[asyncio.ensure_future(anext(stream))] = i
        while reads:
            done, _ = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
            for read in sorted(done, key=reads.__getitem__):
                i = reads.pop(read)
                try:
                    item = read.result()
                except StopAsyncIteration:
                    yield i, None
                    continue
                yield i, item
                reads[asyncio.ensure_future(anext(streams[i]))] = i
    finally:
        for read in reads:
            read.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
        for stream in streams:
            with contextlib.suppress(Exception):
                await stream.aclose()
