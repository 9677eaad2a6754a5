"""Decode a job's frames in a worker thread, ahead of the models, with bounded memory."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator
from pathlib import Path

from serve_app.media.limits import MediaLimits
from serve_app.media.probe import VideoInfo
from serve_app.media.stream import FrameChunk, FramePlan, iter_frames
from serve_app.observability import metrics

_END = object()


async def decoded_chunks(
    path: Path,
    info: VideoInfo,
    plan: FramePlan,
    batch_frames: int,
    limits: MediaLimits,
    prefetch: int = 2,
) -> AsyncGenerator[FrameChunk, None]:
    """Yield planned frames in batches while the next ones decode in a thread.

    At most ``prefetch`` decoded batches wait in memory. Leaving the loop early stops
    the decoder thread at its next batch. The decoder gets a thread of its own, not one
    of the event loop's default executor, which it would hold for the whole job.
    Frames handed on are counted in ``serve_app_frames_decoded{kind="job"}``.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def put(item: object) -> None:
        if not stop.is_set():
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def produce() -> None:
        try:
            for chunk in iter_frames(path, info, plan, batch_frames, limits):
                if stop.is_set():
                    return
                put(chunk)
            put(_END)
        except BaseException as exc:
            put(exc)

    worker = threading.Thread(target=produce, name="job-decoder", daemon=True)
    worker.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, FrameChunk)
            metrics.record_frames_decoded("job", len(item.frame_indices))
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting for room
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            await asyncio.sleep(0.01)
