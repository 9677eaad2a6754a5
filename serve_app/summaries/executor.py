"""Run one claimed summary job: index → plan chunks → caption each → reduce → results.

The video is decoded once, front to back, and only the frames of chunks not yet done;
a chunk goes to the vision model as soon as its last frame is decoded, at most
``chunks_in_flight`` at a time. Decoding waits while that many are in flight, so a
job holds the frames of a bounded number of chunks whatever the video's length, and
the requests waiting on the model's replicas are the backlog its autoscaling sees.

Each captioned chunk is stored (:meth:`JobStore.save_part`, fenced by the attempt)
before the next progress report, so an attempt that dies loses only the chunks in
flight: the next attempt reads the stored ones and skips them. Credits are reserved
for the whole job when it is planned and captured once, on success (one ledger
capture, whatever the number of attempts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from serve_app.engines.backend import ModelBackend
from serve_app.engines.base import GenerationRequest, GenerationResult
from serve_app.jobs.context import JobsContext
from serve_app.jobs.store.records import JobRecord
from serve_app.jobs.store.tables import JobStatus
from serve_app.jobs.worker.executor import AttemptRunner, JobFailure, while_available
from serve_app.jobs.worker.frames import decoded_chunks
from serve_app.jobs.worker.inputs import job_input
from serve_app.jobs.worker.results import result_key
from serve_app.media.probe import VideoInfo, probe_video
from serve_app.media.stream import VideoTimeline, index_video
from serve_app.speech.backend import SpeechBackend
from serve_app.story.languages import Language, resolve_language
from serve_app.summaries.captions import caption_request, chunk_result
from serve_app.summaries.plan import ChunkPlan, SummaryPlan, plan_summary, video_duration
from serve_app.summaries.pricing import frame_size, summary_cost
from serve_app.summaries.reduce import reduce_captions, translate_texts
from serve_app.summaries.results import ChunkResult, Clip, SummaryResult
from serve_app.summaries.settings import SummarySettings
from serve_app.summaries.spec import SummaryParams
from serve_app.summaries.speech import ChunkSpeech, chunk_speech
from serve_app.summaries.status import summary_status

logger = logging.getLogger(__name__)

#: Error codes of summary jobs (besides those of :mod:`serve_app.jobs.worker.executor`).
TOO_MANY_CHUNKS = "too_many_chunks"
OVER_MAX_CREDITS = "over_max_credits"
MODEL_GONE = "model_not_configured"


class SummaryExecutor(AttemptRunner):
    """Runs ``summary`` jobs; see the module docstring.

    Args:
        vision: the vision model's backend per configured model name.
        text: the text model that writes chapters, summaries and translations.
        context_tokens: the prompt budget of one reduce call.
        speech: transcribes each chunk's audio for jobs that ask for it (None: such
            jobs record the audio as skipped).
    """

    def __init__(
        self,
        ctx: JobsContext,
        settings: SummarySettings,
        vision: Mapping[str, ModelBackend],
        text: ModelBackend,
        context_tokens: int,
        speech: SpeechBackend | None = None,
    ) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.vision = dict(vision)
        self.text = text
        self.context_tokens = context_tokens
        self.speech = speech

    def callback_body(self, record: JobRecord) -> dict[str, Any]:
        return summary_status(self.ctx, self.settings, record, with_result=False)

    async def _run(self, job: JobRecord, lost: asyncio.Event) -> JobStatus | None:
        store = self.ctx.store
        assert job.params_json is not None
        params = SummaryParams.model_validate_json(job.params_json)
        backend = self.vision.get(params.model)
        profile = self.ctx.profiles.get(params.model)
        if backend is None or profile is None:
            raise JobFailure(MODEL_GONE, f"the model {params.model!r} is no longer served")
        language = resolve_language(params.language) if params.language else None
        async with job_input(self.ctx, job) as path:
            info = await asyncio.to_thread(probe_video, path, self.limits)
            timeline = await asyncio.to_thread(index_video, path, info, self.limits)
            duration = video_duration(timeline.timestamps, info.duration_s, info.fps)
            plan = plan_summary(
                timeline.timestamps, duration, params.request, params.frames_per_chunk
            )
            total = len(plan.chunks)
            if total > self.settings.max_chunks_per_job:
                raise JobFailure(
                    TOO_MANY_CHUNKS,
                    f"the clip makes {total} chunks; the limit is "
                    f"{self.settings.max_chunks_per_job} (use longer chunks or a shorter clip)",
                )
            cost = summary_cost(self.settings, total, job.billable)
            ceiling = params.request.max_credits
            if ceiling is not None and cost > ceiling:
                raise JobFailure(
                    OVER_MAX_CREDITS, f"the summary costs {cost} credits; max_credits is {ceiling}"
                )
            if cost > 0 and not await asyncio.to_thread(
                store.reserve, job.id, job.attempt, job.user_id, cost
            ):
                return None
            done = {part for part, _ in await asyncio.to_thread(store.parts, job.id)}
            if not await asyncio.to_thread(
                store.progress, job.id, job.attempt, len(done), total, self.jobs.lease_s
            ):
                return None
            pending = [c for c in plan.chunks if c.index not in done]
            if done:
                logger.info("job %s resumes: %d of %d chunks were done", job.id, len(done), total)
            size = frame_size(info.height, info.width, plan.frames_per_chunk, profile.pixels)
            run = _ChunkRun(self, job, params, backend, language, info, timeline, lost)
            if pending and not await run.caption_all(path, plan, pending, size):
                return None
        stored = await asyncio.to_thread(store.parts, job.id)
        chunks: list[ChunkResult] = [json.loads(payload) for _, payload in stored]
        document = await self._reduce(job, params, plan, info, chunks, language)
        key = result_key(job.id)
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        await asyncio.to_thread(self.ctx.blobs.put_bytes, key, body)
        if await asyncio.to_thread(store.complete, job.id, job.attempt, key, cost):
            return JobStatus.SUCCEEDED
        logger.warning("job %s attempt %d finished after losing its lease", job.id, job.attempt)
        return None

    async def _reduce(
        self,
        job: JobRecord,
        params: SummaryParams,
        plan: SummaryPlan,
        info: VideoInfo,
        chunks: list[ChunkResult],
        language: Language | None,
    ) -> SummaryResult:
        clip: Clip = {"start_s": round(plan.clip_start, 3), "end_s": round(plan.clip_end, 3)}
        request = params.request
        reduction = await reduce_captions(
            self.text,
            chunks,
            clip,
            summary_prompt=request.summary_prompt or self.settings.default_summary_prompt,
            language=language,
            context_tokens=self.context_tokens,
            max_tokens=self.settings.summary_max_tokens,
        )
        tokens_in = sum(c["tokens"]["input"] for c in chunks) + reduction.input_tokens
        tokens_out = sum(c["tokens"]["output"] for c in chunks) + reduction.output_tokens
        document: SummaryResult = {
            "job_id": job.id,
            "clip": clip,
            "sampling": {
                "source_fps": round(info.fps, 4),
                "frames_used": plan.frames_used,
                "effective_fps": round(plan.effective_fps, 4),
                "chunk_s": request.chunk_s,
                "overlap_s": request.overlap_s,
                "frames_per_chunk": plan.frames_per_chunk,
            },
            "chunks": chunks,
            "chapters": reduction.chapters,
            "summary": reduction.summary,
            "language": language.code if language else None,
            "tokens": {"input": tokens_in, "output": tokens_out},
        }
        if reduction.summary_translation is not None:
            document["summary_translation"] = reduction.summary_translation
        return document


class _ChunkRun:
    """The captioning of one attempt's pending chunks (state shared by its tasks)."""

    def __init__(
        self,
        executor: SummaryExecutor,
        job: JobRecord,
        params: SummaryParams,
        backend: ModelBackend,
        language: Language | None,
        info: VideoInfo,
        timeline: VideoTimeline,
        lost: asyncio.Event,
    ) -> None:
        self.executor = executor
        self.settings = executor.settings
        self.job = job
        self.params = params
        self.backend = backend
        self.language = language
        self.info = info
        self.timeline = timeline
        self.lost = lost
        self.instruction = params.request.caption_prompt or executor.settings.default_caption_prompt

    async def caption_all(
        self, path: Path, plan: SummaryPlan, pending: list[ChunkPlan], size: tuple[int, int]
    ) -> bool:
        """Caption ``pending`` in order; False when the attempt lost its job."""
        executor = self.executor
        frame_plan = self.timeline.plan(plan.frames_of({c.index for c in pending}), size)
        # Each chunk transcribes up to where the next begins: overlaps are heard once.
        self.path = path
        self.speech_end = {
            c.index: min(c.end_s, plan.chunks[c.index + 1].start_s)
            if c.index + 1 < len(plan.chunks)
            else c.end_s
            for c in pending
        }
        members: dict[int, list[int]] = {}
        for chunk in pending:
            for index in chunk.frame_indices:
                members.setdefault(index, []).append(chunk.index)
        collected: dict[int, dict[int, np.ndarray]] = {c.index: {} for c in pending}
        queue = deque(pending)
        slots = asyncio.Semaphore(self.settings.chunks_in_flight)
        tasks: list[asyncio.Task[None]] = []

        async def dispatch(upto: int | None) -> None:
            """Start every queued chunk whose frames all came (``upto``: last decoded)."""
            while queue and (upto is None or queue[0].frame_indices[-1] <= upto):
                chunk = queue.popleft()
                await slots.acquire()
                frames = collected.pop(chunk.index)
                tasks.append(asyncio.ensure_future(self._caption(chunk, frames, slots)))
                _raise_failed(tasks)

        decoded = decoded_chunks(
            path, self.info, frame_plan, plan.frames_per_chunk, executor.limits, prefetch=1
        )
        try:
            async for batch in decoded:
                if self.lost.is_set():
                    return False
                for k, index in enumerate(batch.frame_indices):
                    for owner in members[index]:
                        if owner in collected:
                            collected[owner][index] = batch.frames[k]
                await dispatch(batch.frame_indices[-1])
            await dispatch(None)
            await asyncio.gather(*tasks)
            return not self.lost.is_set()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            await decoded.aclose()

    async def _caption(
        self, chunk: ChunkPlan, frames: dict[int, np.ndarray], slots: asyncio.Semaphore
    ) -> None:
        """Caption one chunk from the frames that decoded, store it, free its slot."""
        try:
            used = [i for i in chunk.frame_indices if i in frames]
            actual = replace(
                chunk,
                frame_indices=tuple(used),
                timestamps=tuple(float(self.timeline.timestamps[i]) for i in used),
            )
            speech = await self._speech(chunk)
            if used:
                request = caption_request(
                    actual,
                    np.stack([frames[i] for i in used]),
                    self.instruction,
                    self.settings.caption_max_tokens,
                    self.info.fps,
                    speech.prompt_lines(),
                )
                entry = chunk_result(actual, await self._generate(request))
            else:
                logger.warning("job %s: no frame of chunk %d decoded", self.job.id, chunk.index)
                entry = chunk_result(actual, GenerationResult("", 0, 0))
            frames.clear()
            if self.params.transcribe:
                entry["transcript"] = speech.as_json()
                if speech.skipped is not None:
                    entry["audio_skipped"] = speech.skipped
            if self.language is not None and entry["caption"]:
                texts, tokens_in, tokens_out = await translate_texts(
                    self.executor.text,
                    [entry["caption"]],
                    self.language,
                    max_tokens=self.settings.caption_max_tokens,
                )
                if texts[0]:  # a failed translation leaves the key out
                    entry["translation"] = texts[0]
                entry["tokens"] = {
                    "input": entry["tokens"]["input"] + tokens_in,
                    "output": entry["tokens"]["output"] + tokens_out,
                }
            payload = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
            store, job = self.executor.ctx.store, self.job
            saved = await asyncio.to_thread(
                store.save_part,
                job.id,
                job.attempt,
                chunk.index,
                payload,
                self.executor.jobs.lease_s,
            )
            if not saved:
                self.lost.set()
        finally:
            slots.release()

    async def _speech(self, chunk: ChunkPlan) -> ChunkSpeech:
        """What is said in ``chunk`` (nothing when the job does not transcribe)."""
        if not self.params.transcribe:
            return ChunkSpeech()
        backend = self.executor.speech
        if backend is None:
            return ChunkSpeech(skipped="speech recognition is not configured on the job runner")
        end = self.speech_end[chunk.index]
        if end <= chunk.start_s:
            return ChunkSpeech()
        return await chunk_speech(
            backend, self.path, chunk.start_s, end, f"{self.job.id}-chunk-{chunk.index}"
        )

    async def _generate(self, request: GenerationRequest) -> GenerationResult:
        """The caption, retried while the model's backend is unavailable."""
        return await while_available(
            lambda: self.backend.generate(request), f"model {self.params.model}"
        )


def _raise_failed(tasks: list[asyncio.Task[None]]) -> None:
    """Re-raise the error of a caption task that failed (stops the attempt early)."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
