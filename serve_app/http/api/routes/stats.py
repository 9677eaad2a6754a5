"""``GET /api/stats``: live load of this ingress process, its node and (optionally) the cluster."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serve_app.http.api.account_schemas import StatsResponse
from serve_app.http.api.schemas import ErrorResponse
from serve_app.http.deps import Accounts, CurrentUser
from serve_app.observability.cluster import collect_stats

router = APIRouter(prefix="/api", tags=["operations"])


@router.get(
    "/stats",
    response_model=StatsResponse,
    response_model_exclude_none=True,
    responses={401: {"model": ErrorResponse}},
)
async def stats(_user: CurrentUser, accounts: Accounts) -> dict[str, Any]:
    """Idle/Busy, GPUs (NVML), CPU and RAM (GB); ``nodes`` and ``deployments`` with Ray."""
    return await collect_stats(
        accounts.in_flight, accounts.gpu_probe, accounts.cpu_meter, accounts.stats_provider
    )
