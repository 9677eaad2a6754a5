"""Who is looking at a page: the login session behind the cookie, if any."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User
from serve_app.http.auth import get_accounts, login_session


@dataclass(frozen=True)
class Viewer:
    """A signed-in user and the CSRF token their page sends with state changes."""

    user: User
    csrf_token: str


def _viewer(accounts: AccountsContext, cookie: str | None) -> Viewer | None:
    session = login_session(accounts, cookie) if cookie else None
    if session is None:
        return None
    secret, user = session
    return Viewer(user, accounts.signer.csrf_token(secret))


async def current_viewer(request: Request) -> Viewer | None:
    """The signed-in viewer, or None (no, an invalid or an expired session)."""
    accounts = get_accounts(request)
    cookie = request.cookies.get(accounts.settings.session_cookie)
    return await run_in_threadpool(_viewer, accounts, cookie)
