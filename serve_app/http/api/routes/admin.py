"""``/api/admin/*``: user listing and credit grants, for administrators only."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from serve_app.accounts.users import User, grant_credits, list_users
from serve_app.http.api.account_schemas import GrantRequest, UserListResponse, UserSummary
from serve_app.http.api.schemas import ErrorResponse
from serve_app.http.deps import Accounts, CurrentAdmin

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    responses={403: {"model": ErrorResponse, "description": "Not an administrator"}},
)


def _summary(user: User) -> UserSummary:
    return UserSummary(
        id=user.id,
        username=user.username,
        is_admin=user.is_admin,
        balance=user.balance,
        created_at=user.created_at,
    )


@router.get("/users", response_model=UserListResponse)
async def users(_admin: CurrentAdmin, accounts: Accounts) -> UserListResponse:
    """Every user with their balance."""
    found = await run_in_threadpool(list_users, accounts.database)
    return UserListResponse(users=[_summary(u) for u in found])


@router.post(
    "/credits",
    response_model=UserSummary,
    responses={404: {"model": ErrorResponse}, 402: {"model": ErrorResponse}},
)
async def grant(body: GrantRequest, _admin: CurrentAdmin, accounts: Accounts) -> UserSummary:
    """Add credits to (or, negative, take them from) a user's balance."""
    user = await run_in_threadpool(
        grant_credits, accounts.database, body.username, body.amount, body.reason
    )
    return _summary(user)
