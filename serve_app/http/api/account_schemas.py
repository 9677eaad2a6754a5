"""Request and response bodies of the accounts endpoints.

Request models forbid unknown fields, so a body can never set ``is_admin`` or a balance.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)
    #: Form logins: the page to return to (a path on this site; anything else: home).
    next: str | None = Field(None, max_length=2000)


class LoginResponse(BaseModel):
    username: str
    is_admin: bool
    csrf_token: str = Field(description="Send as X-CSRF-Token with state-changing requests.")


class MeResponse(BaseModel):
    id: int
    username: str
    is_admin: bool
    balance: int
    created_at: dt.datetime


class TokenCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


class TokenInfo(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The first characters of the secret.")
    created_at: dt.datetime
    last_used: dt.datetime | None


class TokenListResponse(BaseModel):
    tokens: list[TokenInfo]


class TokenCreatedResponse(BaseModel):
    id: int
    name: str
    token: str = Field(description="The secret. Shown only in this response; store it now.")
    prefix: str
    created_at: dt.datetime


class GpuInfo(BaseModel):
    name: str
    memory_used: float = Field(description="GB")
    memory_total: float = Field(description="GB")
    utilization: float = Field(description="percent")


class NodeInfo(BaseModel):
    node_id: str
    address: str
    alive: bool
    cpu_percent: float
    ram_used: float
    ram_total: float
    gpus: list[GpuInfo]


class DeploymentInfo(BaseModel):
    app: str
    name: str
    status: str
    replicas: int
    target_replicas: int
    ongoing_requests: float
    queued_requests: float


class StatsResponse(BaseModel):
    status: Literal["Idle", "Busy"]
    gpu_count: int
    gpus: list[GpuInfo]
    cpu_percent: float
    ram_used: float = Field(description="GB")
    ram_total: float = Field(description="GB")
    nodes: list[NodeInfo] | None = Field(None, description="Only when cluster stats are on.")
    deployments: list[DeploymentInfo] | None = Field(
        None, description="Only when cluster stats are on."
    )


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    amount: int = Field(ge=-(10**12), le=10**12, description="Negative takes credits away.")
    reason: str = Field("admin grant", max_length=200)


class UserSummary(BaseModel):
    id: int
    username: str
    is_admin: bool
    balance: int
    created_at: dt.datetime


class UserListResponse(BaseModel):
    users: list[UserSummary]
