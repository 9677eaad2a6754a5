"""The JobRunner deployment's lifecycle, driven in process (no Ray cluster)."""

from __future__ import annotations

import warnings
from pathlib import Path

from serve_app.accounts.context import open_accounts
from serve_app.config import Settings
from serve_app.deployments.job_runner import JobRunner
from serve_app.deployments.options import served_class
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.jobs.store.job_store import JobStore
from serve_app.observability import metrics
from tests.jobs.conftest import make_user, new_job


async def test_shutdown_stops_the_worker_once_and_leaves_serve_nothing(
    tmp_path: Path, catalog: FrameModelCatalog
) -> None:
    settings = Settings(data_dir=tmp_path)
    runner = await JobRunner.create(
        settings, catalog, detector=object(), model_handles={}, profiles={}
    )
    await runner.check_health()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await runner.shutdown()
        await runner.shutdown()  # idempotent
        await served_class(JobRunner).__del__(runner)  # Serve's hook: nothing left to do
    assert runner._loop.done()


async def test_replicas_report_the_backlog_to_serve_and_prometheus(
    tmp_path: Path, catalog: FrameModelCatalog
) -> None:
    runner = await JobRunner.create(
        Settings(data_dir=tmp_path), catalog, detector=object(), model_handles={}, profiles={}
    )
    try:
        await runner._worker.stop()  # claims nothing from here on: the jobs stay queued
        store = JobStore(runner._database)
        accounts = open_accounts(Settings(data_dir=tmp_path))
        user = make_user(accounts)
        accounts.close()
        store.create(new_job(user, frames_total=40))
        store.create(new_job(user))
        stats = await runner.record_autoscaling_stats()
        assert stats == {"backlog_jobs": 2.0, "backlog_frames": 40.0, "running_jobs": 0.0}
        assert metrics.JOB_BACKLOG.value(unit="jobs") == 2
        assert metrics.JOB_BACKLOG.value(unit="frames") == 40
    finally:
        await runner.shutdown()
