"""The worker loop: restarts leave nothing running, wake-ups skip the poll interval."""

from __future__ import annotations

import asyncio
import time

from serve_app.jobs.store.tables import JobStatus
from serve_app.jobs.worker.executor import JobExecutor
from serve_app.jobs.worker.loop import JobWorker, worker_id
from tests.jobs.conftest import make_user, new_job
from tests.jobs.support import FakeModels, jobs_context, upload


async def wait_for(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_after_a_restart_no_job_stays_running(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog, lease_s=0.2)
    user = make_user(accounts)
    key = upload(ctx, astronaut_video, user.id)
    jobs = [ctx.store.create(new_job(user, input_key=key, billable=False)) for _ in range(2)]
    for _ in jobs:  # the "old service" claimed both, then the whole service died
        assert ctx.store.claim("old-replica", 0.2) is not None
    time.sleep(0.3)
    worker = JobWorker(ctx, JobExecutor(ctx, FakeModels()))
    loop = asyncio.ensure_future(worker.run_forever())
    try:
        await wait_for(lambda: all(ctx.store.get(j.id).status is JobStatus.SUCCEEDED for j in jobs))
    finally:
        await worker.stop()
        await loop
    assert all(ctx.store.get(j.id).attempt == 2 for j in jobs)


async def test_wake_starts_a_job_before_the_next_poll(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog, poll_interval_s=60)
    user = make_user(accounts)
    key = upload(ctx, astronaut_video, user.id)
    worker = JobWorker(ctx, JobExecutor(ctx, FakeModels()), owner="w-1")
    loop = asyncio.ensure_future(worker.run_forever())
    try:
        await asyncio.sleep(0.1)  # first poll: nothing queued yet
        job = ctx.store.create(new_job(user, input_key=key, billable=False))
        worker.wake()
        await wait_for(lambda: ctx.store.get(job.id).status is JobStatus.SUCCEEDED, 5)
    finally:
        await worker.stop()
        await loop
    assert ":" in worker_id()


async def test_concurrent_jobs_are_capped(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog, concurrent_jobs=2)
    user = make_user(accounts)
    key = upload(ctx, astronaut_video, user.id)
    jobs = [ctx.store.create(new_job(user, input_key=key, billable=False)) for _ in range(3)]
    models = FakeModels(stall_after=0)
    worker = JobWorker(ctx, JobExecutor(ctx, models))
    loop = asyncio.ensure_future(worker.run_forever())
    try:
        await wait_for(lambda: ctx.store.counts()["running"] == 2)
        await asyncio.sleep(0.2)
        statuses = sorted(ctx.store.get(j.id).status.value for j in jobs)
        assert statuses == ["queued", "running", "running"]
        models.gate.set()
        await wait_for(lambda: all(ctx.store.get(j.id).status is JobStatus.SUCCEEDED for j in jobs))
    finally:
        await worker.stop()
        await loop
