"""Run one claimed job: input → probe → sample at ``infer_fps`` → models → results.

The runner holds the job's attempt number and writes nothing without it: progress,
reservations and the final status are fenced by the store, so an attempt that lost
its lease (or whose job was cancelled) learns it from a ``False``, stops at the next
batch and leaves the job to whoever owns it now. While it works, a heartbeat renews
the lease. The results blob key is derived from the job id, so every attempt writes
the same single file. Credits: reserved at submit (or here, once the video is
probed), captured for the frames actually processed on success, released on failure
or cancel (by the store, in the same transaction as the status change).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from serve_app.errors import (
    BackendUnavailable,
    InsufficientCredits,
    InvalidRequest,
    MediaRejected,
    MediaTooLarge,
    NotFound,
    ServeAppError,
    UnsupportedMedia,
)
from serve_app.frame_models.resolved import FrameModel, resolve_model
from serve_app.frame_models.results import FrameResult
from serve_app.frame_models.spec import ModelSpec
from serve_app.jobs import rules
from serve_app.jobs.callbacks import send_callback
from serve_app.jobs.context import JobsContext
from serve_app.jobs.status import public_status
from serve_app.jobs.store.records import JobRecord
from serve_app.jobs.store.tables import JobStatus
from serve_app.jobs.worker.frame_models import FrameModelRunner
from serve_app.jobs.worker.frames import decoded_chunks
from serve_app.jobs.worker.inputs import job_input
from serve_app.jobs.worker.results import ResultsBuilder, result_key
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import VideoInfo, probe_video
from serve_app.media.stream import FrameChunk, FramePlan, plan_frames
from serve_app.net.fetch import FetchFailed
from serve_app.net.netguard import UrlRefused
from serve_app.threads import run_to_completion

logger = logging.getLogger(__name__)

#: Stable error codes of failed jobs, by the domain error behind them (first match).
ERROR_CODES: tuple[tuple[type[ServeAppError], str], ...] = (
    (UrlRefused, "input_url_refused"),
    (FetchFailed, "input_fetch_failed"),
    (NotFound, "input_not_found"),
    (MediaTooLarge, "input_too_large"),
    (UnsupportedMedia, "unsupported_media"),
    (MediaRejected, "invalid_media"),
    (InsufficientCredits, "insufficient_credits"),
    (InvalidRequest, "invalid_request"),
)
MODEL_CALL_TRIES = 3
T = TypeVar("T")


async def while_available(call: Callable[[], Awaitable[T]], what: str) -> T:
    """``call()``, tried :data:`MODEL_CALL_TRIES` times while it raises
    :class:`BackendUnavailable` (backing off 1, 2 s...); then :class:`Transient`, which
    requeues the job for another attempt."""
    for attempt in range(MODEL_CALL_TRIES):
        try:
            return await call()
        except BackendUnavailable as exc:
            if attempt + 1 == MODEL_CALL_TRIES:
                raise Transient(f"{what} is unavailable: {exc.detail}") from None
            await asyncio.sleep(min(2.0**attempt, 5.0))
    raise AssertionError("unreachable")


class JobFailure(Exception):
    """The job cannot succeed; fail it with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Transient(Exception):
    """Worth another attempt (a model backend was down)."""


def error_code(exc: ServeAppError) -> str:
    for cls, code in ERROR_CODES:
        if isinstance(exc, cls):
            return code
    return "job_error"


class AttemptRunner(abc.ABC):
    """One attempt of a claimed job: heartbeat, failure codes, requeue, callback.

    Subclasses implement :meth:`_run` (the work of one job kind) and return the
    final status they wrote, or None when the attempt lost its job on the way.
    """

    def __init__(self, ctx: JobsContext) -> None:
        self.ctx = ctx
        self.jobs = ctx.jobs
        self.limits: MediaLimits = ctx.settings.media.model_copy(
            update={"decode_timeout_s": ctx.jobs.decode_timeout_s}
        )

    @abc.abstractmethod
    async def _run(self, job: JobRecord, lost: asyncio.Event) -> JobStatus | None: ...

    async def execute(self, job: JobRecord) -> JobStatus | None:
        """Run ``job`` (claimed at ``job.attempt``); the final status this attempt wrote."""
        store = self.ctx.store
        lost = asyncio.Event()
        beat = asyncio.ensure_future(self._heartbeat(job, lost))
        outcome: JobStatus | None = None
        try:
            outcome = await self._run(job, lost)
        except asyncio.CancelledError:
            await run_to_completion(lambda: store.requeue(job.id, job.attempt))
            raise
        except JobFailure as failure:
            outcome = await self._fail(job, failure.code, failure.message)
        except Transient as exc:
            if job.attempt < job.max_attempts:
                await asyncio.to_thread(store.requeue, job.id, job.attempt)
            else:
                outcome = await self._fail(job, "model_unavailable", str(exc))
        except ServeAppError as exc:
            outcome = await self._fail(job, error_code(exc), exc.detail)
        except Exception:
            logger.exception("job %s attempt %d crashed", job.id, job.attempt)
            if job.attempt < job.max_attempts:
                await asyncio.to_thread(store.requeue, job.id, job.attempt)
            else:
                outcome = await self._fail(job, "internal_error", "the job failed unexpectedly")
        finally:
            beat.cancel()
        if outcome is not None and job.callback_url:
            await self._callback(job.id)
        return outcome

    async def _fail(self, job: JobRecord, code: str, message: str) -> JobStatus | None:
        logger.info("job %s failed: %s (%s)", job.id, code, message)
        ok = await asyncio.to_thread(self.ctx.store.fail, job.id, job.attempt, code, message)
        return JobStatus.FAILED if ok else None

    async def _heartbeat(self, job: JobRecord, lost: asyncio.Event) -> None:
        while not lost.is_set():
            await asyncio.sleep(self.jobs.heartbeat_s)
            try:
                ok = await asyncio.to_thread(
                    self.ctx.store.renew, job.id, job.attempt, self.jobs.lease_s
                )
            except Exception:
                logger.warning("renewing the lease of job %s failed", job.id, exc_info=True)
                continue
            if not ok:
                lost.set()

    def callback_body(self, record: JobRecord) -> dict[str, Any]:
        """What the job's callback POSTs: its public status."""
        return public_status(self.ctx, record, None)

    async def _callback(self, job_id: str) -> None:
        try:
            record = await asyncio.to_thread(self.ctx.store.get, job_id)
            if record.callback_state == "pending" and record.callback_url:
                await send_callback(self.ctx, record, self.callback_body(record))
        except Exception:
            logger.warning("callback of job %s failed", job_id, exc_info=True)


