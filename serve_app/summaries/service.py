"""The long-video summaries use case: preflight, submit, status, list, cancel.

The job itself runs in the job runner (:class:`~serve_app.summaries.executor.
SummaryExecutor`); events and exports are :mod:`.events` and :mod:`.exports`.
Submit checks everything it can before storing anything: the model, the frames per
chunk against its budget, the language, the chunk length, the input URL (the SSRF
guard, or one of the caller's own signed upload URLs) and, when the upload can be
read here, the clip, the chunk count and the cost against ``max_credits`` and the
balance. A URL input is planned by the worker, which checks the same limits before
it reserves anything.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from serve_app.accounts.users import User
from serve_app.errors import InvalidRequest, OverBudget, UnknownModel
from serve_app.jobs.context import JobsContext
from serve_app.jobs.store.records import JobRecord, NewJob
from serve_app.jobs.submit.listing import DEFAULT_LIMIT, recent_jobs
from serve_app.jobs.submit.service import bind_upload, deliver_later, own_upload
from serve_app.media.probe import probe_video
from serve_app.media.stream import index_video
from serve_app.story.languages import resolve_language
from serve_app.summaries.backlog import seconds_per_chunk
from serve_app.summaries.inputs import local_copy
from serve_app.summaries.plan import SummaryPlan, frames_per_chunk, plan_summary, video_duration
from serve_app.summaries.pricing import Estimate, estimate, frame_size
from serve_app.summaries.settings import SummarySettings
from serve_app.summaries.spec import SummaryParams, SummaryRequest
from serve_app.summaries.status import KIND, summary_status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Planned:
    """A request planned against its video: chunks, cost, and what was probed."""

    plan: SummaryPlan
    estimate: Estimate
    duration_s: float
    source_fps: float


@dataclass(frozen=True)
class Summaries:
    """Summary jobs of :attr:`jobs` (the shared job machinery) under :attr:`settings`."""

    jobs: JobsContext
    settings: SummarySettings
    #: Whether the server transcribes speech (``settings.speech``; the job runner's).
    speech: bool = False

    # ---- checks --------------------------------------------------------------------

    def resolve(self, request: SummaryRequest) -> SummaryParams:
        """``request`` checked and resolved. Raises InvalidRequest, UnknownModel."""
        profiles = self.jobs.profiles
        name = request.model or self.jobs.default_model
        if name is None or name not in profiles:
            raise UnknownModel(f"unknown model {name!r}; models: {sorted(profiles)}")
        settings = self.settings
        if not settings.min_chunk_s <= request.chunk_s <= settings.max_chunk_s:
            raise InvalidRequest(
                f"chunk_s must be between {settings.min_chunk_s:g} and {settings.max_chunk_s:g}"
            )
        per_chunk = frames_per_chunk(request, profiles[name].pixels.max_frames)
        language = resolve_language(request.language).code if request.language else None
        if request.audio == "transcribe" and not self.speech:
            raise InvalidRequest(
                "audio 'transcribe': speech recognition is not enabled on this server "
                "(settings.speech.backend); use 'auto' or 'off'"
            )
        return SummaryParams(
            request=request,
            model=name,
            frames_per_chunk=per_chunk,
            language=language,
            transcribe=self.speech and request.audio != "off",
        )

    async def _plan(self, params: SummaryParams, path: Any, billable: bool) -> Planned:
        """Probe and index the video at ``path`` and plan ``params`` over it."""
        limits = self.jobs.settings.media
        info = await asyncio.to_thread(probe_video, path, limits)
        timeline = await asyncio.to_thread(index_video, path, info, limits)
        duration = video_duration(timeline.timestamps, info.duration_s, info.fps)
        plan = plan_summary(timeline.timestamps, duration, params.request, params.frames_per_chunk)
        if len(plan.chunks) > self.settings.max_chunks_per_job:
            raise InvalidRequest(
                f"the clip makes {len(plan.chunks)} chunks; the limit is "
                f"{self.settings.max_chunks_per_job} (use longer chunks or a shorter clip)"
            )
        pixels = self.jobs.profiles[params.model].pixels
        size = frame_size(info.height, info.width, params.frames_per_chunk, pixels)
        return Planned(plan, estimate(self.settings, plan, size, billable), duration, info.fps)

    @staticmethod
    def _within_budget(request: SummaryRequest, credits: int) -> None:
        if request.max_credits is not None and credits > request.max_credits:
            raise OverBudget(
                f"the summary is estimated at {credits} credits; max_credits is "
                f"{request.max_credits}"
            )

    # ---- routes --------------------------------------------------------------------

    async def preflight(self, user: User, request: SummaryRequest) -> dict[str, Any]:
        """What submitting ``request`` would do: chunks, frames, tokens, credits, ETA."""
        params = self.resolve(request)
        key = own_upload(self.jobs, user, request.input_url)
        if key is None:
            await asyncio.to_thread(self.jobs.http.check, request.input_url)
        async with local_copy(self.jobs, key, request.input_url) as path:
            planned = await self._plan(params, path, billable=not user.is_admin)
        database = self.jobs.store.database
        backlog = await asyncio.to_thread(self.jobs.store.backlog, KIND)
        pace = await asyncio.to_thread(
            seconds_per_chunk, database, self.settings.assumed_seconds_per_chunk
        )
        found = planned.estimate
        plan = planned.plan
        return {
            "chunks": found.chunks,
            "frames": found.frames,
            "frames_per_chunk": plan.frames_per_chunk,
            "duration_s": round(planned.duration_s, 3),
            "source_fps": round(planned.source_fps, 4),
            "clip": {"start_s": round(plan.clip_start, 3), "end_s": round(plan.clip_end, 3)},
            "effective_fps": round(plan.effective_fps, 4),
            "estimated_visual_tokens": found.visual_tokens,
            "estimated_output_tokens": found.output_tokens,
            "estimated_credits": found.credits,
            "within_max_credits": request.max_credits is None
            or found.credits <= request.max_credits,
            "backlog_chunks": backlog.frames,
            "seconds_per_chunk": round(pace, 3),
            "eta_s": round((backlog.frames + found.chunks) * pace, 1),
        }

    async def submit(self, user: User, request: SummaryRequest) -> dict[str, Any]:
        """Store a summary job (credits reserved when its cost is known here).

        Raises:
            InvalidRequest, UnknownModel, UrlRefused, PermissionDenied: bad requests.
            OverBudget (402): the estimate exceeds ``max_credits``.
            InsufficientCredits (402): the estimate exceeds the balance.
        """
        params = self.resolve(request)
        jobs = self.jobs
        key = own_upload(jobs, user, request.input_url)
        if key is None:
            await asyncio.to_thread(jobs.http.check, request.input_url)
        if request.callback_url is not None:
            await asyncio.to_thread(jobs.http.check, request.callback_url)
        job_id = str(uuid.uuid4())
        bound = await bind_upload(jobs, key, job_id) if key else None
        try:
            record, credits = await self._create(user, params, job_id, bound)
        except BaseException:
            if bound is not None:
                await asyncio.to_thread(jobs.blobs.delete, bound)
            raise
        if jobs.wake is not None:
            try:
                jobs.wake()
            except Exception:
                logger.warning("could not wake the job runner; it will poll", exc_info=True)
        body: dict[str, Any] = {
            "job_id": job_id,
            "estimated_credits": credits,
            "status_url": f"/api/video_summaries/{job_id}",
            "events_url": f"/api/video_summaries/{job_id}/events",
        }
        if record.callback_secret:
            body["callback_secret"] = record.callback_secret
        return body

    async def _create(
        self, user: User, params: SummaryParams, job_id: str, key: str | None
    ) -> tuple[JobRecord, int | None]:
        request = params.request
        cost, chunks = 0, None
        estimated: int | None = None
        local = self.jobs.blobs.local_path(key) if key else None
        if local is not None:
            planned = await self._plan(params, local, billable=not user.is_admin)
            estimated = cost = planned.estimate.credits
            chunks = planned.estimate.chunks
            self._within_budget(request, cost)
        job = NewJob(
            id=job_id,
            user_id=user.id,
            kind=KIND,
            params_json=params.model_dump_json(),
            infer_fps=0.0,
            models_json="[]",
            max_attempts=self.jobs.jobs.max_attempts,
            billable=not user.is_admin,
            input_key=key,
            input_url=None if key else request.input_url,
            callback_url=request.callback_url,
            callback_secret=secrets.token_hex(24) if request.callback_url else None,
            frames_total=chunks,
        )
        record = await asyncio.to_thread(
            self.jobs.store.create, job, cost=cost, reason=f"video summary {job_id}"
        )
        return record, estimated

    def status(self, user: User, job_id: str) -> dict[str, Any]:
        """The status and (partial) result of one of ``user``'s summaries."""
        record = self.jobs.store.get(job_id, user.id, KIND)
        return summary_status(self.jobs, self.settings, record)

    def record(self, user: User, job_id: str) -> JobRecord:
        """One of ``user``'s summary jobs. Raises NotFound."""
        return self.jobs.store.get(job_id, user.id, KIND)

    def list(self, user: User, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        """``user``'s summaries, newest first, without results."""
        records = recent_jobs(self.jobs.store.database, user.id, limit, kind=KIND)
        items = []
        for record in records:
            body = summary_status(self.jobs, self.settings, record, with_result=False)
            params = SummaryParams.model_validate_json(record.params_json or "{}")
            body["input"] = "upload" if record.input_key else record.input_url
            body["language"] = params.language
            items.append(body)
        return {"summaries": items}

    async def cancel(self, user: User, job_id: str) -> dict[str, Any]:
        """Cancel one of ``user``'s summaries (credits released) and post its callback."""
        record = await asyncio.to_thread(self.jobs.store.cancel, job_id, user.id, KIND)
        body = summary_status(self.jobs, self.settings, record, with_result=False)
        if record.callback_url and record.callback_secret and record.callback_state == "pending":
            deliver_later(self.jobs, record, body)
        return body
