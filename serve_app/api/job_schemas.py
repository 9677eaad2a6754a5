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
