"""Who is calling: typed dependencies for API tokens, login sessions, CSRF, rate limits.

* ``Authorization: Bearer <token>`` works on every endpoint.
* A login-session cookie works too; then state-changing requests (anything but GET,
  HEAD, OPTIONS) must carry ``X-CSRF-Token`` equal to the ``csrf_token`` cookie.
  Bearer-token requests are exempt (browsers never attach them on their own).
* ``?api_key=<token>`` only where a route opts in with :data:`CurrentUserOrApiKey`.

Every authenticated request spends one unit of the caller's (per user) rate budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, NoReturn
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from serve_app.accounts.anonymous import AnonymousStory
from serve_app.accounts.context import AccountsContext
from serve_app.accounts.idempotency import StoredResponse
from serve_app.accounts.sessions import session_id
from serve_app.accounts.users import User
from serve_app.errors import AuthenticationFailed, PermissionDenied

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
REPLAY_HEADER = "Idempotent-Replayed"

# Declared for the OpenAPI docs only; the header and query are parsed below.
_bearer_doc = HTTPBearer(auto_error=False, description="An API token (`sa_...`).")
_api_key_doc = APIKeyQuery(name="api_key", auto_error=False, description="An API token.")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and how they proved it."""

    user: User
    via: Literal["token", "session"]
    #: The API token's id, or the login session's id (a digest).
    credential_id: str


def get_accounts(request: Request) -> AccountsContext:
    accounts = getattr(request.app.state, "accounts", None)
    if not isinstance(accounts, AccountsContext):
        raise RuntimeError("install_accounts(app, accounts) was not called")
    return accounts


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationFailed("the Authorization header must be 'Bearer <API token>'")
    return value.strip()


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def check_csrf(request: Request, accounts: AccountsContext, session_secret: str) -> None:
    """Refuse a cookie-authenticated state change without the matching CSRF header."""
    if not accounts.signer.check_csrf(session_secret, request.headers.get(CSRF_HEADER)):
        raise PermissionDenied(
            f"missing or invalid {CSRF_HEADER} header: send the value of the "
            f"{accounts.settings.csrf_cookie} cookie with requests that change state"
        )


def login_session(accounts: AccountsContext, cookie: str) -> tuple[str, User] | None:
    """The secret and user of the live login session behind a session ``cookie``."""
    session_secret = accounts.signer.unsign(cookie)
    user = accounts.sessions.authenticate(session_secret) if session_secret else None
    return (session_secret, user) if session_secret is not None and user is not None else None


def authenticate_request(
    request: Request, accounts: AccountsContext, *, allow_query_key: bool = False
) -> Principal:
    """Resolve the caller, check CSRF for cookie auth, spend one rate-limit unit.

    Raises:
        AuthenticationFailed: no credentials, or invalid, revoked or expired ones.
        PermissionDenied: cookie auth on a state-changing request without CSRF token.
        RateLimited: the caller's request budget is spent.
    """
    secret = _bearer_token(request)
    if secret is None and allow_query_key:
        secret = request.query_params.get("api_key")
    if secret is not None:
        identity = accounts.tokens.authenticate(secret)
        if identity is None:
            failed_authentication(accounts, request.client.host if request.client else "")
        principal = Principal(identity.user, "token", str(identity.token_id))
    else:
        cookie = request.cookies.get(accounts.settings.session_cookie)
        if cookie is None:
            raise AuthenticationFailed(
                "authentication required: send 'Authorization: Bearer <API token>' or log in"
            )
        session = login_session(accounts, cookie)
        if session is None:
            raise AuthenticationFailed("your login session has expired or is invalid; log in again")
        session_secret, user = session
        if request.method not in SAFE_METHODS:
            check_csrf(request, accounts, session_secret)
        principal = Principal(user, "session", session_id(session_secret))
    accounts.api_limiter.hit(f"user:{principal.user.id}")
    return principal


def failed_authentication(accounts: AccountsContext, address: str) -> NoReturn:
    """Refuse an invalid token: 401, or 429 once the address has failed too often.

    Raises:
        RateLimited: the address's budget of failed authentications is spent.
        AuthenticationFailed: otherwise.
    """
    accounts.auth_failures.hit(f"addr:{address}")
    raise AuthenticationFailed("invalid or revoked API token")


# Sync on purpose: FastAPI runs these in its thread pool (they query the database).
def current_principal(
    request: Request,
    _doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_doc)],
) -> Principal:
    return authenticate_request(request, get_accounts(request))


def _principal_or_api_key(
    request: Request,
    _doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_doc)],
    _key_doc: Annotated[str | None, Depends(_api_key_doc)],
) -> Principal:
    return authenticate_request(request, get_accounts(request), allow_query_key=True)


def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> User:
    return principal.user


def current_admin(principal: Annotated[Principal, Depends(current_principal)]) -> User:
    if not principal.user.is_admin:
        raise PermissionDenied("this operation is for administrators only")
    return principal.user


def current_user_or_api_key(
    principal: Annotated[Principal, Depends(_principal_or_api_key)],
) -> User:
    return principal.user


def has_credentials(request: Request, accounts: AccountsContext) -> bool:
    """Whether the request presents a token or a login-session cookie."""
    return "authorization" in request.headers or accounts.settings.session_cookie in request.cookies


def story_caller(
    request: Request,
    _doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_doc)],
) -> User | None:
    """The caller of the Story API; ``None`` for an admitted anonymous local request."""
    accounts = get_accounts(request)
    anonymous = getattr(request.app.state, "anonymous_story", None)
    if (
        isinstance(anonymous, AnonymousStory)
        and not has_credentials(request, accounts)
        and anonymous.admits(request.client.host if request.client else None, request.headers)
    ):
        return None
    return authenticate_request(request, accounts).user


def replay_response(stored: StoredResponse) -> JSONResponse:
    """The stored first response of an ``Idempotency-Key`` request."""
    return JSONResponse(
        stored.body, status_code=stored.status_code, headers={REPLAY_HEADER: "true"}
    )
