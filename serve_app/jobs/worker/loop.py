"""The job worker loop: requeue expired leases, claim queued jobs, run them.

One loop per ``JobRunner`` replica (or per test). It claims up to
``concurrent_jobs`` jobs at a time, wakes early when :meth:`JobWorker.wake` is called
(after a submit), and otherwise polls every ``poll_interval_s``. Expired leases are
requeued on start and on every poll, so after a restart of the whole service no job
stays ``running``: its lease runs out and another claim picks it up. At the same
cadence the worker counts the jobs per state for the ``serve_app_jobs`` gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from serve_app.jobs.context import JobsContext
from serve_app.jobs.worker.dispatch import Executor
from serve_app.observability import metrics

logger = logging.getLogger(__name__)


def worker_id() -> str:
    """A name for this worker in ``lease_owner`` (host, pid and a random tail)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobWorker:
    def __init__(self, ctx: JobsContext, executor: Executor, owner: str | None = None) -> None:
        self.ctx = ctx
        self.executor = executor
        self.owner = owner or worker_id()
        self._wake = asyncio.Event()
        self._stopping = False
        self._active: set[asyncio.Task[object]] = set()

    def wake(self) -> None:
        """Look for queued jobs now instead of at the next poll."""
        self._wake.set()

    @property
    def active_jobs(self) -> int:
        """Jobs this worker is running now."""
        return len(self._active)

    async def sweep(self) -> None:
        requeued, failed = await asyncio.to_thread(self.ctx.store.requeue_expired)
        if requeued or failed:
            logger.warning("requeued %d jobs with expired leases; %d failed", requeued, failed)

    async def publish_counts(self) -> dict[str, int]:
        """Count the jobs per state and publish them as the ``serve_app_jobs`` gauge."""
        counts = await asyncio.to_thread(self.ctx.store.counts)
        metrics.set_job_counts(counts)
        return counts

    async def claim_available(self) -> int:
        """Start queued jobs while there is room; returns how many started."""
        started = 0
        while len(self._active) < self.ctx.jobs.concurrent_jobs and not self._stopping:
            job = await asyncio.to_thread(self.ctx.store.claim, self.owner, self.ctx.jobs.lease_s)
            if job is None:
                break
            logger.info("claimed job %s (attempt %d)", job.id, job.attempt)
            task: asyncio.Task[object] = asyncio.ensure_future(self.executor.execute(job))
            self._active.add(task)
            task.add_done_callback(self._finished)
            started += 1
        return started

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._active.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a job task crashed", exc_info=task.exception())
        self._wake.set()  # room for another job

    async def run_forever(self) -> None:
        """Poll until :meth:`stop`; database errors are logged and retried.

        Expired leases are swept, and the jobs per state counted for the metrics, on
        start and then every ``min(lease_s / 2, 10)`` s.
        """
        sweep_every = min(self.ctx.jobs.lease_s / 2, 10.0)
        next_sweep = 0.0
        while not self._stopping:
            self._wake.clear()
            try:
                sweep = time.monotonic() >= next_sweep
                if sweep:
                    await self.sweep()
                    next_sweep = time.monotonic() + sweep_every
                await self.claim_available()
                if sweep:
                    await self.publish_counts()
            except Exception:
                logger.warning("job worker poll failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.ctx.jobs.poll_interval_s)

    async def drain(self) -> None:
        """Claim and finish every job available now (tests and scripts)."""
        await self.sweep()
        while await self.claim_available() or self._active:
            await asyncio.gather(*list(self._active), return_exceptions=True)

    async def stop(self) -> None:
        """Stop claiming; running jobs go back to the queue for another worker."""
        self._stopping = True
        self._wake.set()
        for task in list(self._active):
            task.cancel()
        await asyncio.gather(*list(self._active), return_exceptions=True)
