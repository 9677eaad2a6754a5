"""A small app with the accounts routes, plus stand-ins for the routes that use them."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from serve_app.accounts.charging import charge
from serve_app.accounts.context import AccountsContext
from serve_app.accounts.idempotency import fingerprint
from serve_app.http.api.accounts import install_accounts
from serve_app.http.auth import replay_response
from serve_app.http.deps import Accounts, CurrentUser, CurrentUserOrApiKey, IdempotencyKey
from serve_app.http.errors import install_error_handlers


def build_app(accounts: AccountsContext) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_accounts(app, accounts)

    @app.post("/api/paid")
    async def paid(
        request: Request, user: CurrentUser, accounts: Accounts, key: IdempotencyKey = None
    ) -> Any:
        """Like /api/analyze: charged, idempotent, counted as in flight."""
        body = await request.body()
        fp = fingerprint(request.method, request.url.path, body)
        async with charge(accounts, user, idempotency_key=key, fingerprint=fp) as handle:
            if handle.replay is not None:
                return replay_response(handle.replay)
            with accounts.in_flight.track():
                if body == b"fail":
                    raise RuntimeError("model crashed")
                result = {
                    "result": body.decode(),
                    "tokens_used": handle.cost,
                    "remaining_tokens": handle.remaining,
                }
            handle.record(result)
        return JSONResponse(result)

    @app.get("/api/jobs")
    async def jobs(user: CurrentUserOrApiKey) -> dict[str, str]:
        """Like the video-job routes: ?api_key= accepted."""
        return {"user": user.username}

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test"
    )