class JobExecutor(AttemptRunner):
    """Runs claimed ``infer`` jobs with ``models``; see the module docstring."""

    def __init__(self, ctx: JobsContext, models: FrameModelRunner) -> None:
        super().__init__(ctx)
        self.models = models

    async def _run(self, job: JobRecord, lost: asyncio.Event) -> JobStatus | None:
        store, jobs = self.ctx.store, self.jobs
        models = job.models
        async with job_input(self.ctx, job) as path:
            info = await asyncio.to_thread(probe_video, path, self.limits)
            too_fast = rules.infer_fps_problem(job.infer_fps, info.fps)
            if too_fast is not None:
                raise JobFailure(rules.INFER_FPS_TOO_HIGH, too_fast)
            plan = await asyncio.to_thread(
                plan_frames, path, info, job.infer_fps, self.limits, jobs.max_frame_side
            )
            too_many = rules.frame_limit_problem(jobs, plan.count)
            if too_many is not None:
                raise JobFailure(rules.TOO_MANY_FRAMES, too_many)
            cost = rules.job_cost(jobs, models, plan.count) if job.billable else 0
            fenced = cost > 0 and not await asyncio.to_thread(
                store.reserve, job.id, job.attempt, job.user_id, cost
            )
            if fenced:
                return None
            if not await asyncio.to_thread(
                store.progress, job.id, job.attempt, 0, plan.count, jobs.lease_s
            ):
                return None
            results = ResultsBuilder(plan, [m.model_id for m in models])
            ready = [self._resolve(spec) for spec in models]
            if not await self._infer_all(job, path, info, plan, ready, results, lost):
                return None
        key = result_key(job.id)
        await asyncio.to_thread(self.ctx.blobs.put_bytes, key, results.to_json())
        if await asyncio.to_thread(store.complete, job.id, job.attempt, key, cost):
            return JobStatus.SUCCEEDED
        logger.warning("job %s attempt %d finished after losing its lease", job.id, job.attempt)
        return None

    async def _infer_all(
        self,
        job: JobRecord,
        path: Path,
        info: VideoInfo,
        plan: FramePlan,
        models: list[FrameModel],
        results: ResultsBuilder,
        lost: asyncio.Event,
    ) -> bool:
        """Every batch through every model, ``batches_in_flight`` at a time, in order.

        False when the attempt lost its job (lease, fencing or cancel) on the way.
        """
        size = (info.width, info.height)
        pending: deque[tuple[FrameChunk, asyncio.Task[list[list[FrameResult]]]]] = deque()
        done = 0

        async def infer(chunk: FrameChunk) -> list[list[FrameResult]]:
            calls = (self._call(model, chunk, size) for model in models)
            return list(await asyncio.gather(*calls))

        async def record() -> bool:
            nonlocal done
            chunk, task = pending.popleft()
            for model, entries in zip(models, await task, strict=True):
                results.add(model.model_id, chunk.frame_indices, entries)
            done += len(chunk.frame_indices)
            ok = await asyncio.to_thread(
                self.ctx.store.progress, job.id, job.attempt, done, plan.count, self.jobs.lease_s
            )
            if not ok:
                lost.set()
            return ok

        chunks = decoded_chunks(
            path, info, plan, self.jobs.batch_frames, self.limits, self.jobs.batches_in_flight
        )
        try:
            async for chunk in chunks:
                if lost.is_set():
                    return False
                pending.append((chunk, asyncio.ensure_future(infer(chunk))))
                if len(pending) >= self.jobs.batches_in_flight and not await record():
                    return False
            while pending:
                if not await record():
                    return False
            return not lost.is_set()
        finally:
            for _, task in pending:
                task.cancel()
            await chunks.aclose()

    def _resolve(self, spec: ModelSpec) -> FrameModel:
        """``spec`` resolved against the catalog, once per job."""
        ctx = self.ctx
        return resolve_model(ctx.catalog, spec, ctx.profiles, ctx.default_model)

    async def _call(
        self, model: FrameModel, chunk: FrameChunk, size: tuple[int, int]
    ) -> list[FrameResult]:
        """One model over one batch, retried while its backend is unavailable."""
        return await while_available(
            lambda: self.models.run(model, chunk.frames, size), f"model {model.model_id}"
        )
