"""A summary worker in a process of its own, for the kill-and-resume test.

``python -m tests.summaries.worker_process <database url> <data dir> <model dir>``
runs a :class:`JobWorker` with the real tiny model until it is killed. It captions
one chunk at a time and prints ``ready`` once the model is loaded.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from serve_app.engines.backend import EngineBackend
from serve_app.engines.factory import build_engine
from serve_app.jobs.context import JobsContext
from serve_app.jobs.worker.dispatch import ByKind
from serve_app.jobs.worker.loop import JobWorker
from serve_app.storage.blob import LocalBlobStore
from serve_app.storage.db import Database
from serve_app.summaries.executor import SummaryExecutor
from serve_app.summaries.settings import SummarySettings
from tests.summaries.support import EMPTY_CATALOG, worker_settings
from tests.support.graphs import tiny_profile


async def main(url: str, data_dir: Path, model_dir: Path) -> None:
    profile = tiny_profile(model_dir, max_new_tokens=12)
    engine = build_engine(profile, model_dir.parent)
    await engine.start()
    ctx = JobsContext.build(
        worker_settings(data_dir),
        Database(url),
        EMPTY_CATALOG,
        profiles={profile.name: profile},
        default_model=profile.name,
        blobs=LocalBlobStore(data_dir / "blobs"),
    )
    backend = EngineBackend(engine)
    settings = SummarySettings(chunks_in_flight=1)
    executor = SummaryExecutor(ctx, settings, {profile.name: backend}, backend, 4096)
    worker = JobWorker(ctx, ByKind(ctx.store, {"summary": executor}), owner="doomed")
    print("ready", flush=True)
    await worker.run_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
