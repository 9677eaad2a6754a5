"""CORS from the configured allow-list (``http.cors_allow_origins``).

Pages of allowed origins may call the API with ``fetch`` and an API token; cookies
never cross origins (no ``Access-Control-Allow-Credentials``), so a session cannot be
used from another site. Other origins get no CORS headers at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Request headers a cross-origin page may send (besides the CORS-safelisted ones).
REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
#: Response headers its script may read.
EXPOSED_HEADERS = ("Retry-After", "X-Request-ID", "X-Story-Truncated")
MAX_AGE_S = 600


def origin_regex(origins: Sequence[str]) -> str | None:
    """One regex for the allow-list; ``scheme://host:*`` matches any port (or none)."""
    branches = []
    for origin in origins:
        if origin.endswith(":*"):
            branches.append(re.escape(origin[:-2]) + r"(?::[0-9]{1,5})?")
        else:
            branches.append(re.escape(origin))
    return "|".join(branches) or None


class AllowListCORS(CORSMiddleware):
    """Starlette's CORS, but origins off the list get no ``Access-Control-*`` header."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        origin = headers.get("origin") if headers is not None else None
        if headers is None or origin is None or self.is_allowed_origin(origin):
            await super().__call__(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            response = PlainTextResponse(
                "Disallowed CORS origin", status_code=400, headers={"Vary": "Origin"}
            )
            await response(scope, receive, send)
            return

        async def vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Vary"] = ", ".join([*out.getlist("Vary"), "Origin"])
            await send(message)

        await self.app(scope, receive, vary)


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Answer CORS for ``origins`` (nothing is added for an empty list)."""
    if not origins:
        return
    app.add_middleware(
        AllowListCORS,
        allow_origins=["*"] if "*" in origins else (),
        allow_origin_regex=None if "*" in origins else origin_regex(origins),
        allow_methods=METHODS,
        allow_headers=REQUEST_HEADERS,
        allow_credentials=False,
        expose_headers=EXPOSED_HEADERS,
        max_age=MAX_AGE_S,
    )
