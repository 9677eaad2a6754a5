"""JobRunner: claims batch video jobs and long-video summaries from the database and
drives the model handles.

Each replica runs one :class:`~serve_app.jobs.worker.loop.JobWorker` loop in the
background; replicas coordinate only through the database (leases and attempt
numbers), so any number of them may run, and a replica that dies loses nothing but
time: its jobs' leases expire and another replica claims them again.

Replicas report the database's backlog to Serve (:meth:`JobRunner.record_autoscaling_stats`)
for :class:`~serve_app.deployments.autoscaling.BacklogPolicy`, which scales them with it,
down to zero where the deployment allows.

Cleanup is :meth:`JobRunner.shutdown`, which the served class's ``__del__`` (Ray
Serve's one shutdown hook, see :func:`serve_app.deployments.options.deployment`) awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from ray.serve.handle import DeploymentHandle

from serve_app.config import Settings
from serve_app.deployments.autoscaling import backlog_stats
from serve_app.deployments.construct import AsyncConstructed
from serve_app.deployments.handles import HandleDetector, HandleModel, HandleSpeech
from serve_app.engines.profile import ModelProfile
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.jobs.context import JobsContext
from serve_app.jobs.worker.dispatch import ByKind, Executor
from serve_app.jobs.worker.executor import JobExecutor
from serve_app.jobs.worker.frame_models import FrameModels
from serve_app.jobs.worker.loop import JobWorker
from serve_app.observability import metrics
from serve_app.speech.backend import SpeechBackend
from serve_app.storage.db import Database, database_url_for, migrate
from serve_app.summaries.executor import SummaryExecutor

logger = logging.getLogger(__name__)


def summary_executor(
    ctx: JobsContext,
    settings: Settings,
    vision: Mapping[str, HandleModel],
    text_model: DeploymentHandle | None,
    text_profile: ModelProfile | None,
    default_model: str | None,
    speech: SpeechBackend | None = None,
) -> SummaryExecutor | None:
    """Summaries caption on the vision models and reduce on the story model (or, with
    the Story API off, on the default vision model); None without any model."""
    if text_model is not None and text_profile is not None:
        text, profile = HandleModel(text_model), text_profile
    else:
        name = default_model or next(iter(vision), None)
        if name is None or name not in vision:
            return None
        text, profile = vision[name], ctx.profiles[name]
    budget = settings.summaries.reduce_context_tokens or profile.max_model_len
    return SummaryExecutor(ctx, settings.summaries, vision, text, budget, speech)


class JobRunner(AsyncConstructed):
    async def __init__(  # type: ignore[misc]  # Ray supports async constructors
        self,
        settings: Settings,
        catalog: FrameModelCatalog,
        detector: DeploymentHandle,
        model_handles: Mapping[str, DeploymentHandle],
        profiles: Mapping[str, ModelProfile],
        default_model: str | None = None,
        text_model: DeploymentHandle | None = None,
        text_profile: ModelProfile | None = None,
        audio_transcriber: DeploymentHandle | None = None,
    ) -> None:
        settings = settings.for_this_node()
        self._database = Database(database_url_for(settings.database_url, settings.data_dir))
        await asyncio.to_thread(migrate, self._database)
        ctx = JobsContext.build(
            settings, self._database, catalog, profiles=profiles, default_model=default_model
        )
        captioners = {name: HandleModel(handle) for name, handle in model_handles.items()}
        #: Speech (``settings.speech`` on): a SpeechBackend for long-video fusion.
        self.speech = None if audio_transcriber is None else HandleSpeech(audio_transcriber)
        models = FrameModels(HandleDetector(detector), captioners)
        executors: dict[str, Executor] = {"infer": JobExecutor(ctx, models)}
        summaries = summary_executor(
            ctx, settings, captioners, text_model, text_profile, default_model, self.speech
        )
        if summaries is not None:
            executors["summary"] = summaries
        self._closed = False
        self._worker = JobWorker(ctx, ByKind(ctx.store, executors))
        self._loop = asyncio.get_running_loop().create_task(self._worker.run_forever())

    async def wake(self) -> None:
        """A job was submitted: look for it now rather than at the next poll."""
        self._worker.wake()

    async def record_autoscaling_stats(self) -> dict[str, float]:
        """Serve's custom-metrics hook: the backlog :class:`BacklogPolicy` scales on.

        Also sets the ``serve_app_job_backlog`` gauge. Serve calls it every
        ``look_back_period_s / 5`` seconds; one aggregate query each time.
        """
        backlog = await asyncio.to_thread(self._worker.ctx.store.backlog)
        metrics.set_job_backlog(backlog.jobs, backlog.frames)
        return backlog_stats(backlog.jobs, backlog.frames, self._worker.active_jobs)

    async def check_health(self) -> None:
        """Serve's health probe: a dead worker loop gets the replica restarted."""
        if self._loop.done():
            raise RuntimeError("the job worker loop has stopped")

    async def shutdown(self) -> None:
        """Stop the worker (its running jobs go back to the queue), close the database."""
        if self._closed:
            return
        self._closed = True
        await self._worker.stop()
        self._loop.cancel()
        await asyncio.wait([self._loop])
        self._database.dispose()
