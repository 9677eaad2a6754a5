"""The JobRunner deployment's lifecycle, driven in process (no Ray cluster)."""

from __future__ import annotations

import warnings
from pathlib import Path

from serve_app.config import Settings
from serve_app.deployments.job_runner import JobRunner
from serve_app.deployments.options import served_class
from serve_app.frame_models.catalog import FrameModelCatalog


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
