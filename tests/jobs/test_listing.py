"""A user's recent jobs: newest first, their own only, with the public status codes."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

import pytest

from serve_app.errors import InvalidRequest
from serve_app.jobs.spec import models_to_json
from serve_app.jobs.store.job_store import JobStore
from serve_app.jobs.store.tables import JobStatus
from serve_app.jobs.submit.listing import job_summary, list_jobs, recent_jobs
from tests.jobs.conftest import FACE, PEOPLE, make_user, new_job

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def ticking_store(accounts) -> JobStore:
    """A store whose clock moves one minute per call, so creation order is certain."""
    minutes = itertools.count()
    return JobStore(accounts.database, clock=lambda: START + dt.timedelta(minutes=next(minutes)))


def test_recent_jobs_are_the_users_own_newest_first(accounts) -> None:
    store = ticking_store(accounts)
    user, other = make_user(accounts), make_user(accounts)
    mine = [store.create(new_job(user)).id for _ in range(5)]
    theirs = store.create(new_job(other)).id
    db = accounts.database
    assert [j.id for j in recent_jobs(db, user.id)] == mine[::-1]
    assert [j.id for j in recent_jobs(db, user.id, limit=2)] == mine[:2:-1]
    assert [j.id for j in recent_jobs(db, other.id, limit=100)] == [theirs]
    assert recent_jobs(db, make_user(accounts).id) == []
    for limit in (0, 101, -1):
        with pytest.raises(InvalidRequest, match="between 1 and 100"):
            recent_jobs(db, user.id, limit)


def test_summaries_carry_the_public_status_and_progress(accounts) -> None:
    store = ticking_store(accounts)
    user = make_user(accounts)
    queued = store.create(new_job(user, models_json=models_to_json([FACE, PEOPLE])))
    failed = store.create(
        new_job(user, frames_total=10, error_code="infer_fps_too_high", error_message="too fast")
    )
    cancelled = store.create(new_job(user))
    store.cancel(cancelled.id, user.id)
    running = store.create(new_job(user))
    claimed = store.claim("worker", 60)
    assert claimed is not None and claimed.id == queued.id  # the oldest queued job
    assert store.progress(queued.id, claimed.attempt, 3, 10, 60)

    jobs = {j["job_id"]: j for j in list_jobs(accounts.database, user.id)["jobs"]}
    assert list(jobs) == [running.id, cancelled.id, failed.id, queued.id]
    assert {k: jobs[queued.id][k] for k in ("status", "state", "frames_done", "frames_total")} == {
        "status": 1,
        "state": "running",
        "frames_done": 3,
        "frames_total": 10,
    }
    assert jobs[queued.id]["models"] == ["face-detection", "people-detection"]
    assert (jobs[running.id]["status"], jobs[running.id]["state"]) == (1, "queued")
    assert jobs[failed.id] | {"job_id": "-"} == {
        "job_id": "-",
        "status": 2,
        "state": "failed",
        "created_at": "2025-01-01T00:01:00+00:00",
        "updated_at": "2025-01-01T00:01:00+00:00",
        "finished_at": "2025-01-01T00:01:00+00:00",
        "infer_fps": 5.0,
        "models": ["face-detection"],
        "frames_done": 0,
        "frames_total": 10,
        "error_code": "infer_fps_too_high",
        "error_message": "too fast",
    }
    assert (jobs[cancelled.id]["status"], jobs[cancelled.id]["error_code"]) == (3, "cancelled")
    assert jobs[running.id]["finished_at"] is None


def test_summaries_of_every_state_have_the_same_keys(accounts) -> None:
    user = make_user(accounts)
    record = JobStore(accounts.database).create(new_job(user))
    keys = set(job_summary(record))
    for status in JobStatus:
        assert set(job_summary(replace(record, status=status))) == keys
    assert "input_url" not in keys and "callback_secret" not in keys
