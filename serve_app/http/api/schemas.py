"""Response bodies of the public API (documented in OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AnalyzeResponse(BaseModel):
    result: str = Field(description="The model's answer.")
    tokens_used: int = Field(0, description="Credits charged for this analysis.")
    remaining_tokens: int | None = Field(
        None, description="The caller's credit balance after this analysis."
    )


class ErrorResponse(BaseModel):
    detail: str


def error_responses(table: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for error statuses: ``{status: description}`` → entries."""
    return {status: {"model": ErrorResponse, "description": text} for status, text in table.items()}


class HealthResponse(BaseModel):
    status: str


class ReadinessResponse(BaseModel):
    status: str = Field(description="'ready' or 'not ready'")
    components: dict[str, bool]
