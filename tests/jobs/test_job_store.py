"""The job store on SQLite and PostgreSQL: claims, leases, fencing, credits."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from serve_app.accounts.credits import ReservationState
from serve_app.accounts.models import CreditLedgerRow
from serve_app.errors import Conflict, InsufficientCredits, NotFound
from serve_app.jobs.store.job_store import WORKER_LOST, JobStore
from serve_app.jobs.store.records import Backlog
from serve_app.jobs.store.tables import JobStatus
from tests.jobs.conftest import make_user, new_job


def ledger_kinds(accounts, user_id: int) -> list[str]:
    with accounts.database.transaction() as session:
        return list(
            session.scalars(
                select(CreditLedgerRow.kind)
                .where(CreditLedgerRow.user_id == user_id)
                .order_by(CreditLedgerRow.id)
            )
        )


def test_create_reserves_in_the_same_transaction(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=50)
    job = store.create(new_job(user), cost=30)
    assert job.status is JobStatus.QUEUED and job.reservation_id
    assert accounts.credits.balance(user.id) == 20
    with pytest.raises(InsufficientCredits):
        store.create(new_job(user), cost=30)
    assert accounts.credits.balance(user.id) == 20  # nothing stored, nothing taken
    with pytest.raises(NotFound):
        store.get(job.id, user_id=user.id + 1000)


def test_claims_take_the_oldest_job_once_each(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts)
    first, second = store.create(new_job(user)), store.create(new_job(user))
    claimed = store.claim("w1", 30)
    assert claimed is not None and claimed.id == first.id and claimed.attempt == 1
    assert claimed.status is JobStatus.RUNNING and claimed.lease_owner == "w1"
    assert claimed.lease_expires_at is not None
    again = store.claim("w2", 30)
    assert again is not None and again.id == second.id
    assert store.claim("w3", 30) is None


def test_concurrent_claims_never_share_a_job(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts)
    ids = {store.create(new_job(user)).id for _ in range(6)}
    got: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := store.claim(name, 30)) is not None:
            with lock:
                got.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)


def test_expired_lease_is_requeued_and_the_old_attempt_is_fenced(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=100)
    job = store.create(new_job(user), cost=40)
    old = store.claim("dead", lease_s=0.2)
    assert old is not None and store.progress(job.id, 1, 3, 10, lease_s=0.2)
    assert store.requeue_expired() == (0, 0)  # still leased
    time.sleep(0.3)
    assert store.requeue_expired() == (1, 0)
    new = store.claim("alive", 30)
    assert new is not None and new.attempt == 2 and new.frames_done == 0
    # Every write of the old attempt is refused now.
    assert not store.renew(job.id, 1, 30)
    assert not store.progress(job.id, 1, 9, 10, 30)
    assert not store.complete(job.id, 1, "results/x.json", 25)
    assert not store.fail(job.id, 1, "boom", "late failure")
    assert store.complete(job.id, 2, "results/x.json", 25)
    assert not store.complete(job.id, 2, "results/x.json", 25)  # a repeat moves nothing
    done = store.get(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.credits_charged == 25
    assert done.frames_done == done.frames_total
    assert accounts.credits.balance(user.id) == 75 == accounts.credits.ledger_sum(user.id)
    assert accounts.credits.state(job.reservation_id) is ReservationState.CAPTURED
    assert ledger_kinds(accounts, user.id) == ["grant", "reserve", "refund"]


def test_last_attempt_lost_fails_the_job_and_releases_credits(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=10)
    job = store.create(new_job(user, max_attempts=1), cost=10)
    store.claim("dead", lease_s=0.1)
    time.sleep(0.2)
    assert store.requeue_expired() == (0, 1)
    failed = store.get(job.id)
    assert failed.status is JobStatus.FAILED and failed.error_code == WORKER_LOST
    assert accounts.credits.balance(user.id) == 10


def test_cancel_releases_credits_and_fences_the_worker(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=10)
    job = store.create(new_job(user, callback_url="https://hooks.example/x"), cost=10)
    running = store.claim("w", 30)
    assert running is not None
    cancelled = store.cancel(job.id, user.id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.callback_state == "pending"
    assert accounts.credits.balance(user.id) == 10
    assert not store.progress(job.id, running.attempt, 1, 10, 30)
    assert not store.complete(job.id, running.attempt, "results/x.json", 10)
    assert store.cancel(job.id, user.id).status is JobStatus.CANCELLED  # repeat: harmless
    assert accounts.credits.balance(user.id) == 10 == accounts.credits.ledger_sum(user.id)
    with pytest.raises(NotFound):
        store.cancel(job.id, user.id + 1000)


def test_finished_jobs_cannot_be_cancelled(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts)
    job = store.create(new_job(user))
    claimed = store.claim("w", 30)
    assert claimed is not None
    assert store.fail(job.id, claimed.attempt, "invalid_media", "broken")
    with pytest.raises(Conflict):
        store.cancel(job.id, user.id)


def test_worker_reserves_when_submit_could_not(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=15)
    job = store.create(new_job(user))
    claimed = store.claim("w", 30)
    assert claimed is not None
    assert not store.reserve(job.id, claimed.attempt + 1, user.id, 10)  # fenced: no charge
    assert accounts.credits.balance(user.id) == 15
    assert store.reserve(job.id, claimed.attempt, user.id, 10)
    assert store.reserve(job.id, claimed.attempt, user.id, 10)  # already reserved: no-op
    assert accounts.credits.balance(user.id) == 5
    with pytest.raises(InsufficientCredits):
        other = store.create(new_job(user))
        assert store.claim("w", 30) is not None
        store.reserve(other.id, 1, user.id, 10)
    assert store.fail(job.id, claimed.attempt, "invalid_media", "x")
    assert accounts.credits.balance(user.id) == 15


def test_requeue_gives_a_running_job_back(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts)
    job = store.create(new_job(user))
    claimed = store.claim("w", 30)
    assert claimed is not None and store.requeue(job.id, claimed.attempt)
    assert store.get(job.id).status is JobStatus.QUEUED
    assert store.claim("w2", 30).attempt == 2  # type: ignore[union-attr]


def test_jobs_failed_at_submit_are_stored_finished(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts)
    job = store.create(new_job(user, error_code="infer_fps_too_high", error_message="too fast"))
    assert job.status is JobStatus.FAILED and job.finished_at is not None
    assert store.claim("w", 30) is None
    assert isinstance(job.created_at, dt.datetime) and job.created_at.tzinfo is not None


def test_a_reservation_swept_as_abandoned_is_charged_again_on_success(accounts) -> None:
    """Accounts maintenance releases unleased holds older than its timeout: a queued
    job's too. A claimed job's hold has the job's lease and is left alone."""
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=30)
    job = store.create(new_job(user), cost=20)
    accounts.credits.release(accounts.credits.reserve(user.id, 1, "x"))  # unrelated noise
    assert accounts.credits.release_stale(dt.timedelta(seconds=-1)) == 1  # the job's
    assert accounts.credits.balance(user.id) == 30
    claimed = store.claim("w", 30)
    assert claimed is not None
    assert store.complete(job.id, claimed.attempt, "results/x.json", 15)
    done = store.get(job.id)
    assert done.credits_charged == 15 and done.reservation_id != job.reservation_id
    assert accounts.credits.balance(user.id) == 15 == accounts.credits.ledger_sum(user.id)
    assert accounts.credits.state(done.reservation_id) is ReservationState.CAPTURED


