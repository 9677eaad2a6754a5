"""Turn Ray's wrapped exceptions back into the domain errors they carry."""

from __future__ import annotations

import math

from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, RayServeException

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
        retry_after = getattr(current, "retry_after_s", None)
        retry = max(1, math.ceil(retry_after)) if retry_after else 2
        return BackendUnavailable("the service is at capacity; retry shortly", retry_after_s=retry)
    if isinstance(current, (RayActorError, DeploymentUnavailableError)) or _replica_died(current):
        return BackendUnavailable("a model replica stopped; retry shortly", retry_after_s=5)
    return exc


def _replica_died(exc: BaseException) -> bool:
    """A Serve error caused by a dead actor.

    Ray Serve raises ``RayServeException`` (``__cause__``: ``ActorDiedError``) when a
    replica whose response was passed on as an argument died before answering, e.g. a
    FrameExtractor replica killed while its frames were on the way to the model.
    """
    cause = exc.__cause__
    return isinstance(exc, RayServeException) and isinstance(cause, RayActorError)


def _plain(exc: ServeAppError) -> ServeAppError:
    """Rebuild a domain error without Ray's dual-class wrapper around it."""
    for cls in type(exc).__mro__:
        if issubclass(cls, ServeAppError) and not issubclass(cls, RayTaskError):
            plain = cls.__new__(cls)
            plain.__dict__.update(exc.__dict__)
            Exception.__init__(plain, exc.detail)
            return plain
    return exc
