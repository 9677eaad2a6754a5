"""Request and response bodies of the video inference job endpoints (OpenAPI docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SignedUrlRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    file_name: str = Field(
        min_length=1, max_length=255, description="The video's name; only its extension is used."
    )


class SignedUrlResponse(BaseModel):
    signed_url: str = Field(description="PUT (or POST) the raw video bytes here, then submit it.")


class UploadResponse(BaseModel):
    key: str
    size: int


class SubmitResponse(BaseModel):
    job_id: str
    message: str
    callback_secret: str | None = Field(
        None, description="Verifies callback signatures (only with a callback_url)."
    )


class JobStatusResponse(BaseModel):
    """``status``: 0 succeeded, 1 queued or running, 2 failed, 3 cancelled."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    status: int
    job_status: str
    message: str
    success: bool
    frames_done: int
    frames_total: int | None
    progress: float
    output_signed_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    models: list[dict[str, Any]] = Field(default_factory=list)


class JobSummary(BaseModel):
    """One job of ``GET /api/jobs`` (times are ISO 8601, UTC)."""

    job_id: str
    status: int = Field(description="0 succeeded, 1 queued or running, 2 failed, 3 cancelled.")
    state: str = Field(description="queued, running, succeeded, failed or cancelled.")
    created_at: str
    updated_at: str = Field(description="The job's last change (status or progress).")
    finished_at: str | None
    infer_fps: float
    models: list[str] = Field(description="The model_id of each of the job's models.")
    frames_done: int
    frames_total: int | None
    error_code: str | None
    error_message: str | None


class JobListResponse(BaseModel):
    jobs: list[JobSummary] = Field(description="The caller's most recent jobs, newest first.")
