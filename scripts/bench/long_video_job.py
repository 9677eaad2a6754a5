"""One measurement of the long-video benchmark, in a fresh process of its own.

    python -m scripts.bench.long_video_job MODE VIDEO --cache DIR --work DIR

Modes (each prints one JSON line on stdout):

- ``decode-all``: every frame of the video decoded (PyAV, the decoder settings of
  :func:`serve_app.media.stream.iter_frames`: threaded, one thread per core), nothing
  converted;
- ``decode-plan``: the summary executor's own pass without the model: probe,
  ``index_video``, the plan of a default request (30 s chunks, default frames per
  chunk), and the planned frames decoded at the model's video size through
  :func:`serve_app.jobs.worker.frames.decoded_chunks` (one chunk's frames at a time);
- ``summary``: a summary job of the whole video (default request and settings) as the
  JobRunner runs it, in process: submitted by a user through a signed upload, claimed
  and run by :class:`~serve_app.summaries.executor.SummaryExecutor` on the tiny model
  (captions and the reduce step), over SQLite and the local blob store.

Memory: ``job_peak_rss_mb`` is the kernel's peak RSS (VmHWM) since the measured work
began (reset through ``/proc/self/clear_refs`` once the process is set up: imports, the
model loaded); ``setup_rss_mb`` is the RSS at that moment. Resetting VmHWM resets this
process's own ``ru_maxrss`` too, so the whole process's peak is read by the parent
(:func:`scripts.bench.long_video.run_job`, ``wait4``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

from scripts.bench.procmem import proc_status, reset_peak

MB = 1_000_000
MODES = ("decode-all", "decode-plan", "summary")


def _begin() -> dict[str, Any]:
    """Reset the peak RSS; the RSS the measured work starts from."""
    reset_peak(os.getpid())
    return {"setup_rss_mb": round(proc_status(os.getpid()).get("VmRSS", 0) / MB, 1)}


def _memory(found: dict[str, Any]) -> dict[str, Any]:
    status = proc_status(os.getpid())
    return {**found, "job_peak_rss_mb": round(status.get("VmHWM", 0) / MB, 1)}


def decode_all(video: Path) -> dict[str, Any]:
    import av

    from serve_app.media.limits import MediaLimits

    limits = MediaLimits()
    found = _begin()
    began = time.perf_counter()
    frames = 0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.thread_count = limits.decode_threads
        for _ in container.decode(stream):
            frames += 1
    found.update(wall_s=round(time.perf_counter() - began, 2), frames=frames)
    return _memory(found)


def decode_plan(video: Path) -> dict[str, Any]:
    from scripts.bench.env import TINY_PROFILE
    from serve_app.config import Settings, resolve_config_path
    from serve_app.engines.profile import ModelProfile
    from serve_app.jobs.worker.frames import decoded_chunks
    from serve_app.media.probe import probe_video
    from serve_app.media.stream import index_video
    from serve_app.summaries.plan import frames_per_chunk, plan_summary, video_duration
    from serve_app.summaries.pricing import frame_size
    from serve_app.summaries.spec import SummaryRequest

    profile = ModelProfile.from_yaml(resolve_config_path(TINY_PROFILE))  # its frame budget
    settings = Settings()
    limits = settings.media.model_copy(update={"decode_timeout_s": settings.jobs.decode_timeout_s})
    request = SummaryRequest(input_url="file:bench")
    per_chunk = frames_per_chunk(request, profile.pixels.max_frames)
    found = _begin()
    began = time.perf_counter()
    info = probe_video(video, limits)
    timeline = index_video(video, info, limits)
    duration = video_duration(timeline.timestamps, info.duration_s, info.fps)
    plan = plan_summary(timeline.timestamps, duration, request, per_chunk)
    size = frame_size(info.height, info.width, plan.frames_per_chunk, profile.pixels)
    frame_plan = timeline.plan(plan.frames_of({c.index for c in plan.chunks}), size)
    indexed = time.perf_counter()

    async def consume() -> int:
        count = 0
        async for batch in decoded_chunks(
            video, info, frame_plan, plan.frames_per_chunk, limits, prefetch=1
        ):
            count += len(batch.frame_indices)
        return count

    frames = asyncio.run(consume())
    ended = time.perf_counter()
    found.update(
        wall_s=round(ended - began, 2),
        index_s=round(indexed - began, 2),
        decode_s=round(ended - indexed, 2),
        chunks=len(plan.chunks),
        frames=frames,
        source_frames=timeline.frame_count,
        frame_size=list(size),
    )
    return _memory(found)


def _link_upload(video: Path, blobs_root: Path, key: str) -> None:
    """Put ``video`` at ``key`` of the local blob store without reading it into memory."""
    dest = blobs_root / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(video, dest)
    except OSError:
        shutil.copyfile(video, dest)


async def _summary(video: Path, cache: Path, work: Path) -> dict[str, Any]:
    from scripts.bench.env import ACCOUNT_SETTINGS, tiny_profile
    from serve_app.accounts.context import open_accounts
    from serve_app.accounts.users import create_user
    from serve_app.config import Settings
    from serve_app.engines.backend import EngineBackend
    from serve_app.engines.factory import build_engine
    from serve_app.frame_models.catalog import FrameModelCatalog
    from serve_app.jobs.context import JobsContext
    from serve_app.jobs.store.tables import JobStatus
    from serve_app.storage.blob import LocalBlobStore
    from serve_app.summaries.executor import SummaryExecutor
    from serve_app.summaries.service import Summaries
    from serve_app.summaries.settings import SummarySettings
    from serve_app.summaries.spec import SummaryRequest

    profile = tiny_profile(cache)
    data = work / "data"
    settings = Settings(data_dir=data, accounts=ACCOUNT_SETTINGS)
    accounts = open_accounts(settings)
    user = create_user(
        accounts.database, accounts.passwords, "bench", "bench-password-1", credits=100_000
    )
    blobs = LocalBlobStore(data / "blobs")
    ctx = JobsContext.build(
        settings,
        accounts.database,
        FrameModelCatalog(models=[]),
        profiles={profile.name: profile},
        default_model=profile.name,
        blobs=blobs,
    )
    key = f"uploads/{user.id}-{video.stem}.mp4"
    _link_upload(video, data / "blobs", key)
    url = f"http://127.0.0.1:8000/{key}?{ctx.signer.sign('PUT', key, user.id, 3600).query()}"

    engine = build_engine(profile, cache)
    loading = time.perf_counter()
    await engine.start()
    model_load_s = time.perf_counter() - loading
    backend = EngineBackend(engine)
    summary_settings = SummarySettings()
    executor = SummaryExecutor(
        ctx,
        summary_settings,
        {profile.name: backend},
        backend,
        summary_settings.reduce_context_tokens or profile.max_model_len,
    )
    found = _begin()
    began = time.perf_counter()
    submitted = await Summaries(ctx, summary_settings).submit(user, SummaryRequest(input_url=url))
    job = ctx.store.claim("bench", ctx.jobs.lease_s)
    assert job is not None
    claimed = time.perf_counter()
    status = await executor.execute(job)
    ended = time.perf_counter()
    record = ctx.store.get(job.id)
    if status is not JobStatus.SUCCEEDED or record.result_key is None:
        raise RuntimeError(f"the summary job ended {status}: {record.error_message}")
    document = json.loads(blobs.read_bytes(record.result_key))
    found.update(
        wall_s=round(ended - began, 2),
        submit_s=round(claimed - began, 2),
        job_s=round(ended - claimed, 2),
        model_load_s=round(model_load_s, 2),
        chunks=len(document["chunks"]),
        frames=document["sampling"]["frames_used"],
        chapters=len(document["chapters"]),
        tokens=document["tokens"],
        credits=record.credits_charged,
        estimated_credits=submitted["estimated_credits"],
        caption_max_tokens=summary_settings.caption_max_tokens,
        chunks_in_flight=summary_settings.chunks_in_flight,
    )
    await engine.shutdown()
    accounts.close()
    return _memory(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("video", type=Path)
    parser.add_argument(
        "--cache", type=Path, required=True, help="holds the tiny model (models/tiny-qwen2.5-vl)"
    )
    parser.add_argument("--work", type=Path, required=True, help="an empty scratch directory")
    ns = parser.parse_args(argv)
    if ns.mode == "decode-all":
        found = decode_all(ns.video)
    elif ns.mode == "decode-plan":
        found = decode_plan(ns.video)
    else:
        found = asyncio.run(_summary(ns.video, ns.cache, ns.work))
    print(json.dumps({"mode": ns.mode, "video": ns.video.name, **found}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
