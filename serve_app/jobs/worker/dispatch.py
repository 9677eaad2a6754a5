"""Which executor runs a claimed job: one per job ``kind``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from serve_app.jobs.store.job_store import JobStore
from serve_app.jobs.store.records import JobRecord
from serve_app.jobs.store.tables import JobStatus

logger = logging.getLogger(__name__)

#: Error code of a job whose kind no executor of this worker runs.
UNSUPPORTED_KIND = "unsupported_job_kind"


class Executor(Protocol):
    async def execute(self, job: JobRecord) -> JobStatus | None:
        """Run ``job`` (claimed at ``job.attempt``); the final status this attempt wrote."""
        ...


class ByKind:
    """Hands each job to the executor of its ``kind``; fails jobs of unknown kinds."""

    def __init__(self, store: JobStore, executors: Mapping[str, Executor]) -> None:
        self._store = store
        self._executors = dict(executors)

    async def execute(self, job: JobRecord) -> JobStatus | None:
        executor = self._executors.get(job.kind)
        if executor is not None:
            return await executor.execute(job)
        logger.error("job %s is of kind %r, which this worker does not run", job.id, job.kind)
        message = f"this service does not run {job.kind!r} jobs"
        failed = await asyncio.to_thread(
            self._store.fail, job.id, job.attempt, UNSUPPORTED_KIND, message
        )
        return JobStatus.FAILED if failed else None
