"""Response bodies of the public API (documented in OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AnalyzeResponse(BaseModel):
    result: str = Field(description="The model's answer.")
    tokens_used: int = Field(0, description="Credits charged for this analysis.")
    remaining_tokens: int | None = Field(
        None, description="The caller's credit balance after this analysis."
    )


class ErrorResponse(BaseModel):
    detail: str


class HealthResponse(BaseModel):
    status: str


class ReadinessResponse(BaseModel):
    status: str = Field(description="'ready' or 'not ready'")
    components: dict[str, bool]
