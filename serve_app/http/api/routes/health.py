"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serve_app.http.api.schemas import HealthResponse, ReadinessResponse
from serve_app.http.deps import Context

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """The ingress process answers."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz", response_model=ReadinessResponse, responses={503: {"model": ReadinessResponse}}
)
async def readyz(ctx: Context) -> JSONResponse:
    """Every configured model (and the story model, if any) is loaded and healthy."""
    components = await ctx.pipeline.readiness()
    if ctx.story is not None:
        components |= await ctx.story.readiness()
    ready = bool(components) and all(components.values())
    body = ReadinessResponse(status="ready" if ready else "not ready", components=components)
    headers = {} if ready else {"Retry-After": "5"}
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503, headers=headers)
