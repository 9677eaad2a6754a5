"""One table from domain errors to HTTP responses, registered once on the app.

Every error body is ``{"detail": "..."}``. 503 and 429 carry ``Retry-After``.
Unexpected exceptions become a plain 500 with a request id; the traceback goes to
the server log only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve_app import errors

logger = logging.getLogger(__name__)

#: Most specific class first.
STATUS_BY_ERROR: tuple[tuple[type[errors.ServeAppError], int], ...] = (
    (errors.UnknownModel, 400),
    (errors.AuthenticationFailed, 401),
    (errors.InsufficientCredits, 402),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Gone, 410),
    (errors.IdempotencyKeyReused, 422),
    (errors.RateLimited, 429),
    (errors.InvalidRequest, 400),
    (errors.UnsupportedMedia, 400),
    (errors.MediaTooLarge, 413),
    (errors.MediaRejected, 422),
    (errors.BackendUnavailable, 503),
    (errors.GenerationFailed, 502),
)


def status_for(exc: errors.ServeAppError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(exc: errors.ServeAppError) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.BackendUnavailable | errors.RateLimited):
        headers["Retry-After"] = str(max(1, exc.retry_after_s))
    elif isinstance(exc, errors.AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"detail": exc.detail}, status_code=status, headers=headers)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ServeAppError)
    response = error_response(exc)
    logger.info(
        "request %s rejected: %s %s", _request_id(request), response.status_code, exc.detail
    )
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=dict(exc.headers or {})
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = _request_id(request)
    logger.exception("request %s failed", request_id, exc_info=exc)
    return JSONResponse({"detail": f"internal error (request id {request_id})"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ServeAppError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