def test_a_claimed_jobs_hold_follows_its_lease(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=30)
    job = store.create(new_job(user), cost=20)
    claimed = store.claim("w", 30)
    assert claimed is not None
    assert accounts.credits.release_stale(dt.timedelta(seconds=-1)) == 0
    assert accounts.credits.release_expired() == 0
    assert accounts.credits.state(job.reservation_id) is ReservationState.RESERVED
    assert store.renew(job.id, claimed.attempt, -1)  # the lease (and the hold's) ran out
    assert accounts.credits.release_expired() == 1
    assert accounts.credits.balance(user.id) == 30


def test_a_swept_reservation_the_balance_no_longer_covers_charges_nothing(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts, credits=20)
    job = store.create(new_job(user), cost=20)
    accounts.credits.release_stale(dt.timedelta(seconds=-1))
    claimed = store.claim("w", 30)
    assert claimed is not None
    store.create(new_job(user), cost=15)  # spends the returned credits elsewhere
    assert store.complete(job.id, claimed.attempt, "results/x.json", 15)
    assert store.get(job.id).status is JobStatus.SUCCEEDED
    assert store.get(job.id).credits_charged == 0
    assert accounts.credits.balance(user.id) == 5 == accounts.credits.ledger_sum(user.id)


def test_backlog_counts_active_jobs_and_their_remaining_frames(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts)
    assert store.backlog() == Backlog(jobs=0, frames=0)
    queued_known = store.create(new_job(user, frames_total=30))
    store.create(new_job(user))  # queued, total not known yet: a job, no frames
    store.create(new_job(user, error_code="bad_input", error_message="x"))  # failed
    assert store.backlog() == Backlog(jobs=2, frames=30)
    running = store.claim("w", 30)
    assert running is not None and running.id == queued_known.id
    assert store.progress(running.id, running.attempt, 12, 30, 30)
    assert store.backlog() == Backlog(jobs=2, frames=18)
    assert store.complete(running.id, running.attempt, "results/x.json", 0)
    assert store.backlog() == Backlog(jobs=1, frames=0)
    other = store.claim("w", 30)
    assert other is not None and store.progress(other.id, other.attempt, 9, 8, 30)
    assert store.backlog() == Backlog(jobs=1, frames=0)  # never negative


def test_backlog_of_one_kind(accounts) -> None:
    store = JobStore(accounts.database)
    user = make_user(accounts)
    store.create(new_job(user, frames_total=30))
    store.create(new_job(user, kind="summary", params_json="{}", frames_total=12))
    assert store.backlog() == Backlog(jobs=2, frames=42)
    assert store.backlog("summary") == Backlog(jobs=1, frames=12)
    assert store.backlog("infer") == Backlog(jobs=1, frames=30)
