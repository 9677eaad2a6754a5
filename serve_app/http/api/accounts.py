"""Mount the accounts domain on an app: ``install_accounts(app, accounts)``."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.accounts.context import AccountsContext
from serve_app.http.api.routes import admin, auth, stats, tokens


def install_accounts(app: FastAPI, accounts: AccountsContext) -> None:
    """Store ``accounts`` on ``app.state`` and include the login, token, stats and admin routes.

    Error handlers are the app's own (``install_error_handlers``), installed separately.
    """
    app.state.accounts = accounts
    for router in (auth.router, tokens.router, stats.router, admin.router):
        app.include_router(router)
