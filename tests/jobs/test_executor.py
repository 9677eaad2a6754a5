"""The runner on real videos: results, retries after a lost worker, failures, cancel."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import pytest

from serve_app.accounts.credits import ReservationState
from serve_app.errors import InsufficientCredits
from serve_app.jobs.spec import models_to_json
from serve_app.jobs.store.records import JobRecord
from serve_app.jobs.store.tables import JobStatus
from serve_app.jobs.worker.executor import JobExecutor
from serve_app.jobs.worker.loop import JobWorker
from serve_app.jobs.worker.results import result_key
from tests.jobs.conftest import FACE, PEOPLE, make_user, new_job
from tests.jobs.support import FakeModels, jobs_context, local_models, upload
from tests.jobs.test_job_store import ledger_kinds
from tests.support.http_servers import PUBLIC_IP, Network, counting_server
from tests.support.job_videos import expected_face

OFFSETS = [0, 6, 12, 18, 24, 30, 36, 42, 48, 54]


def results_files(ctx) -> list[Path]:
    return sorted((ctx.settings.data_dir / "blobs" / "results").glob("*"))


def claim(ctx, job: JobRecord) -> JobRecord:
    claimed = ctx.store.claim("test", ctx.jobs.lease_s)
    assert claimed is not None and claimed.id == job.id
    return claimed


async def test_a_job_produces_per_frame_results(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts, credits=100)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(
        new_job(user, input_key=key, models_json=models_to_json([FACE, PEOPLE])), cost=30
    )
    executor = JobExecutor(ctx, local_models(catalog))
    assert await executor.execute(claim(ctx, job)) is JobStatus.SUCCEEDED

    done = ctx.store.get(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.result_key == result_key(job.id)
    assert (done.frames_done, done.frames_total, done.credits_charged) == (10, 10, 20)
    assert accounts.credits.balance(user.id) == 80 == accounts.credits.ledger_sum(user.id)
    doc = json.loads(ctx.blobs.read_bytes(result_key(job.id)))
    assert set(doc) == {"frame_offsets", "time_offsets", "face-detection", "people-detection"}
    assert doc["frame_offsets"] == OFFSETS
    assert doc["time_offsets"] == [round(i / 30, 4) for i in OFFSETS]
    assert all(len(v) == 10 for v in doc.values())
    for index, entry in zip(doc["frame_offsets"], doc["face-detection"], strict=True):
        assert set(entry) == {"time", "image", "predictions"}
        assert entry["image"] == {"width": 480, "height": 360}
        # The Haar cascade may add a weaker false positive (one frame of this clip has
        # one at 0.85): the best prediction is the face, the rest come after it.
        face, *others = entry["predictions"]
        assert all(o["confidence"] < face["confidence"] for o in others)
        assert set(face) == {"x", "y", "width", "height", "confidence", "class", "class_id"}
        x, y, side = expected_face(index, 60)
        assert abs(face["x"] - x) < 5 and abs(face["y"] - y) < 5 and abs(face["width"] - side) < 8
        assert face["class"] == "face"
    assert all(e is not None and "predictions" in e for e in doc["people-detection"])


async def test_a_killed_worker_job_completes_on_retry(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog, lease_s=0.3)
    user = make_user(accounts, credits=50)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key, max_attempts=3), cost=11)
    dead = claim(ctx, job)  # attempt 1 "dies" after some progress
    assert ctx.store.progress(job.id, dead.attempt, 4, 10, 0.3)
    time.sleep(0.4)

    worker = JobWorker(ctx, JobExecutor(ctx, FakeModels()))
    await worker.drain()
    done = ctx.store.get(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempt == 2

    # The old attempt wakes up and tries to finish: refused, nothing moves.
    assert not ctx.store.progress(job.id, dead.attempt, 10, 10, 5)
    assert not ctx.store.complete(job.id, dead.attempt, result_key(job.id), 11)
    assert [p.name for p in results_files(ctx)] == [f"{job.id}.json"]
    assert accounts.credits.state(done.reservation_id) is ReservationState.CAPTURED
    assert ledger_kinds(accounts, user.id) == ["grant", "reserve", "refund"]
    assert accounts.credits.balance(user.id) == 40 == accounts.credits.ledger_sum(user.id)
    assert done.credits_charged == 10


async def test_infer_fps_above_the_video_rate_fails_with_a_code(
    accounts, tmp_path, catalog, astronaut_video
):
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts, credits=100)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key, infer_fps=45.0), cost=90)
    assert await JobExecutor(ctx, FakeModels()).execute(claim(ctx, job)) is JobStatus.FAILED
    failed = ctx.store.get(job.id)
    assert failed.error_code == "infer_fps_too_high"
    assert "30.000 fps" in (failed.error_message or "")
    assert accounts.credits.balance(user.id) == 100
    assert results_files(ctx) == []


async def test_cancel_mid_job_stops_it_and_releases_credits(
    accounts, tmp_path, catalog, astronaut_video
):
    ctx = jobs_context(accounts, tmp_path / "data", catalog, batches_in_flight=1)
    user = make_user(accounts, credits=100)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key), cost=11)
    models = FakeModels(stall_after=1)
    task = asyncio.ensure_future(JobExecutor(ctx, models).execute(claim(ctx, job)))
    await asyncio.wait_for(models.stalled.wait(), 10)
    assert ctx.store.get(job.id).frames_done == 4
    assert ctx.store.cancel(job.id, user.id).status is JobStatus.CANCELLED
    assert accounts.credits.balance(user.id) == 100
    models.gate.set()
    assert await asyncio.wait_for(task, 10) is None
    assert models.calls == 2  # stopped at the next batch
    assert ctx.store.get(job.id).status is JobStatus.CANCELLED
    assert results_files(ctx) == []
    assert accounts.credits.balance(user.id) == 100 == accounts.credits.ledger_sum(user.id)


async def test_unavailable_models_requeue_then_fail(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts, credits=100)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key, max_attempts=2), cost=11)
    executor = JobExecutor(ctx, FakeModels(unavailable=100))
    import serve_app.jobs.worker.executor as runner

    runner.MODEL_CALL_TRIES, saved = 1, runner.MODEL_CALL_TRIES
    try:
        assert await executor.execute(claim(ctx, job)) is None
        assert ctx.store.get(job.id).status is JobStatus.QUEUED
        assert await executor.execute(claim(ctx, job)) is JobStatus.FAILED
    finally:
        runner.MODEL_CALL_TRIES = saved
    failed = ctx.store.get(job.id)
    assert failed.error_code == "model_unavailable" and failed.attempt == 2
    assert accounts.credits.balance(user.id) == 100


async def test_bad_inputs_fail_with_stable_codes(accounts, tmp_path, catalog):
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts)
    ctx.blobs.put_bytes("uploads/1-junk.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 500)
    ctx.blobs.put_bytes("uploads/1-text.mp4", b"hello, I am not a video at all")
    cases = {
        "uploads/1-junk.mp4": "invalid_media",
        "uploads/1-text.mp4": "unsupported_media",
        "uploads/1-gone.mp4": "input_not_found",
    }
    executor = JobExecutor(ctx, FakeModels())
    for key, code in cases.items():
        job = ctx.store.create(new_job(user, input_key=key))
        assert await executor.execute(claim(ctx, job)) is JobStatus.FAILED
        assert ctx.store.get(job.id).error_code == code


async def test_public_urls_are_fetched_and_charged_by_the_runner(
    accounts, tmp_path, catalog, astronaut_video
):
    video = astronaut_video.read_bytes()
    hooks: list[dict] = []

    def handler(method, path, headers, body):
        if method == "POST":
            hooks.append(json.loads(body))
            return 204, {}, b""
        return 200, {"Content-Type": "video/mp4"}, video

    with counting_server(handler) as server:
        net = Network(
            names={"videos.test": [PUBLIC_IP], "hooks.test": [PUBLIC_IP]},
            routes={(PUBLIC_IP, 80): server.port},
        )
        from serve_app.net.fetch import FetchPolicy, SafeHttp

        http = SafeHttp(FetchPolicy(max_bytes=10**7), resolver=net.resolve, connector=net.connect)
        ctx = jobs_context(accounts, tmp_path / "data", catalog, http=http)
        user = make_user(accounts, credits=12)
        fields = {"input_key": None, "input_url": "http://videos.test/a.mp4"}
        job = ctx.store.create(
            new_job(user, **fields, callback_url="http://hooks.test/done", callback_secret="k")
        )
        assert job.reservation_id is None
        assert await JobExecutor(ctx, FakeModels()).execute(claim(ctx, job)) is JobStatus.SUCCEEDED
        assert accounts.credits.balance(user.id) == 2  # 10 frames x 1 model
        assert hooks and hooks[0]["job_id"] == job.id and hooks[0]["status"] == 0
        assert ctx.store.get(job.id).callback_state == "delivered"

        broke = ctx.store.create(new_job(user, **fields))
        assert await JobExecutor(ctx, FakeModels()).execute(claim(ctx, broke)) is JobStatus.FAILED
        assert ctx.store.get(broke.id).error_code == "insufficient_credits"
        assert accounts.credits.balance(user.id) == 2
    assert not list((tmp_path / "data" / "spool").glob("*"))  # fetched files are removed


async def test_private_input_urls_fail_without_a_connection(accounts, tmp_path, catalog):
    with counting_server(lambda m, p, h, b: (200, {}, b"x")) as server:
        ctx = jobs_context(accounts, tmp_path / "data", catalog)
        user = make_user(accounts)
        url = f"http://127.0.0.1:{server.port}/v.mp4"
        job = ctx.store.create(new_job(user, input_key=None, input_url=url))
        assert await JobExecutor(ctx, FakeModels()).execute(claim(ctx, job)) is JobStatus.FAILED
        assert ctx.store.get(job.id).error_code == "input_url_refused"
        assert server.connections == 0


async def test_null_frames_stay_null(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key, billable=False))
    null_all = FakeModels(null_frames=frozenset(range(256)))
    assert await JobExecutor(ctx, null_all).execute(claim(ctx, job)) is JobStatus.SUCCEEDED
    doc = json.loads(ctx.blobs.read_bytes(result_key(job.id)))
    assert doc["face-detection"] == [None] * 10 and len(doc["frame_offsets"]) == 10


async def test_a_stopping_worker_gives_its_job_back(accounts, tmp_path, catalog, astronaut_video):
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    user = make_user(accounts)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key, billable=False))
    models = FakeModels(stall_after=0)
    worker = JobWorker(ctx, JobExecutor(ctx, models))
    loop = asyncio.ensure_future(worker.run_forever())
    await asyncio.wait_for(models.stalled.wait(), 10)
    assert ctx.store.get(job.id).status is JobStatus.RUNNING
    await worker.stop()
    await asyncio.wait_for(loop, 5)
    assert ctx.store.get(job.id).status is JobStatus.QUEUED
    fresh = JobWorker(ctx, JobExecutor(ctx, FakeModels()))
    fresh_loop = asyncio.ensure_future(fresh.run_forever())
    for _ in range(200):
        if ctx.store.get(job.id).status is JobStatus.SUCCEEDED:
            break
        await asyncio.sleep(0.05)
    await fresh.stop()
    await fresh_loop
    assert ctx.store.get(job.id).status is JobStatus.SUCCEEDED


async def test_a_job_outliving_the_reservation_timeout_is_charged_in_full(
    accounts, tmp_path, catalog, astronaut_video
):
    """Issue 15 item 7: the age sweep leaves a running job's hold alone (it is leased)."""
    ctx = jobs_context(accounts, tmp_path / "data", catalog, batches_in_flight=1)
    user = make_user(accounts, credits=11)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key), cost=11)
    models = FakeModels(stall_after=1)
    task = asyncio.ensure_future(JobExecutor(ctx, models).execute(claim(ctx, job)))
    await asyncio.wait_for(models.stalled.wait(), 10)
    # The run is now older than a (shortened) reservation timeout, and the sweep runs.
    await asyncio.sleep(0.3)
    accounts.credits.release_stale(dt.timedelta(seconds=0.1))
    assert accounts.credits.state(job.reservation_id) is ReservationState.RESERVED
    assert accounts.credits.balance(user.id) == 0
    with pytest.raises(InsufficientCredits):  # the held credits cannot be spent elsewhere
        accounts.credits.reserve(user.id, 11, "something else")
    models.gate.set()
    assert await asyncio.wait_for(task, 10) is JobStatus.SUCCEEDED
    done = ctx.store.get(job.id)
    assert (done.frames_done, done.credits_charged) == (10, 10)
    assert accounts.credits.state(job.reservation_id) is ReservationState.CAPTURED
    assert accounts.credits.balance(user.id) == 1 == accounts.credits.ledger_sum(user.id)


