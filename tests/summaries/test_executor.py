"""Summary jobs on real videos and the real tiny model: true frames and times, chapters
covering the clip, credits, and refusals before anything is spent."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from serve_app.errors import OverBudget
from serve_app.jobs.store.tables import JobStatus
from serve_app.summaries.spec import SummaryRequest
from serve_app.summaries.status import KIND
from tests.jobs.conftest import make_user
from tests.summaries.support import Witness, executor, signed_upload, summaries, summary_context
from tests.support.media_files import make_video, vfr_timestamps_ms


@pytest.fixture(scope="module")
def cfr_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 30 fps whose frames show their own index."""
    path = tmp_path_factory.mktemp("videos") / "counter.mp4"
    return make_video(path, width=160, height=120, fps=30, frames=180, gop=30)


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("videos") / "vfr.mkv"
    return make_video(path, container="mkv", width=160, height=120, frames=150, vfr=True)


def check_chapters(document: dict, overlap: float = 0.0) -> None:
    """Chapters are contiguous and cover the clip exactly."""
    chapters, clip = document["chapters"], document["clip"]
    assert chapters, "a summary has at least one chapter"
    assert chapters[0]["start_s"] == clip["start_s"]
    assert chapters[-1]["end_s"] == clip["end_s"]
    for before, after in itertools.pairwise(chapters):
        assert before["end_s"] == after["start_s"]
        assert before["start_s"] < before["end_s"]


async def test_chunks_report_exactly_the_frames_the_model_saw(
    accounts, tmp_path, tiny_engine, cfr_video
):
    profile, engine = tiny_engine
    ctx = summary_context(accounts, tmp_path / "data", profile)
    user = make_user(accounts, credits=100)
    body = SummaryRequest(
        input_url=signed_upload(ctx, user, cfr_video), chunk_s=2.0, frames_per_chunk=4
    )
    submitted = await summaries(ctx).submit(user, body)
    assert submitted["estimated_credits"] == 3 * 2 + 5
    assert accounts.credits.balance(user.id) == 100 - 11  # reserved at submit

    job = ctx.store.claim("test", ctx.jobs.lease_s)
    assert job is not None and job.kind == KIND
    witness = Witness(engine)
    assert await executor(ctx, profile, witness).execute(job) is JobStatus.SUCCEEDED

    done = ctx.store.get(job.id)
    assert (done.frames_done, done.frames_total, done.credits_charged) == (3, 3, 11)
    assert accounts.credits.balance(user.id) == 89 == accounts.credits.ledger_sum(user.id)
    document = json.loads(ctx.blobs.read_bytes(done.result_key))
    chunks = document["chunks"]
    assert [(c["start_s"], c["end_s"]) for c in chunks] == [(0, 2), (2, 4), (4, 6)]
    for chunk in chunks:
        indices = chunk["frame_indices"]
        assert len(indices) == 4
        # The model got exactly these source frames (decoded from its pixels) ...
        assert witness.seen[f"chunk-{chunk['index']}"] == indices
        # ... at these true times, inside the chunk.
        assert chunk["timestamps"] == [round(i / 30, 6) for i in indices]
        assert all(chunk["start_s"] <= t < chunk["end_s"] for t in chunk["timestamps"])
        assert chunk["effective_fps"] == 2.0
        assert chunk["tokens"]["input"] > 0 and chunk["tokens"]["output"] > 0
    assert document["sampling"] == {
        "source_fps": 30.0,
        "frames_used": 12,
        "effective_fps": 2.0,
        "chunk_s": 2.0,
        "overlap_s": 0.0,
        "frames_per_chunk": 4,
    }
    check_chapters(document)
    assert document["summary"]
    assert witness.texts >= 1  # the reduce step ran on the text model
    assert document["tokens"]["input"] > sum(c["tokens"]["input"] for c in chunks)


async def test_variable_frame_rate_times_are_the_source_times(
    accounts, tmp_path, tiny_engine, vfr_video
):
    profile, engine = tiny_engine
    ctx = summary_context(accounts, tmp_path / "data", profile)
    user = make_user(accounts, admin=True)
    body = SummaryRequest(
        input_url=signed_upload(ctx, user, vfr_video), chunk_s=2.0, frames_per_chunk=3
    )
    await summaries(ctx).submit(user, body)
    job = ctx.store.claim("test", ctx.jobs.lease_s)
    assert job is not None
    witness = Witness(engine)
    assert await executor(ctx, profile, witness).execute(job) is JobStatus.SUCCEEDED
    document = json.loads(ctx.blobs.read_bytes(ctx.store.get(job.id).result_key))
    source = [ms / 1000 for ms in vfr_timestamps_ms(150)]
    for chunk in document["chunks"]:
        seen = witness.seen[f"chunk-{chunk['index']}"]
        # An odd count is padded with its last frame for the model's frame pairs.
        assert seen[: len(chunk["frame_indices"])] == chunk["frame_indices"]
        assert chunk["timestamps"] == [round(source[i], 6) for i in chunk["frame_indices"]]
    assert ctx.store.get(job.id).credits_charged == 0  # administrators are not charged
    check_chapters(document)


async def test_overlapping_chunks_and_a_clip(accounts, tmp_path, tiny_engine, cfr_video):
    profile, engine = tiny_engine
    ctx = summary_context(accounts, tmp_path / "data", profile)
    user = make_user(accounts, credits=100)
    body = SummaryRequest(
        input_url=signed_upload(ctx, user, cfr_video),
        chunk_s=2.0,
        overlap_s=0.5,
        frames_per_chunk=2,
        start_s=1.0,
        end_s=5.0,
    )
    await summaries(ctx).submit(user, body)
    job = ctx.store.claim("test", ctx.jobs.lease_s)
    assert job is not None
    assert await executor(ctx, profile, Witness(engine)).execute(job) is JobStatus.SUCCEEDED
    document = json.loads(ctx.blobs.read_bytes(ctx.store.get(job.id).result_key))
    spans = [(c["start_s"], c["end_s"]) for c in document["chunks"]]
    assert spans == [(1.0, 3.0), (2.5, 4.5), (4.0, 5.0)]
    assert document["clip"] == {"start_s": 1.0, "end_s": 5.0}
    check_chapters(document)
    for chunk in document["chunks"]:
        assert all(chunk["start_s"] <= t <= chunk["end_s"] for t in chunk["timestamps"])


async def test_max_credits_below_the_estimate_is_refused_before_anything_is_spent(
    accounts, tmp_path, tiny_engine, cfr_video
):
    profile, _ = tiny_engine
    ctx = summary_context(accounts, tmp_path / "data", profile)
    user = make_user(accounts, credits=100)
    url = signed_upload(ctx, user, cfr_video)
    service = summaries(ctx)
    preflight = await service.preflight(user, SummaryRequest(input_url=url, chunk_s=2.0))
    assert preflight["chunks"] == 3 and preflight["estimated_credits"] == 11
    assert preflight["frames"] == 3 * 8 and preflight["duration_s"] == 6.0
    assert preflight["estimated_visual_tokens"] > 0 and preflight["eta_s"] > 0
    with pytest.raises(OverBudget, match="estimated at 11 credits; max_credits is 10"):
        await service.submit(user, SummaryRequest(input_url=url, chunk_s=2.0, max_credits=10))
    assert accounts.credits.balance(user.id) == 100
    assert ctx.store.claim("test", 5.0) is None  # nothing was stored
