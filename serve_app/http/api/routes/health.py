"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serve_app.http.api.schemas import HealthResponse, ReadinessResponse
from serve_app.http.deps import Context

router = APIRouter(tags=["health"])

#: ``/readyz`` answers within this long: a component still loading (or hung) is not ready.
READINESS_TIMEOUT_S = 0.5
#: ``Retry-After`` of a not-ready answer.
RETRY_AFTER_S = 5


async def _within_deadline(name: str, check: Awaitable[dict[str, bool]]) -> dict[str, bool]:
    try:
        return await asyncio.wait_for(check, READINESS_TIMEOUT_S)
    except TimeoutError:
        return {name: False}


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """The ingress process answers."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz", response_model=ReadinessResponse, responses={503: {"model": ReadinessResponse}}
)
async def readyz(ctx: Context) -> JSONResponse:
    """Every configured model (and the story model, if any) is loaded and healthy.

    Answers within a second: what has not answered by then (a model still loading)
    counts as not ready, and the answer is 503 with ``Retry-After``."""
    checks = [_within_deadline("models", ctx.pipeline.readiness())]
    if ctx.story is not None:
        checks.append(_within_deadline("story", ctx.story.readiness()))
    components: dict[str, bool] = {}
    for answer in await asyncio.gather(*checks):
        components |= answer
    ready = bool(components) and all(components.values())
    body = ReadinessResponse(status="ready" if ready else "not ready", components=components)
    headers = {} if ready else {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503, headers=headers)
