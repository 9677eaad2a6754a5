"""``POST /login``, ``POST /logout`` and ``GET /api/me``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from serve_app.accounts.login import log_in, log_out
from serve_app.accounts.settings import AccountSettings
from serve_app.errors import AuthenticationFailed, InvalidRequest, PermissionDenied, RateLimited
from serve_app.http.api.account_schemas import LoginRequest, LoginResponse, MeResponse
from serve_app.http.api.schemas import ErrorResponse
from serve_app.http.auth import CSRF_HEADER, same_origin
from serve_app.http.deps import Accounts, CurrentUser
from serve_app.http.navigation import base_path, login_url, safe_next

router = APIRouter(tags=["accounts"])

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _read_login(request: Request) -> tuple[LoginRequest, bool]:
    """The credentials from a JSON or form body, and whether it was a form (the web page's
    sign-in form without JavaScript; it may name the page to return to in ``next``)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_form = content_type in _FORM_TYPES
    data: Any
    try:
        if is_form:
            async with request.form(max_files=0, max_fields=20) as form:
                data = {k: v for k, v in form.items() if isinstance(v, str)}
        else:
            data = await request.json()
        return LoginRequest.model_validate(data), is_form
    except (ValidationError, ValueError) as exc:
        raise InvalidRequest("send 'username' and 'password' as JSON or form fields") from exc


def _set_cookies(response: Response, settings: AccountSettings, session: str, csrf: str) -> None:
    for name, value, http_only in (
        (settings.session_cookie, session, True),
        (settings.csrf_cookie, csrf, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=settings.session_ttl_s,
            path="/",
            secure=settings.cookie_secure,
            httponly=http_only,
            samesite="lax",
        )


@router.post(
    "/login",
    response_model=LoginResponse,
    responses={
        303: {"description": "Form login: to the page in 'next', or back to the sign-in page"},
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse, "description": "Wrong username or password"},
        403: {"model": ErrorResponse, "description": "Cross-site login refused"},
        429: {"model": ErrorResponse, "description": "Too many attempts (see Retry-After)"},
    },
)
async def login(request: Request, accounts: Accounts) -> Response:
    """Log in with ``username`` and ``password`` (JSON or form); sets the session cookie."""
    if not same_origin(request):
        raise PermissionDenied("cross-site login refused")
    credentials, is_form = await _read_login(request)
    address = request.client.host if request.client else "unknown"
    base = base_path(request)
    target = safe_next(credentials.next, base)
    try:
        result = await run_in_threadpool(
            log_in, accounts, credentials.username, credentials.password, address
        )
    except (AuthenticationFailed, RateLimited) as exc:
        if not is_form:
            raise
        error = "invalid" if isinstance(exc, AuthenticationFailed) else "rate_limited"
        return RedirectResponse(login_url(base, target, error), status_code=303)
    response: Response
    if is_form:
        response = RedirectResponse(target, status_code=303)
    else:
        body = LoginResponse(
            username=result.user.username,
            is_admin=result.user.is_admin,
            csrf_token=result.csrf_token,
        )
        response = JSONResponse(body.model_dump())
    _set_cookies(response, accounts.settings, result.session_cookie, result.csrf_token)
    return response


@router.post(
    "/logout",
    status_code=204,
    responses={403: {"model": ErrorResponse, "description": "Missing X-CSRF-Token"}},
)
async def logout(request: Request, accounts: Accounts) -> Response:
    """End the login session (needs ``X-CSRF-Token``) and clear its cookies."""
    settings = accounts.settings
    await run_in_threadpool(
        log_out,
        accounts,
        request.cookies.get(settings.session_cookie),
        request.headers.get(CSRF_HEADER),
    )
    response = Response(status_code=204)
    for name in (settings.session_cookie, settings.csrf_cookie):
        response.delete_cookie(name, path="/", secure=settings.cookie_secure, samesite="lax")
    return response


@router.get("/api/me", response_model=MeResponse, tags=["accounts"])
async def me(user: CurrentUser) -> MeResponse:
    """The caller's account and credit balance."""
    return MeResponse(
        id=user.id,
        username=user.username,
        is_admin=user.is_admin,
        balance=user.balance,
        created_at=user.created_at,
    )
