"""Logging in and out with a username and password."""

from __future__ import annotations

from dataclasses import dataclass

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User, authenticate_password
from serve_app.errors import AuthenticationFailed, PermissionDenied


@dataclass(frozen=True)
class LoginResult:
    user: User
    #: Signed value for the session cookie.
    session_cookie: str
    #: Value for the CSRF cookie (and the ``X-CSRF-Token`` header).
    csrf_token: str


def log_in(accounts: AccountsContext, username: str, password: str, address: str) -> LoginResult:
    """Check the password and open a login session (blocking: hashes the password).

    Raises:
        RateLimited: too many attempts for this username and address.
        AuthenticationFailed: wrong username or password (which one is not told).
    """
    accounts.login_limiter.hit(username, address)
    user = authenticate_password(accounts.database, accounts.passwords, username, password)
    if user is None:
        raise AuthenticationFailed("invalid username or password")
    secret = accounts.sessions.create(user.id)
    return LoginResult(user, accounts.signer.sign(secret), accounts.signer.csrf_token(secret))


def log_out(accounts: AccountsContext, session_cookie: str | None, csrf_header: str | None) -> bool:
    """End the session in ``session_cookie``; True when one was ended.

    Raises:
        PermissionDenied: a valid session cookie without the matching CSRF token.
    """
    secret = accounts.signer.unsign(session_cookie) if session_cookie else None
    if secret is None:
        return False
    if not accounts.signer.check_csrf(secret, csrf_header):
        raise PermissionDenied("missing or invalid X-CSRF-Token header")
    return accounts.sessions.revoke(secret)
