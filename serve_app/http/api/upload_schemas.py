"""Response bodies of chunked uploads (documented in OpenAPI)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from serve_app.http.api.schemas import AnalyzeResponse
from serve_app.uploads.state import UploadState


class UploadProgress(BaseModel):
    """A chunk was stored; more are missing."""

    upload_id: str
    received_chunks: list[int] = Field(description="Chunk numbers stored so far, ascending.")
    total_chunks: int
    complete: bool = Field(description="Every chunk has arrived.")

    @classmethod
    def of(cls, state: UploadState) -> UploadProgress:
        return cls(
            upload_id=state.upload_id,
            received_chunks=list(state.received),
            total_chunks=state.total_chunks,
            complete=state.complete,
        )


class UploadStatus(UploadProgress):
    """``GET /api/uploads/{upload_id}``: what a client needs to resume."""

    received_bytes: int
    filename: str = Field(description="The client's file name, escaped (metadata only).")
    state: Literal["receiving", "analysing", "done"] = Field(
        description="'analysing': all chunks are in and one request is analysing them."
    )
    expires_at: datetime = Field(description="Removed then unless another chunk arrives.")
    result: AnalyzeResponse | None = Field(
        None, description="The analysis response once the state is 'done'."
    )

    @classmethod
    def of(cls, state: UploadState) -> UploadStatus:
        return cls(
            upload_id=state.upload_id,
            received_chunks=list(state.received),
            total_chunks=state.total_chunks,
            complete=state.complete,
            received_bytes=state.received_bytes,
            filename=state.filename,
            state=state.phase,
            expires_at=datetime.fromtimestamp(state.expires_at, UTC),
            result=AnalyzeResponse.model_validate(state.result) if state.result else None,
        )
