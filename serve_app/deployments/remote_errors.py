"""Turn Ray's wrapped exceptions back into the domain errors they carry."""

from __future__ import annotations

from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from serve_app.errors import BackendUnavailable, ServeAppError


def domain_error(exc: BaseException) -> BaseException:
    """The :class:`ServeAppError` behind ``exc``, or a retryable error for Ray faults.

    Exceptions raised inside a replica reach the caller wrapped in ``RayTaskError``
    (possibly several times, once per hop). Anything that is not a domain error is
    returned unchanged so the API layer reports it as a 500.
    """
    seen = 0
    current: BaseException = exc
    while isinstance(current, RayTaskError) and seen < 8:
        cause = current.cause
        if cause is None or cause is current:
            break
        current = cause
        seen += 1
    if isinstance(current, ServeAppError):
        return _plain(current)
    if isinstance(current, BackPressureError):
        return BackendUnavailable("the service is at capacity; retry shortly", retry_after_s=2)
    if isinstance(current, (RayActorError, DeploymentUnavailableError)):
        return BackendUnavailable("a model replica stopped; retry shortly", retry_after_s=5)
    return exc


def _plain(exc: ServeAppError) -> ServeAppError:
    """Rebuild a domain error without Ray's dual-class wrapper around it."""
    for cls in type(exc).__mro__:
        if issubclass(cls, ServeAppError) and not issubclass(cls, RayTaskError):
            plain = cls.__new__(cls)
            plain.__dict__.update(exc.__dict__)
            Exception.__init__(plain, exc.detail)
            return plain
    return exc
