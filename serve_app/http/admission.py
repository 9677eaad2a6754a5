"""Admission of request bodies: who may send one, and how slowly.

Pure ASGI middleware in front of the routes. For every request that carries a body:

* the caller is decided from the headers before any body byte is read: a valid
  ``Authorization: Bearer`` token or login-session cookie (or ``?api_key=``) names a
  user; an invalid Bearer token is refused with 401 right away; anyone else is
  anonymous, and anonymous callers share ``max_anonymous_bodies`` body slots (503
  with ``Retry-After`` beyond), so they cannot take all of the ingress's slots;
* each user may have ``max_requests_in_flight_per_user`` bodies and
  ``max_bytes_in_flight_per_user`` body bytes (as declared, or as they arrive) in
  flight; beyond that the request is refused with 429 and ``Retry-After`` before its
  body is read, so memory and disk do not grow with one user's parallel uploads;
* the body is read under deadlines: nothing for ``body_idle_timeout_s``, or less
  than ``body_min_bytes_per_s`` on average after ``body_grace_s``, ends the request
  with 408 and ``Connection: close``, so a stalled upload frees its slot.

Requests without a body pass straight through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.in_flight import Lease
from serve_app.accounts.settings import AdmissionSettings
from serve_app.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    BodyTimeout,
    RateLimited,
    ServeAppError,
)
from serve_app.http.auth import failed_authentication, login_session
from serve_app.http.errors import error_response

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def has_body(scope: Scope) -> bool:
    """True when the request declares a body (a non-zero length, or chunked)."""
    if scope["method"] not in _BODY_METHODS:
        return False
    headers = dict(scope.get("headers") or [])
    if b"transfer-encoding" in headers:
        return True
    declared = headers.get(b"content-length", b"0").strip()
    return not declared.isdigit() or int(declared) > 0


def _declared_length(scope: Scope) -> int | None:
    declared = dict(scope.get("headers") or []).get(b"content-length", b"").strip()
    return int(declared) if declared.isdigit() else None


class AdmissionMiddleware:
    """Decides who may send a body and cuts off bodies that arrive too slowly."""

    def __init__(
        self,
        app: ASGIApp,
        accounts: AccountsContext,
        settings: AdmissionSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._accounts = accounts
        self._settings = settings
        self._clock = clock
        self._anonymous = 0
        self._caps = accounts.in_flight_caps(
            settings.max_requests_in_flight_per_user,
            settings.max_bytes_in_flight_per_user,
            settings.retry_after_s,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            user_id = await self._caller(scope)
        except ServeAppError as exc:
            await _refuse(exc, scope, receive, send)
            return
        declared = _declared_length(scope)
        lease: Lease | None = None
        if user_id is not None:
            try:
                # A Redis round trip when the caps are shared: off the event loop.
                lease = await asyncio.to_thread(self._caps.admit, user_id, declared or 0)
            except (RateLimited, BackendUnavailable) as exc:
                await _refuse(exc, scope, receive, send)
                return
        else:
            if self._anonymous >= self._settings.max_anonymous_bodies:
                busy = BackendUnavailable(
                    "too many uploads without credentials right now; retry shortly",
                    retry_after_s=self._settings.retry_after_s,
                )
                await _refuse(busy, scope, receive, send)
                return
            self._anonymous += 1
        body = _GuardedBody(self.app, self._settings, self._clock, lease, declared is not None)
        try:
            await body.run(scope, receive, send)
        finally:
            if lease is not None:
                await asyncio.to_thread(lease.release)
            else:
                self._anonymous -= 1

    async def _caller(self, scope: Scope) -> int | None:
        """The user id of valid credentials, None without any.

        Raises:
            AuthenticationFailed: a Bearer token that is malformed, invalid or revoked.
        """
        request = Request(scope)
        accounts = self._accounts
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise AuthenticationFailed("the Authorization header must be 'Bearer <API token>'")
            identity = await asyncio.to_thread(accounts.tokens.authenticate, secret.strip())
            if identity is None:
                failed_authentication(accounts, request.client.host if request.client else "")
            return identity.user.id
        query_key = request.query_params.get("api_key")
        if query_key:
            identity = await asyncio.to_thread(accounts.tokens.authenticate, query_key)
            return identity.user.id if identity is not None else None
        cookie = request.cookies.get(accounts.settings.session_cookie)
        if cookie:
            session = await asyncio.to_thread(login_session, accounts, cookie)
            return session[1].id if session is not None else None
        return None


class _Aborted(Exception):
    pass


class _GuardedBody:
    """One request whose body is read under the deadlines and the caller's byte cap."""

    def __init__(
        self,
        app: ASGIApp,
        settings: AdmissionSettings,
        clock: Callable[[], float],
        lease: Lease | None,
        length_known: bool,
    ):
        self._app = app
        self._settings = settings
        self._clock = clock
        self._lease = lease
        self._length_known = length_known
        self._received = 0
        self._body_done = False
        self._failure: ServeAppError | None = None
        self._started = False

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = self._clock()
        settings = self._settings

        async def guarded_receive() -> Message:
            if self._body_done:
                return await receive()
            try:
                async with asyncio.timeout(settings.body_idle_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise self._abort(self._too_slow()) from None
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                self._received += size
                if self._lease is not None and not self._length_known:
                    try:
                        # Shared caps reserve a MiB per Redis call, not one per chunk.
                        self._lease.grow(size)
                    except (RateLimited, BackendUnavailable) as exc:
                        raise self._abort(exc) from None
                if not message.get("more_body", False):
                    self._body_done = True
                elif (
                    self._clock() - start
                    > settings.body_grace_s + self._received / settings.body_min_bytes_per_s
                ):
                    raise self._abort(self._too_slow())
            return message

        async def guarded_send(message: Message) -> None:
            # Whatever the app makes of the aborted body, the client gets the reason.
            if message["type"] == "http.response.start":
                if self._started:
                    return
                self._started = True
                if self._failure is not None:
                    await _refuse(self._failure, scope, receive, send)
                    return
            elif self._failure is not None:
                return
            await send(message)

        try:
            await self._app(scope, guarded_receive, guarded_send)
        except _Aborted:
            if not self._started and self._failure is not None:
                self._started = True
                await _refuse(self._failure, scope, receive, send)

    def _abort(self, failure: ServeAppError) -> _Aborted:
        self._failure = failure
        return _Aborted()

    def _too_slow(self) -> BodyTimeout:
        return BodyTimeout(
            f"the request body arrived too slowly (at least "
            f"{self._settings.body_min_bytes_per_s} bytes/s, no pause over "
            f"{self._settings.body_idle_timeout_s:g} s)"
        )


async def _refuse(exc: ServeAppError, scope: Scope, receive: Receive, send: Send) -> None:
    """The error response, before the body is read (so the connection is closed)."""
    response = error_response(exc)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
