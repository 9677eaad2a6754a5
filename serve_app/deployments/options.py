"""Each deployment's default Ray Serve options, and the one place they are applied.

The defaults are the embedded CPU profile's (fractional CPUs, small concurrency).
:func:`deployment` merges them with the caller's overrides (the app builder's
``options``) the way Ray Serve LLM's deployment builders do; a Serve config file's
``deployments:`` section still overrides both at deploy time (``serve_config.yaml``
for GPU clusters). The deployment classes themselves are plain classes, constructed
directly in tests.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from ray import serve
from ray.serve import Deployment
from ray.serve.config import BackpressureConfig

from serve_app.deployments.ray_metrics import export_metrics_through_ray

#: ``Retry-After`` (seconds) of the proxy's 503 when the Ingress queue is full.
BACKPRESSURE_RETRY_S = 2

_MODEL_REPLICA: dict[str, Any] = {
    "ray_actor_options": {"num_cpus": 0.25},
    "max_ongoing_requests": 16,
    "max_queued_requests": 128,
    "health_check_period_s": 10,
    "health_check_timeout_s": 30,
    "graceful_shutdown_timeout_s": 60,
}

#: Default options per deployment class name.
DEFAULT_OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "Ingress": {
        "ray_actor_options": {"num_cpus": 0.25},
        "max_ongoing_requests": 64,
        "max_queued_requests": 256,
        # Requests the proxy refuses once max_queued_requests wait: 503 with
        # Retry-After, like every other 503 (Ray sends no Retry-After by default).
        "backpressure_config": BackpressureConfig(
            status_code=503, retry_after_s=BACKPRESSURE_RETRY_S
        ),
        "graceful_shutdown_timeout_s": 30,
    },
    "FrameExtractor": {
        "ray_actor_options": {"num_cpus": 0.25},
        "max_ongoing_requests": 4,
        "max_queued_requests": 64,
        "health_check_period_s": 10,
    },
    "VisionLanguageModel": _MODEL_REPLICA,
    "StoryWriter": _MODEL_REPLICA,
    "Detector": {
        "ray_actor_options": {"num_cpus": 0.25},
        "max_ongoing_requests": 4,
        "max_queued_requests": 256,
        "health_check_period_s": 10,
    },
    # Speech on CPU replicas (pocketsphinx); serve_config.yaml gives Whisper a GPU.
    "AudioTranscriber": {
        "ray_actor_options": {"num_cpus": 0.25},
        "max_ongoing_requests": 4,
        "max_queued_requests": 64,
        "health_check_period_s": 10,
        "graceful_shutdown_timeout_s": 30,
    },
    "JobRunner": {
        "ray_actor_options": {"num_cpus": 0.25},
        "max_ongoing_requests": 16,
        "health_check_period_s": 10,
        "graceful_shutdown_timeout_s": 20,
    },
}


def merged_options(cls: type, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``DEFAULT_OPTIONS[cls]`` with ``overrides`` on top (``ray_actor_options`` merged by key)."""
    merged = dict(DEFAULT_OPTIONS[cls.__name__])
    for key, value in (overrides or {}).items():
        if key == "ray_actor_options" and isinstance(value, Mapping):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


def deployment(cls: type, name: str, overrides: Mapping[str, Any] | None = None) -> Deployment:
    """``cls`` as a Serve deployment called ``name``, with the merged options.

    The served class is a subclass of ``cls`` that exports metrics through Ray before
    ``cls.__init__`` runs, and, where ``cls`` has ``shutdown``, has the ``__del__`` that
    Serve calls on graceful shutdown await it. ``cls`` itself has neither, so objects
    made directly in tests record metrics in process and are shut down explicitly.
    """
    wrapped = serve.deployment(served_class(cls))
    if not isinstance(wrapped, Deployment):  # serve.deployment is typed loosely
        raise TypeError(f"{cls!r} did not become a Ray Serve deployment")
    return wrapped.options(name=name, **merged_options(cls, overrides))


def served_class(cls: type) -> type:
    """The subclass of ``cls`` that Serve runs (see :func:`deployment`)."""
    members: dict[str, Any] = {"__module__": cls.__module__}
    init: Any = cls.__init__  # type: ignore[misc]  # the class's own, not an instance's
    if inspect.iscoroutinefunction(init):

        @functools.wraps(init)
        async def async_init(self: Any, *args: Any, **kwargs: Any) -> None:
            export_metrics_through_ray()
            await init(self, *args, **kwargs)

        members["__init__"] = async_init
    else:

        @functools.wraps(init)
        def sync_init(self: Any, *args: Any, **kwargs: Any) -> None:
            export_metrics_through_ray()
            init(self, *args, **kwargs)

        members["__init__"] = sync_init
    if hasattr(cls, "shutdown"):

        async def __del__(self: Any) -> None:  # Ray Serve's graceful-shutdown hook
            await self.shutdown()

        members["__del__"] = __del__
    return type(cls.__name__, (cls,), members)
