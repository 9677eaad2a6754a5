"""The FastAPI app factory."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app import __version__
from serve_app.accounts.context import AccountsContext
from serve_app.api.accounts import install_accounts
from serve_app.api.deps import AppContext
from serve_app.api.errors import install_error_handlers
from serve_app.api.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from serve_app.api.routes import analyze, health
from serve_app.config import Settings
from serve_app.pipeline.protocol import Pipeline


def create_app(pipeline: Pipeline, settings: Settings, accounts: AccountsContext) -> FastAPI:
    """Build the HTTP app around ``pipeline`` (Ray handles or in-process engines).

    ``accounts`` comes from :func:`serve_app.accounts.context.open_accounts`.
    """
    app = FastAPI(
        title="serve_app",
        version=__version__,
        description=(
            "Image and video understanding on Ray Serve: upload media, get descriptions "
            "from a vision-language model (Qwen2.5-VL)."
        ),
    )
    app.state.context = AppContext(pipeline=pipeline, settings=settings)
    install_error_handlers(app)
    install_accounts(app, accounts)
    app.include_router(health.router)
    app.include_router(analyze.router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app
