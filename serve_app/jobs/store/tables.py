"""The ``video_jobs`` table: one row per batch video inference job.

A job moves ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``, and
back from ``running`` to ``queued`` when its worker's lease expires. ``attempt`` counts
claims and is the fencing token: every write a worker makes names the attempt it
holds, and the database refuses it once another attempt has taken over.

``kind`` says what a job does: ``infer`` (per-frame models, ``/videoinfer/``) or
``summary`` (a long-video summary, :mod:`serve_app.summaries`, whose request is
``params_json``). A job made of independent parts (a summary's chunks) stores each
part's result in ``video_job_parts`` as it completes, so a later attempt skips it.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from serve_app.storage.orm import Base, utcnow


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobRow(Base):
    __tablename__ = "video_jobs"
    __table_args__ = (
        Index("ix_video_jobs_status_created_at", "status", "created_at"),
        Index("ix_video_jobs_status_lease_expires_at", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: ``infer`` or ``summary`` (see the module docstring).
    kind: Mapped[str] = mapped_column(String(16), default="infer")
    #: The request of a job kind whose parameters are not columns (JSON).
    params_json: Mapped[str | None] = mapped_column(Text, default=None)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    #: The input: a blob key of an upload (``input_key``) or a public URL.
    input_key: Mapped[str | None] = mapped_column(String(200), default=None)
    input_url: Mapped[str | None] = mapped_column(Text, default=None)
    infer_fps: Mapped[float] = mapped_column(Float)
    #: JSON list of the requested models (model_id, model_version, type, params).
    models_json: Mapped[str] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(Text, default=None)
    callback_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    #: ``pending`` → ``delivered`` | ``failed`` (null: no callback).
    callback_state: Mapped[str | None] = mapped_column(String(16), default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int | None] = mapped_column(Integer, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    reservation_id: Mapped[str | None] = mapped_column(
        ForeignKey("reservations.id", ondelete="SET NULL"), default=None
    )
    #: False for administrators' jobs, which are free.
    billable: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Credits charged on success (0 for admins).
    credits_charged: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Set with ``succeeded``; derived from the job id, so every attempt writes one file.
    result_key: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class JobPartRow(Base):
    """One finished part of a job (a summary's chunk): written once, by the attempt
    that owned the job then, and read by every later attempt and by the status API."""

    __tablename__ = "video_job_parts"
    __table_args__ = (PrimaryKeyConstraint("job_id", "part", name="pk_video_job_parts"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("video_jobs.id", ondelete="CASCADE"))
    part: Mapped[int] = mapped_column(Integer)
    #: The part's result (JSON).
    payload_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
