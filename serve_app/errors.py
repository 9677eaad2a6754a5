"""Typed domain errors.

Domain code raises these; the API layer maps each class to one HTTP status in a single
table (``serve_app.http.errors``). Messages are safe to show to clients: they never carry
tracebacks, file system paths of the server or secrets.
"""

from __future__ import annotations


class ServeAppError(Exception):
    """Base class of every error a client may see."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(ServeAppError):
    """A parameter is missing, malformed or out of range (HTTP 400)."""


class UnsupportedMedia(ServeAppError):
    """The bytes are not a media type the service accepts (HTTP 400)."""


class MediaTooLarge(ServeAppError):
    """A size, pixel, duration or frame-count limit was exceeded (HTTP 413)."""


class MediaRejected(ServeAppError):
    """The media is corrupt, truncated, empty or cannot be decoded (HTTP 422)."""


class UnknownModel(InvalidRequest):
    """``model_path`` names no configured model (HTTP 400)."""


class BackendUnavailable(ServeAppError):
    """A model backend is down, not ready or overloaded (HTTP 503, retryable)."""

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class BodyTimeout(ServeAppError):
    """The request body stalled or arrived too slowly (HTTP 408)."""


class InsufficientStorage(ServeAppError):
    """The server's disk is full; nothing partial was kept (HTTP 507, retryable)."""

    def __init__(self, detail: str, retry_after_s: int = 30) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class GenerationFailed(ServeAppError):
    """The model produced no usable output (HTTP 502)."""


class AuthenticationFailed(ServeAppError):
    """No valid login session or API token came with the request (HTTP 401)."""


class InsufficientCredits(ServeAppError):
    """The caller's credit balance does not cover the cost (HTTP 402)."""


class OverBudget(InsufficientCredits):
    """The estimated cost is above the request's own ``max_credits`` (HTTP 402)."""


class PermissionDenied(ServeAppError):
    """Authenticated, but not allowed to do this (HTTP 403; also a failed CSRF check)."""


class NotFound(ServeAppError):
    """The resource does not exist or belongs to someone else (HTTP 404)."""


class Conflict(ServeAppError):
    """The request clashes with the current state, e.g. a duplicate name (HTTP 409)."""


class Gone(ServeAppError):
    """The resource existed but expired or was discarded, e.g. an old upload (HTTP 410)."""


class IdempotencyKeyReused(ServeAppError):
    """An ``Idempotency-Key`` was reused for a different request (HTTP 422)."""


class RateLimited(ServeAppError):
    """Too many requests for this caller; retry after ``retry_after_s`` (HTTP 429)."""

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ParameterError(InvalidRequest):
    """A request parameter is invalid or unsupported; ``param`` names it (HTTP 400)."""

    def __init__(self, detail: str, param: str | None = None) -> None:
        super().__init__(detail)
        self.param = param
