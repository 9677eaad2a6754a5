"""``GET /api/capabilities``: models, defaults and limits, to build forms with."""

from __future__ import annotations

from fastapi import APIRouter, Request

from serve_app.http.api.schemas import error_responses
from serve_app.http.capabilities import describe_capabilities
from serve_app.http.capability_schemas import CapabilitiesResponse
from serve_app.http.context import mounted_jobs
from serve_app.http.deps import Context, CurrentUser

router = APIRouter(prefix="/api", tags=["service"])


@router.get(
    "/capabilities",
    response_model=CapabilitiesResponse,
    responses=error_responses({401: "No valid API token or login session", 429: "Rate limited"}),
)
def capabilities(ctx: Context, user: CurrentUser, request: Request) -> CapabilitiesResponse:
    """Analysis models and defaults, upload, story and job limits, prices.

    ``story`` is null when the Story API is not mounted, ``jobs`` without video jobs.
    """
    return describe_capabilities(ctx, mounted_jobs(request))
