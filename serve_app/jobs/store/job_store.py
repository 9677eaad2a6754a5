"""Durable job state: create, claim with a lease, renew, progress, finish, requeue.

Every transition is one conditional ``UPDATE``. A claim takes the oldest queued job
(``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)`` on PostgreSQL; on
SQLite the same guarded update, serialized by ``BEGIN IMMEDIATE``) and increments
``attempt``. Worker writes (renew, progress, complete, fail, reserve) carry the
attempt they hold and match only while the job is still ``running`` at that attempt,
so a worker that lost its lease, or whose job was cancelled, changes nothing and
learns so from the ``False`` it gets back. Credits move in the same transaction as
the status change that decides them.

A job's credit hold follows the job's lease: claiming, renewing and progress give the
hold the job's ``lease_expires_at``, so the accounts sweeps never release the hold of a
job that is running, however long it runs, and release a dead worker's once its lease
has passed. A queued job's hold has no lease (the job row owns it). An attempt whose
hold was released meanwhile reserves again before it processes a frame
(:meth:`JobStore.reserve`).

Every committed status change is counted in ``serve_app_job_transitions`` (after the
commit, and only when the guarded update matched), credits captured on success in
``serve_app_credits_charged{kind="job"}``; :meth:`JobStore.counts` is the cheap
``GROUP BY`` behind the ``serve_app_jobs`` gauge, :meth:`JobStore.backlog` the one
aggregate behind ``serve_app_job_backlog`` and the JobRunner's autoscaling.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.orm import Session

from serve_app.accounts.credits import ReservationState, release_in, reserve_in
from serve_app.accounts.models import ReservationRow
from serve_app.errors import Conflict, NotFound
from serve_app.jobs.store.billing import charge_in
from serve_app.jobs.store.records import Backlog, JobRecord, NewJob
from serve_app.jobs.store.tables import JobPartRow, JobRow, JobStatus
from serve_app.observability import metrics
from serve_app.storage.db import Database
from serve_app.storage.orm import utcnow

#: Error code of a job whose workers kept disappearing.
WORKER_LOST = "worker_lost"
_ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class _Fenced(Exception):
    """Rolls back a transaction whose guarded update matched nothing."""


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _matches(row: JobRow, user_id: int | None, kind: str | None) -> bool:
    return (user_id is None or row.user_id == user_id) and (kind is None or row.kind == kind)


def _pending_callback() -> Any:
    return case((JobRow.callback_url.is_not(None), "pending"), else_=None)


class JobStore:
    """Job rows in ``database``; ``clock`` gives aware UTC datetimes (tests move it)."""

    def __init__(self, database: Database, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._db = database
        self._clock = clock

    @property
    def database(self) -> Database:
        return self._db

    # ---- client side -------------------------------------------------------------

    def create(self, job: NewJob, *, cost: int = 0, reason: str = "video job") -> JobRecord:
        """Insert ``job``; with ``cost`` > 0 reserve the credits in the same transaction.

        Raises:
            InsufficientCredits: the balance does not cover ``cost`` (nothing is stored).
        """
        now = self._clock()
        with self._db.transaction() as session:
            reservation_id = None
            if cost > 0:
                reservation_id = reserve_in(session, job.user_id, cost, reason).id
            row = JobRow(
                id=job.id,
                kind=job.kind,
                params_json=job.params_json,
                user_id=job.user_id,
                status=(JobStatus.FAILED if job.error_code else JobStatus.QUEUED).value,
                input_key=job.input_key,
                input_url=job.input_url,
                infer_fps=job.infer_fps,
                models_json=job.models_json,
                callback_url=job.callback_url,
                callback_secret=job.callback_secret,
                callback_state="pending" if job.callback_url and job.error_code else None,
                attempt=0,
                max_attempts=job.max_attempts,
                frames_done=0,
                frames_total=job.frames_total,
                error_code=job.error_code,
                error_message=job.error_message,
                reservation_id=reservation_id,
                billable=job.billable,
                credits_charged=0,
                created_at=now,
                updated_at=now,
                finished_at=now if job.error_code else None,
            )
            session.add(row)
            session.flush()
            record = JobRecord.from_row(row)
        metrics.record_job_transition(record.status.value)
        return record

    def get(self, job_id: str, user_id: int | None = None, kind: str | None = None) -> JobRecord:
        """The job (of ``user_id`` and of ``kind``, when given). Raises NotFound."""
        with self._db.transaction() as session:
            row = session.get(JobRow, job_id)
            if row is None or not _matches(row, user_id, kind):
                raise NotFound("no such job")
            return JobRecord.from_row(row)

    def cancel(self, job_id: str, user_id: int, kind: str | None = None) -> JobRecord:
        """Cancel a queued or running job and release its credits; repeats are harmless.

        Raises:
            NotFound: no such job of this user (and ``kind``).
            Conflict: the job already succeeded or failed.
        """
        now = self._clock()
        with self._db.transaction() as session:
            found = session.get(JobRow, job_id)
            if found is None or not _matches(found, user_id, kind):
                raise NotFound("no such job")
            moved = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.user_id == user_id, JobRow.status.in_(_ACTIVE))
                .values(
                    status=JobStatus.CANCELLED.value,
                    error_code="cancelled",
                    error_message="the job was cancelled",
                    lease_owner=None,
                    lease_expires_at=None,
                    callback_state=_pending_callback(),
                    updated_at=now,
                    finished_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            row = session.get(JobRow, job_id, populate_existing=True)
            if row is None or row.user_id != user_id:
                raise NotFound("no such job")
            cancelled = _rowcount(moved) == 1
            if cancelled and row.reservation_id:
                release_in(session, row.reservation_id)
            if row.status != JobStatus.CANCELLED.value:
                raise Conflict(f"the job has already {row.status}")
            record = JobRecord.from_row(row)
        if cancelled:
            metrics.record_job_transition(JobStatus.CANCELLED.value)
        return record

    # ---- worker side -------------------------------------------------------------

    def claim(self, owner: str, lease_s: float) -> JobRecord | None:
        """Take the oldest queued job: ``running``, ``attempt + 1``, leased to ``owner``."""
        now = self._clock()
        pick = (
            select(JobRow.id)
            .where(JobRow.status == JobStatus.QUEUED.value)
            .order_by(JobRow.created_at, JobRow.id)
            .limit(1)
        )
        if not self._db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        with self._db.transaction() as session:
            claimed = session.execute(
                update(JobRow)
                .where(JobRow.id == pick.scalar_subquery(), JobRow.status == JobStatus.QUEUED.value)
                .values(
                    status=JobStatus.RUNNING.value,
                    attempt=JobRow.attempt + 1,
                    lease_owner=owner[:64],
                    lease_expires_at=now + dt.timedelta(seconds=lease_s),
                    heartbeat_at=now,
                    frames_done=0,
                    started_at=now,
                    updated_at=now,
                )
                .returning(JobRow.id)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if claimed is None:
                return None
            self._lease_hold(session, claimed)
            row = session.get(JobRow, claimed, populate_existing=True)
            assert row is not None
            record = JobRecord.from_row(row)
        metrics.record_job_transition(JobStatus.RUNNING.value)
        return record

    def _guarded(self, session: Session, job_id: str, attempt: int, **values: Any) -> bool:
        result = session.execute(
            update(JobRow)
            .where(
                JobRow.id == job_id,
                JobRow.attempt == attempt,
                JobRow.status == JobStatus.RUNNING.value,
            )
            .values(updated_at=self._clock(), **values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    @staticmethod
    def _lease_hold(session: Session, job_id: str) -> None:
        """Give the job's held reservation the job's own lease (None while queued)."""
        job = select(JobRow).where(JobRow.id == job_id)
        session.execute(
            update(ReservationRow)
            .where(
                ReservationRow.id == job.with_only_columns(JobRow.reservation_id).scalar_subquery(),
                ReservationRow.state == ReservationState.RESERVED.value,
            )
            .values(
                lease_expires_at=job.with_only_columns(JobRow.lease_expires_at).scalar_subquery()
            )
            .execution_options(synchronize_session=False)
        )

    def renew(self, job_id: str, attempt: int, lease_s: float) -> bool:
        """Extend the lease (and the hold's); False when this attempt lost the job."""
        return self._extend_lease(job_id, attempt, lease_s)

    def progress(
        self, job_id: str, attempt: int, frames_done: int, frames_total: int, lease_s: float
    ) -> bool:
        """Record progress (and renew the leases); False when fenced out or cancelled."""
        return self._extend_lease(
            job_id, attempt, lease_s, frames_done=frames_done, frames_total=frames_total
        )

    def _extend_lease(self, job_id: str, attempt: int, lease_s: float, **values: Any) -> bool:
        """Set ``values`` and a lease of ``lease_s`` from now on the job and its hold."""
        with self._db.transaction() as session:
            return self._extend_in(session, job_id, attempt, lease_s, **values)

    def _extend_in(
        self, session: Session, job_id: str, attempt: int, lease_s: float, **values: Any
    ) -> bool:
        """:meth:`_extend_lease` inside the caller's transaction."""
        now = self._clock()
        extended = self._guarded(
            session,
            job_id,
            attempt,
            **values,
            lease_expires_at=now + dt.timedelta(seconds=lease_s),
            heartbeat_at=now,
        )
        if extended:
            self._lease_hold(session, job_id)
        return extended

    def reserve(self, job_id: str, attempt: int, user_id: int, cost: int) -> bool:
        """Make sure the attempt holds credits before it runs; False when fenced.

        Reserves ``cost`` when the job has no held reservation: none was made at submit
        (no estimate), or it was released meanwhile (a dead worker's expired hold). The
        new hold has the job's lease.

        Raises:
            InsufficientCredits: the balance does not cover ``cost``.
        """
        try:
            with self._db.transaction() as session:
                current = session.scalar(select(JobRow.reservation_id).where(JobRow.id == job_id))
                if current is not None and self._held(session, current):
                    return True
                reservation = reserve_in(session, user_id, cost, f"video job {job_id}")
                if not self._guarded(session, job_id, attempt, reservation_id=reservation.id):
                    raise _Fenced
                self._lease_hold(session, job_id)
                return True
        except _Fenced:
            return False

    @staticmethod
    def _held(session: Session, reservation_id: str) -> bool:
        state = session.scalar(
            select(ReservationRow.state).where(ReservationRow.id == reservation_id)
        )
        return state == ReservationState.RESERVED.value

    def complete(self, job_id: str, attempt: int, result_key: str, cost: int) -> bool:
        """``running`` → ``succeeded`` for ``attempt`` only, capturing ``cost`` credits.

        Returns False (and moves no credits) for a late write of an old attempt.
        """
        now = self._clock()
        with self._db.transaction() as session:
            if not self._guarded(
                session,
                job_id,
                attempt,
                status=JobStatus.SUCCEEDED.value,
                result_key=result_key,
                frames_done=func.coalesce(JobRow.frames_total, JobRow.frames_done),
                lease_owner=None,
                lease_expires_at=None,
                callback_state=_pending_callback(),
                finished_at=now,
            ):
                return False
            row = session.execute(
                select(JobRow.reservation_id, JobRow.user_id).where(JobRow.id == job_id)
            ).one()
            charge = charge_in(session, row.reservation_id, row.user_id, cost) if row[0] else None
            if charge is not None:
                session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id)
                    .values(credits_charged=charge[0], reservation_id=charge[1])
                    .execution_options(synchronize_session=False)
                )
        metrics.record_job_transition(JobStatus.SUCCEEDED.value)
        if charge is not None:
            metrics.record_credits_charged("job", charge[0])
        return True

    def fail(self, job_id: str, attempt: int, code: str, message: str) -> bool:
        """``running`` → ``failed`` for ``attempt`` only, releasing the credits."""
        with self._db.transaction() as session:
            failed = self._fail_in(session, job_id, attempt, code, message)
        if failed:
            metrics.record_job_transition(JobStatus.FAILED.value)
        return failed

    def _fail_in(
        self, session: Session, job_id: str, attempt: int, code: str, message: str
    ) -> bool:
        if not self._guarded(
            session,
            job_id,
            attempt,
            status=JobStatus.FAILED.value,
            error_code=code[:64],
            error_message=message[:2000],
            lease_owner=None,
            lease_expires_at=None,
            callback_state=_pending_callback(),
            finished_at=self._clock(),
        ):
            return False
        reservation = session.scalar(select(JobRow.reservation_id).where(JobRow.id == job_id))
        if reservation:
            release_in(session, reservation)
        return True

    def save_part(
        self, job_id: str, attempt: int, part: int, payload_json: str, lease_s: float
    ) -> bool:
        """Store part ``part``'s result and count it in ``frames_done``, for ``attempt`` only.

        One transaction: the guarded update (which also renews the leases) and the
        insert. A part stored before (by an earlier attempt) is kept as it was. Returns
        False, storing nothing, when this attempt no longer owns the job.
        """
        now = self._clock()
        try:
            with self._db.transaction() as session:
                if session.get(JobPartRow, (job_id, part)) is None:
                    session.add(
                        JobPartRow(
                            job_id=job_id, part=part, payload_json=payload_json, created_at=now
                        )
                    )
                    session.flush()
                done = select(func.count()).where(JobPartRow.job_id == job_id).scalar_subquery()
                if not self._extend_in(session, job_id, attempt, lease_s, frames_done=done):
                    raise _Fenced
                return True
        except _Fenced:
            return False

    def parts(self, job_id: str, after: int = -1) -> list[tuple[int, str]]:
        """``(part, payload_json)`` of the job's stored parts above ``after``, in order."""
        with self._db.transaction() as session:
            rows = session.execute(
                select(JobPartRow.part, JobPartRow.payload_json)
                .where(JobPartRow.job_id == job_id, JobPartRow.part > after)
                .order_by(JobPartRow.part)
            ).all()
        return [(int(part), str(payload)) for part, payload in rows]

    def requeue(self, job_id: str, attempt: int) -> bool:
        """Give a running job back to the queue (its worker is shutting down)."""
        with self._db.transaction() as session:
            requeued = self._guarded(
                session,
                job_id,
                attempt,
                status=JobStatus.QUEUED.value,
                lease_owner=None,
                lease_expires_at=None,
            )
            if requeued:
                self._lease_hold(session, job_id)
        if requeued:
            metrics.record_job_transition(JobStatus.QUEUED.value)
        return requeued

    def requeue_expired(self) -> tuple[int, int]:
        """Jobs whose lease ran out: back to ``queued``, or ``failed`` after the last attempt.

        Returns ``(requeued, failed)``. Safe to run from every worker at once.
        """
        now = self._clock()
        expired = (JobRow.status == JobStatus.RUNNING.value, JobRow.lease_expires_at < now)
        with self._db.transaction() as session:
            requeued = (
                session.execute(
                    update(JobRow)
                    .where(*expired, JobRow.attempt < JobRow.max_attempts)
                    .values(
                        status=JobStatus.QUEUED.value,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                    .returning(JobRow.id)
                    .execution_options(synchronize_session=False)
                )
                .scalars()
                .all()
            )
            for job_id in requeued:
                self._lease_hold(session, job_id)
            exhausted = session.execute(
                select(JobRow.id, JobRow.attempt).where(
                    *expired, JobRow.attempt >= JobRow.max_attempts
                )
            ).all()
            failed = 0
            for job_id, attempt in exhausted:
                failed += self._fail_in(
                    session,
                    job_id,
                    attempt,
                    WORKER_LOST,
                    f"the job's worker stopped responding {attempt} times; giving up",
                )
        back = len(requeued)
        metrics.record_job_transition(JobStatus.QUEUED.value, back)
        metrics.record_job_transition(JobStatus.FAILED.value, failed)
        return back, failed

    def counts(self) -> dict[str, int]:
        """Jobs per status, every status included (one ``GROUP BY`` on an indexed column)."""
        with self._db.transaction() as session:
            rows = session.execute(
                select(JobRow.status, func.count()).group_by(JobRow.status)
            ).all()
        counts = dict.fromkeys((status.value for status in JobStatus), 0)
        counts.update({str(status): int(n) for status, n in rows})
        return counts

    def backlog(self, kind: str | None = None) -> Backlog:
        """Queued and running jobs (of ``kind``, when given) and their remaining frames
        (one aggregate query).

        Remaining frames are ``frames_total - frames_done`` of the jobs whose total is
        known, never negative. A summary job counts its chunks there (each one model
        request, like a batch of an ``infer`` job's frames).
        """
        remaining = case(
            (JobRow.frames_total.is_(None), 0),
            (JobRow.frames_total > JobRow.frames_done, JobRow.frames_total - JobRow.frames_done),
            else_=0,
        )
        with self._db.transaction() as session:
            active: list[ColumnElement[bool]] = [JobRow.status.in_(_ACTIVE)]
            if kind is not None:
                active.append(JobRow.kind == kind)
            jobs, frames = session.execute(
                select(func.count(), func.coalesce(func.sum(remaining), 0)).where(*active)
            ).one()
        return Backlog(jobs=int(jobs), frames=int(frames))

    def set_callback_state(self, job_id: str, state: str) -> None:
        with self._db.transaction() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id)
                .values(callback_state=state)
                .execution_options(synchronize_session=False)
            )
