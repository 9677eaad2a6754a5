"""A summary worker killed mid-job (SIGKILL, a real process): the next attempt skips
the chunks already stored, and the job is charged once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from serve_app.jobs.store.tables import JobStatus
from serve_app.storage.db import Database
from serve_app.summaries.spec import SummaryRequest
from tests.jobs.conftest import make_user
from tests.jobs.test_job_store import ledger_kinds
from tests.summaries.support import (
    KILLABLE_JOBS,
    Witness,
    executor,
    signed_upload,
    summaries,
    summary_context,
)
from tests.support.media_files import make_video

ROOT = Path(__file__).resolve().parents[2]


def worker_database_url(database: Database) -> str:
    """``database``'s URL for another process (with its test schema on PostgreSQL)."""
    url = database.engine.url
    if not database.is_sqlite:
        with database.engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
async def test_a_killed_worker_resumes_without_redoing_chunks_and_charges_once(
    accounts, tmp_path, tiny_engine, tiny_model_dir
):
    profile, engine = tiny_engine
    data_dir = tmp_path / "data"
    ctx = summary_context(accounts, data_dir, profile, **KILLABLE_JOBS)
    user = make_user(accounts, credits=100)
    video = make_video(tmp_path / "six.mp4", width=160, height=120, fps=30, frames=180)
    body = SummaryRequest(
        input_url=signed_upload(ctx, user, video), chunk_s=1.0, frames_per_chunk=2
    )
    submitted = await summaries(ctx).submit(user, body)
    job_id = submitted["job_id"]
    cost = 6 * 2 + 5
    assert submitted["estimated_credits"] == cost

    url = worker_database_url(accounts.database)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.summaries.worker_process",
            url,
            str(data_dir),
            str(tiny_model_dir),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(ctx.store.parts(job_id)) >= 2, 120, "two stored chunks")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        assert worker.stdout is not None
        worker.stdout.close()
    before = {part for part, _ in ctx.store.parts(job_id)}
    assert 2 <= len(before) < 6
    dead = ctx.store.get(job_id)
    # Running, at the attempt that was killed (under load the worker may have lost and
    # re-claimed its own lease before the kill: the attempt counts claims).
    assert dead.status is JobStatus.RUNNING and dead.lease_owner == "doomed"
    assert accounts.credits.balance(user.id) == 100 - cost  # the hold survives the kill

    time.sleep(KILLABLE_JOBS["lease_s"] + 0.2)  # the dead worker's lease runs out
    assert ctx.store.requeue_expired() == (1, 0)
    job = ctx.store.claim("survivor", ctx.jobs.lease_s)
    assert job is not None and job.id == job_id and job.attempt == dead.attempt + 1
    witness = Witness(engine)
    assert await executor(ctx, profile, witness).execute(job) is JobStatus.SUCCEEDED

    redone = {int(request_id.split("-")[1]) for request_id in witness.seen}
    assert redone == set(range(6)) - before  # nothing stored was captioned again
    done = ctx.store.get(job_id)
    assert (done.frames_done, done.frames_total, done.credits_charged) == (6, 6, cost)
    assert accounts.credits.balance(user.id) == 100 - cost == accounts.credits.ledger_sum(user.id)
    # One reservation, made at submit and captured whole: no second hold, no refund.
    assert ledger_kinds(accounts, user.id) == ["grant", "reserve"]
    document = json.loads(ctx.blobs.read_bytes(done.result_key))
    assert [c["index"] for c in document["chunks"]] == list(range(6))
