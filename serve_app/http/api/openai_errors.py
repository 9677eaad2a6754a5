"""Errors on ``/v1`` in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The ``openai`` SDK reads this shape to raise its own exception classes
(``BadRequestError``, ``AuthenticationError``, ``RateLimitError``, ...). The routes of
the ``/v1`` router use :class:`OpenAIRoute`, which renders every domain, validation
and HTTP error of the route (dependencies included) this way; the rest of the API
keeps ``{"detail": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve_app import errors
from serve_app.http.errors import error_response

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    410: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "server_error",
    503: "service_unavailable_error",
}


def openai_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def domain_error(exc: errors.ServeAppError) -> JSONResponse:
    """The status and headers of the service's one error table, in OpenAI's body."""
    plain = error_response(exc)
    headers = {k: v for k, v in plain.headers.items() if k in ("retry-after", "www-authenticate")}
    status, code = plain.status_code, None
    param = exc.param if isinstance(exc, errors.ParameterError) else None
    if isinstance(exc, errors.UnknownModel):
        status, code, param = 404, "model_not_found", "model"
    elif isinstance(exc, errors.InsufficientCredits):
        code = "insufficient_quota"
    elif isinstance(exc, errors.RateLimited):
        code = "rate_limit_exceeded"
    return openai_error(status, exc.detail, param=param, code=code, headers=headers)


def validation_error(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    param = _json_path([p for p in first.get("loc", ()) if p not in ("body", "query", "header")])
    message = f"{param}: {first.get('msg', 'invalid')}" if param else first.get("msg", "invalid")
    return openai_error(400, message, param=param)


def _json_path(loc: list[str | int]) -> str | None:
    """``["messages", 0, "content"]`` → ``messages[0].content``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None


class OpenAIRoute(APIRoute):
    """An ``APIRoute`` whose errors come out in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except errors.ServeAppError as exc:
                return domain_error(exc)
            except RequestValidationError as exc:
                return validation_error(exc)
            except StarletteHTTPException as exc:
                return openai_error(
                    exc.status_code, str(exc.detail), headers=dict(exc.headers or {})
                )

        return route
