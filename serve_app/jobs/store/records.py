"""Value objects of jobs: what is inserted (:class:`NewJob`) and what is read back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from serve_app.frame_models.spec import ModelSpec
from serve_app.jobs.spec import models_from_json
from serve_app.jobs.store.tables import JobRow, JobStatus


@dataclass(frozen=True)
class NewJob:
    """A job to insert. With ``error_code`` it is stored as already ``failed``."""

    id: str
    user_id: int
    infer_fps: float
    models_json: str
    max_attempts: int
    billable: bool = True
    input_key: str | None = None
    input_url: str | None = None
    callback_url: str | None = None
    callback_secret: str | None = None
    frames_total: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    kind: str = "infer"
    params_json: str | None = None


@dataclass(frozen=True)
class Backlog:
    """Work not yet done: queued and running jobs, and their remaining frames.

    ``frames`` counts only jobs whose ``frames_total`` is known (probed at submit or by
    a worker); ``jobs`` counts them all.
    """

    jobs: int = 0
    frames: int = 0


@dataclass(frozen=True)
class JobRecord:
    """A job row as the rest of the code sees it (never the ORM object)."""

    id: str
    user_id: int
    status: JobStatus
    input_key: str | None
    input_url: str | None
    infer_fps: float
    models_json: str
    callback_url: str | None
    callback_secret: str | None
    callback_state: str | None
    attempt: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    frames_done: int
    frames_total: int | None
    error_code: str | None
    error_message: str | None
    reservation_id: str | None
    billable: bool
    credits_charged: int
    result_key: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    kind: str = "infer"
    params_json: str | None = None

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        return models_from_json(self.models_json)

    @classmethod
    def from_row(cls, row: JobRow) -> JobRecord:
        return cls(
            id=row.id,
            user_id=row.user_id,
            status=JobStatus(row.status),
            input_key=row.input_key,
            input_url=row.input_url,
            infer_fps=row.infer_fps,
            models_json=row.models_json,
            callback_url=row.callback_url,
            callback_secret=row.callback_secret,
            callback_state=row.callback_state,
            attempt=row.attempt,
            max_attempts=row.max_attempts,
            lease_owner=row.lease_owner,
            lease_expires_at=row.lease_expires_at,
            frames_done=row.frames_done,
            frames_total=row.frames_total,
            error_code=row.error_code,
            error_message=row.error_message,
            reservation_id=row.reservation_id,
            billable=row.billable,
            credits_charged=row.credits_charged,
            result_key=row.result_key,
            created_at=row.created_at,
            updated_at=row.updated_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            kind=row.kind,
            params_json=row.params_json,
        )
