"""The JobRunner deployment's lifecycle, driven in process (no Ray cluster)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from serve_app.config import Settings
from serve_app.deployments.job_runner import JobRunner
from serve_app.frame_models.catalog import FrameModelCatalog


async def test_shutdown_stops_the_worker_once_and_leaves_serve_nothing(
    tmp_path: Path, catalog: FrameModelCatalog
) -> None:
    cls: Any = JobRunner.func_or_class
    runner = cls.__new__(cls)
    settings = Settings(data_dir=tmp_path)
    await cls.__init__(runner, settings, catalog, detector=object(), model_handles={}, profiles={})
    await runner.check_health()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await runner.shutdown()
        await runner.shutdown()  # idempotent
        assert runner.__del__() is None  # Serve's hook has nothing left to await
    assert runner._loop.done()
