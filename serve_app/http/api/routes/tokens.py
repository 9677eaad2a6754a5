"""``/api/api_tokens``: the caller's own API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from serve_app.accounts.tokens import UNKNOWN_ID, ApiTokenInfo, parse_token_id
from serve_app.errors import NotFound
from serve_app.http.api.account_schemas import (
    TokenCreatedResponse,
    TokenCreateRequest,
    TokenInfo,
    TokenListResponse,
)
from serve_app.http.api.schemas import ErrorResponse
from serve_app.http.deps import Accounts, CurrentUser

router = APIRouter(prefix="/api/api_tokens", tags=["accounts"])

_AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Not logged in / invalid token"},
    403: {"model": ErrorResponse, "description": "Missing X-CSRF-Token (cookie auth)"},
    429: {"model": ErrorResponse, "description": "Rate limited (see Retry-After)"},
}

#: Read as text so that anything but an id answers 404 (no such token), not 400;
#: documented as the integer it must be.
TokenId = Annotated[
    str,
    Path(
        description="The token's id, as listed.",
        json_schema_extra={"type": "integer", "minimum": 1, "examples": [1]},
    ),
]


def _info(token: ApiTokenInfo) -> TokenInfo:
    return TokenInfo(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        last_used=token.last_used,
    )


@router.get("", response_model=TokenListResponse, responses=_AUTH_ERRORS)
async def list_tokens(user: CurrentUser, accounts: Accounts) -> TokenListResponse:
    """The caller's active tokens (never their secrets)."""
    tokens = await run_in_threadpool(accounts.tokens.list_active, user.id)
    return TokenListResponse(tokens=[_info(t) for t in tokens])


@router.post(
    "",
    response_model=TokenCreatedResponse,
    status_code=201,
    responses={**_AUTH_ERRORS, 409: {"model": ErrorResponse, "description": "Too many tokens"}},
)
async def create_token(
    body: TokenCreateRequest, user: CurrentUser, accounts: Accounts
) -> TokenCreatedResponse:
    """Create a token; its secret is in this response only."""
    created = await run_in_threadpool(accounts.tokens.create, user.id, body.name)
    info = created.info
    return TokenCreatedResponse(
        id=info.id,
        name=info.name,
        token=created.token,
        prefix=info.prefix,
        created_at=info.created_at,
    )


@router.delete(
    "/{token_id}",
    status_code=204,
    responses={**_AUTH_ERRORS, 404: {"model": ErrorResponse, "description": "No such token"}},
)
async def revoke_token(token_id: TokenId, user: CurrentUser, accounts: Accounts) -> Response:
    """Revoke one of the caller's tokens (another user's id, or no integer id: 404)."""
    parsed = parse_token_id(token_id)
    if parsed is None:
        raise NotFound(UNKNOWN_ID)
    await run_in_threadpool(accounts.tokens.revoke, user.id, parsed)
    return Response(status_code=204)
