"""Helpers of the runner, worker and route tests: contexts and fake models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from serve_app.accounts.context import AccountsContext
from serve_app.config import Settings
from serve_app.errors import BackendUnavailable
from serve_app.frame_models.backends import LocalDetector
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.registry import DetectorRegistry
from serve_app.frame_models.resolved import FrameModel
from serve_app.frame_models.results import FrameResult
from serve_app.jobs.context import JobsContext
from serve_app.jobs.settings import JobSettings
from serve_app.jobs.worker.frame_models import FrameModels
from serve_app.net.fetch import FetchPolicy, SafeHttp
from serve_app.storage.blob import LocalBlobStore

FAST_JOBS = {"heartbeat_s": 0.1, "lease_s": 5.0, "batch_frames": 4, "poll_interval_s": 0.05}


def jobs_context(
    accounts: AccountsContext,
    data_dir: Path,
    catalog: FrameModelCatalog,
    http: SafeHttp | None = None,
    **jobs: Any,
) -> JobsContext:
    settings = Settings(data_dir=data_dir, jobs=JobSettings(**{**FAST_JOBS, **jobs}))
    return JobsContext.build(
        settings,
        accounts.database,
        catalog,
        blobs=LocalBlobStore(data_dir / "blobs"),
        http=http or SafeHttp(FetchPolicy(max_bytes=50_000_000)),
    )


def local_models(catalog: FrameModelCatalog) -> FrameModels:
    """The real detectors of ``catalog`` in this process (no captioners)."""
    return FrameModels(LocalDetector(DetectorRegistry(catalog)))


class FakeModels:
    """Instant per-frame entries; can fail, stall after some calls, or null frames."""

    def __init__(
        self,
        *,
        unavailable: int = 0,
        stall_after: int | None = None,
        null_frames: frozenset[int] = frozenset(),
    ) -> None:
        self.calls = 0
        self.unavailable = unavailable
        self.stall_after = stall_after
        self.null_frames = null_frames
        self.gate = asyncio.Event()
        self.stalled = asyncio.Event()

    async def run(
        self, model: FrameModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        self.calls += 1
        if self.stall_after is not None and self.calls > self.stall_after:
            self.stalled.set()
            await self.gate.wait()
        if self.unavailable:
            self.unavailable -= 1
            raise BackendUnavailable("model replica down")
        width, height = original_size
        return [
            None
            if int(frame.mean()) in self.null_frames
            else {"time": 0.0, "image": {"width": width, "height": height}, "predictions": []}
            for frame in frames
        ]


def upload(ctx: JobsContext, video: Path, user_id: int) -> str:
    key = f"uploads/{user_id}-{video.stem}.mp4"
    ctx.blobs.put_bytes(key, video.read_bytes())
    return key