async def test_a_dead_workers_job_hold_expires_and_the_retry_holds_again(
    accounts, tmp_path, catalog, astronaut_video
):
    """The hold follows the job's lease: a dead worker's hold is released once the lease
    has passed, and the next attempt reserves again before it processes anything."""
    ctx = jobs_context(accounts, tmp_path / "data", catalog, lease_s=0.3)
    user = make_user(accounts, credits=11)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key, max_attempts=3), cost=11)
    assert ctx.store.renew(job.id, claim(ctx, job).attempt, 0.3)  # then the worker dies
    time.sleep(0.4)
    assert accounts.credits.release_expired() == 1
    assert accounts.credits.state(job.reservation_id) is ReservationState.RELEASED
    assert accounts.credits.balance(user.id) == 11

    await JobWorker(ctx, JobExecutor(ctx, FakeModels())).drain()
    done = ctx.store.get(job.id)
    assert (done.status, done.attempt, done.credits_charged) == (JobStatus.SUCCEEDED, 2, 10)
    assert done.reservation_id != job.reservation_id
    assert accounts.credits.state(done.reservation_id) is ReservationState.CAPTURED
    assert accounts.credits.balance(user.id) == 1 == accounts.credits.ledger_sum(user.id)
    assert ledger_kinds(accounts, user.id) == ["grant", "reserve", "release", "reserve"]


async def test_a_requeued_job_keeps_its_hold_while_it_waits(
    accounts, tmp_path, catalog, astronaut_video
):
    """A job given back to the queue holds its credits without a lease (the queued job
    owns them); expired-lease sweeps leave it alone."""
    ctx = jobs_context(accounts, tmp_path / "data", catalog, lease_s=0.3)
    user = make_user(accounts, credits=11)
    key = upload(ctx, astronaut_video, user.id)
    job = ctx.store.create(new_job(user, input_key=key, max_attempts=3), cost=11)
    claim(ctx, job)
    time.sleep(0.4)
    assert ctx.store.requeue_expired() == (1, 0)
    assert accounts.credits.release_expired() == 0
    assert accounts.credits.state(job.reservation_id) is ReservationState.RESERVED
    assert accounts.credits.balance(user.id) == 0
