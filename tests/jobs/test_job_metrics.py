"""Job metrics: transitions counted per committed status change, counts per state.

``serve_app_job_transitions`` moves only when a guarded update matched (a fenced or
repeated write counts nothing), ``serve_app_jobs`` is published by the worker loop,
and the runner counts the frames it decodes and the credits a job captures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest

from serve_app.errors import Conflict
from serve_app.jobs.store.job_store import JobStore
from serve_app.jobs.store.tables import JobStatus
from serve_app.jobs.worker.executor import JobExecutor
from serve_app.jobs.worker.loop import JobWorker
from serve_app.observability import metrics
from serve_app.storage.orm import utcnow
from tests.jobs.conftest import make_user, new_job
from tests.jobs.support import FakeModels, jobs_context, local_models, upload
from tests.jobs.test_loop import wait_for

STATES = [s.value for s in JobStatus]


@pytest.fixture(autouse=True)
def _clean_metrics() -> Iterator[None]:
    metrics.reset()
    yield
    metrics.reset()


def transitions() -> dict[str, float]:
    return {state: metrics.JOB_TRANSITIONS.value(state=state) for state in STATES}


def moved(**expected: float) -> dict[str, float]:
    return {state: expected.get(state, 0) for state in STATES}


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


def test_each_committed_transition_counts_once(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=100)
    job = store.create(new_job(user), cost=30)
    store.create(new_job(user, error_code="too_many_frames", error_message="x"))
    assert transitions() == moved(queued=1, failed=1)

    claimed = store.claim("w1", 30)
    assert claimed is not None and claimed.id == job.id
    assert store.claim("w2", 30) is None  # nothing queued: nothing counted
    assert transitions() == moved(queued=1, failed=1, running=1)

    assert store.requeue(job.id, claimed.attempt)
    assert not store.requeue(job.id, claimed.attempt)  # no longer running
    again = store.claim("w1", 30)
    assert again is not None and again.attempt == 2
    assert not store.complete(job.id, claimed.attempt, "k", 10)  # fenced: old attempt
    assert metrics.CREDITS_CHARGED.value(kind="job") == 0
    assert store.complete(job.id, again.attempt, "k", 20)
    assert not store.fail(job.id, again.attempt, "late", "late")  # already succeeded
    assert transitions() == moved(queued=2, failed=1, running=2, succeeded=1)
    assert metrics.CREDITS_CHARGED.value(kind="job") == 20


def test_fail_and_cancel_count_only_the_first_time(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=100)
    failing, cancelled = store.create(new_job(user), cost=10), store.create(new_job(user))
    claimed = store.claim("w1", 30)
    assert claimed is not None and claimed.id == failing.id
    assert store.fail(failing.id, claimed.attempt, "boom", "it broke")
    assert not store.fail(failing.id, claimed.attempt, "boom", "it broke")
    assert store.cancel(cancelled.id, user.id).status is JobStatus.CANCELLED
    assert store.cancel(cancelled.id, user.id).status is JobStatus.CANCELLED  # repeat
    with pytest.raises(Conflict):
        store.cancel(failing.id, user.id)
    assert transitions() == moved(queued=2, running=1, failed=1, cancelled=1)
    assert metrics.CREDITS_CHARGED.value(kind="job") == 0  # failures release, not charge


def test_expired_leases_count_as_requeued_or_failed(accounts) -> None:
    clock = Clock()
    store = JobStore(accounts.database, clock)
    user = make_user(accounts)
    retried = store.create(new_job(user, max_attempts=3))
    exhausted = store.create(new_job(user, max_attempts=1))
    assert store.claim("w1", 5) is not None and store.claim("w1", 5) is not None
    metrics.reset()
    clock.now += dt.timedelta(seconds=10)
    assert store.requeue_expired() == (1, 1)
    assert store.requeue_expired() == (0, 0)
    assert transitions() == moved(queued=1, failed=1)
    assert store.get(retried.id).status is JobStatus.QUEUED
    assert store.get(exhausted.id).status is JobStatus.FAILED


def test_counts_cover_every_state(accounts) -> None:
    store = JobStore(accounts.database)
    assert store.counts() == dict.fromkeys(STATES, 0)
    user = make_user(accounts)
    jobs = [store.create(new_job(user)) for _ in range(4)]
    claimed = store.claim("w1", 30)
    assert claimed is not None
    assert store.complete(claimed.id, claimed.attempt, "k", 0)
    assert store.claim("w1", 30) is not None
    store.cancel(jobs[3].id, user.id)
    assert store.counts() == {
        "queued": 1,
        "running": 1,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 1,
    }


async def test_the_worker_loop_publishes_counts_per_state(
    accounts, tmp_path, catalog, astronaut_video
) -> None:
    ctx = jobs_context(accounts, tmp_path / "data", catalog, concurrent_jobs=1, lease_s=0.4)
    user = make_user(accounts)
    key = upload(ctx, astronaut_video, user.id)
    jobs = [ctx.store.create(new_job(user, input_key=key, billable=False)) for _ in range(3)]
    models = FakeModels(stall_after=0)  # the first job holds the only slot
    worker = JobWorker(ctx, JobExecutor(ctx, models))
    loop = asyncio.ensure_future(worker.run_forever())
    try:
        await wait_for(lambda: metrics.JOBS.value(state="running") == 1)
        assert metrics.JOBS.value(state="queued") == 2
        assert metrics.JOBS.value(state="succeeded") == 0
        models.gate.set()
        # counted again at the next sweep (every lease_s / 2 here)
        await wait_for(lambda: metrics.JOBS.value(state="succeeded") == 3)
        assert metrics.JOBS.value(state="queued") == metrics.JOBS.value(state="running") == 0
    finally:
        await worker.stop()
        await loop
    assert all(ctx.store.get(j.id).status is JobStatus.SUCCEEDED for j in jobs)
    assert metrics.JOB_TRANSITIONS.value(state="succeeded") == 3


async def test_a_job_counts_frames_and_credits(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts, credits=100)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key), cost=30)
    claimed = ctx.store.claim("test", ctx.jobs.lease_s)
    assert claimed is not None
    executor = JobExecutor(ctx, local_models(catalog))
    assert await executor.execute(claimed) is JobStatus.SUCCEEDED
    done = ctx.store.get(job.id)
    assert done.frames_total == 10
    assert metrics.FRAMES_DECODED.value(kind="job") == 10
    assert metrics.CREDITS_CHARGED.value(kind="job") == done.credits_charged > 0
    assert transitions() == moved(queued=1, running=1, succeeded=1)
