"""The service's Prometheus metrics, on top of Ray Serve's own.

Inside a Ray cluster every value is also recorded with :mod:`ray.util.metrics` (each
deployment installs that exporter, :func:`set_exporter`), which each node's metrics
agent exports for Prometheus (``ray start --metrics-export-port``;
KubeRay pods: port 8080, ``/metrics``). Ray prefixes the names with ``ray_`` and
counters get ``_total``: ``serve_app_generated_tokens`` is scraped as
``ray_serve_app_generated_tokens_total``. Ray adds its own tags (``NodeAddress``,
``WorkerId``, ...), so gauges of different replicas do not collide.

Without an exporter (tests, in-process pipelines) the same calls only update in-process
values, readable with :func:`snapshot`; nothing fails and nothing is exported. Every
recorder is cheap and never raises into request handling.

Visual tokens are an estimate from the frame geometry, following Qwen2.5-VL's
processor: one token per 28x28 pixels after the 2x2 patch merge, video frames merged
in temporal pairs, so ``images * (H/28)*(W/28)`` and ``ceil(frames/2) * (H/28)*(W/28)`` for
video. The engines' real ``input_tokens`` (text and visual) are recorded separately.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol, TypeVar

logger = logging.getLogger(__name__)

Kind = Literal["counter", "gauge", "histogram"]
TagValues = tuple[tuple[str, str], ...]


class TokenCounts(Protocol):
    """What :func:`observe_generation` reads from an engine's result."""

    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...


ResultT = TypeVar("ResultT", bound=TokenCounts)

#: Seconds; covers tiny CPU models (tens of ms) to long GPU video descriptions.
LATENCY_BOUNDARIES_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Exporter(Protocol):
    """Makes the exported twin of a metric (an object with ``inc``/``set``/``observe``
    taking ``(value, tags=...)``), or ``None`` to export nothing."""

    def __call__(self, metric: Metric) -> Any: ...


_exporter: Exporter | None = None


def set_exporter(exporter: Exporter | None) -> None:
    """Export every metric through ``exporter`` from now on (one per process)."""
    global _exporter
    _exporter = exporter


class Metric:
    """One metric: in-process values always, plus its exported twin where one is set.

    Histograms keep only count and sum in process; the buckets live in Ray.
    """

    def __init__(
        self,
        kind: Kind,
        name: str,
        description: str,
        tag_keys: Sequence[str] = (),
        boundaries: Sequence[float] = LATENCY_BOUNDARIES_S,
    ) -> None:
        self.kind = kind
        self.name = name
        self.description = description
        self.tag_keys = tuple(tag_keys)
        self.boundaries = list(boundaries)
        self._lock = threading.Lock()
        self._values: dict[TagValues, float] = {}
        self._counts: dict[TagValues, int] = {}
        self._twin: Any = None

    def _tags(self, tags: Mapping[str, object]) -> TagValues:
        return tuple((key, str(tags.get(key, ""))) for key in self.tag_keys)

    def _exported(self) -> Any:
        """The exported twin, created on first use once an exporter is set."""
        if self._twin is None and _exporter is not None:
            self._twin = _exporter(self)
        return self._twin

    def _export(self, method: str, value: float, tags: TagValues) -> None:
        try:
            metric = self._exported()
            if metric is not None:
                getattr(metric, method)(value, tags=dict(tags) or None)
        except Exception:  # metrics must never break a request
            logger.debug("recording %s failed", self.name, exc_info=True)

    def inc(self, value: float = 1.0, **tags: object) -> None:
        """Counters (and gauges): add ``value``; values <= 0 are ignored for counters."""
        if self.kind == "counter" and value <= 0:
            return
        key = self._tags(tags)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + value
            current = self._values[key]
        if self.kind == "gauge":
            self._export("set", current, key)
        else:
            self._export("inc", value, key)

    def set(self, value: float, **tags: object) -> None:
        """Gauges: set the current value."""
        key = self._tags(tags)
        with self._lock:
            self._values[key] = value
        self._export("set", value, key)

    def observe(self, value: float, **tags: object) -> None:
        """Histograms: record one observation."""
        key = self._tags(tags)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0) + 1
        self._export("observe", value, key)

    def value(self, **tags: object) -> float:
        """In-process value (a histogram's sum) for ``tags``; 0 when never recorded."""
        with self._lock:
            return self._values.get(self._tags(tags), 0.0)

    def count(self, **tags: object) -> int:
        """Histograms: number of observations for ``tags``."""
        with self._lock:
            return self._counts.get(self._tags(tags), 0)

    def reset(self) -> None:
        with self._lock:
            self._values.clear()
            self._counts.clear()


FRAMES_DECODED = Metric(
    "counter",
    "serve_app_frames_decoded",
    "Frames decoded, sampled and resized for a model: by FrameExtractor (kind image or "
    "video) and by JobRunner for batch jobs (kind job).",
    ("kind",),
)
VISUAL_TOKENS = Metric(
    "counter",
    "serve_app_visual_tokens",
    "Estimated visual tokens sent to a model (28x28 px per token, video frames paired).",
    ("model", "kind"),
)
INPUT_TOKENS = Metric(
    "counter",
    "serve_app_input_tokens",
    "Prompt tokens (text and visual) reported by the engine.",
    ("model",),
)
GENERATED_TOKENS = Metric(
    "counter",
    "serve_app_generated_tokens",
    "Tokens generated by the engine.",
    ("model",),
)
MODEL_LATENCY = Metric(
    "histogram",
    "serve_app_model_latency_seconds",
    "Time from a model replica (vision-language, story or detector) receiving a request "
    "to its answer, queueing included.",
    ("model",),
)
MODEL_ERRORS = Metric(
    "counter",
    "serve_app_model_errors",
    "Model requests that raised, by error type.",
    ("model", "error"),
)
IN_FLIGHT = Metric(
    "gauge",
    "serve_app_in_flight_requests",
    "Requests a replica is working on or holding (per replica; Ray adds WorkerId).",
    ("deployment", "model"),
)
QUEUE_DEPTH = Metric(
    "gauge",
    "serve_app_queue_depth",
    "Requests inside a model replica waiting for the engine (for a batch slot).",
    ("deployment", "model"),
)
CREDITS_CHARGED = Metric(
    "counter",
    "serve_app_credits_charged",
    "Credits captured from users' balances, by what was bought.",
    ("kind",),
)
JOBS = Metric(
    "gauge",
    "serve_app_jobs",
    "Batch jobs per state in the database, as last counted by a job runner (every "
    "runner replica reports the same totals: aggregate with max, not sum).",
    ("state",),
)
JOB_BACKLOG = Metric(
    "gauge",
    "serve_app_job_backlog",
    "Batch work not yet done, as last read by a job runner: unit=jobs (queued and "
    "running jobs) and unit=frames (their remaining frames, where known). Every runner "
    "replica reports the same totals: aggregate with max. JobRunner scales on it.",
    ("unit",),
)
JOB_TRANSITIONS = Metric(
    "counter",
    "serve_app_job_transitions",
    "Batch job state changes, by the state entered.",
    ("state",),
)

ALL_METRICS: tuple[Metric, ...] = (
    FRAMES_DECODED,
    VISUAL_TOKENS,
    INPUT_TOKENS,
    GENERATED_TOKENS,
    MODEL_LATENCY,
    MODEL_ERRORS,
    IN_FLIGHT,
    QUEUE_DEPTH,
    CREDITS_CHARGED,
    JOBS,
    JOB_BACKLOG,
    JOB_TRANSITIONS,
)


def record_frames_decoded(kind: str, frames: int) -> None:
    FRAMES_DECODED.inc(frames, kind=kind)


def record_generation(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    latency_s: float,
    visual_tokens: int = 0,
    kind: str = "",
) -> None:
    """One answered model request."""
    INPUT_TOKENS.inc(input_tokens, model=model)
    GENERATED_TOKENS.inc(output_tokens, model=model)
    VISUAL_TOKENS.inc(visual_tokens, model=model, kind=kind)
    MODEL_LATENCY.observe(latency_s, model=model)


def record_model_error(model: str, error: BaseException) -> None:
    MODEL_ERRORS.inc(1, model=model, error=type(error).__name__)


@contextmanager
def track_in_flight(deployment: str, model: str = "") -> Iterator[None]:
    """Count a request in :data:`IN_FLIGHT` while the block runs."""
    IN_FLIGHT.inc(1, deployment=deployment, model=model)
    try:
        yield
    finally:
        IN_FLIGHT.inc(-1, deployment=deployment, model=model)


@contextmanager
def observe_latency(deployment: str, model: str) -> Iterator[None]:
    """Time one model request into :data:`MODEL_LATENCY`, counting it in flight.

    Errors are counted in :data:`MODEL_ERRORS` (no latency is recorded) and re-raised.
    """
    start = time.perf_counter()
    with track_in_flight(deployment, model):
        try:
            yield
        except BaseException as exc:
            record_model_error(model, exc)
            raise
    MODEL_LATENCY.observe(time.perf_counter() - start, model=model)


async def observe_generation(
    call: Awaitable[ResultT],
    *,
    deployment: str,
    model: str,
    visual_tokens: int = 0,
    kind: str = "",
) -> ResultT:
    """Await one model request, counting it in flight, then record tokens and latency.

    Errors are counted in :data:`MODEL_ERRORS` and re-raised.
    """
    start = time.perf_counter()
    with track_in_flight(deployment, model):
        try:
            result = await call
        except BaseException as exc:
            record_model_error(model, exc)
            raise
    record_generation(
        model,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        latency_s=time.perf_counter() - start,
        visual_tokens=visual_tokens,
        kind=kind,
    )
    return result


def set_queue_depth(deployment: str, model: str, depth: int) -> None:
    QUEUE_DEPTH.set(max(0, depth), deployment=deployment, model=model)


def record_credits_charged(kind: str, credits: int) -> None:
    """Credits captured (after success) for an ``analysis``, ``story`` or ``job``."""
    CREDITS_CHARGED.inc(credits, kind=kind)


def record_job_transition(state: str, count: int = 1) -> None:
    """``count`` jobs entered ``state`` (a committed, guarded status change)."""
    JOB_TRANSITIONS.inc(count, state=state)


def set_job_counts(counts: Mapping[str, int]) -> None:
    """Jobs per state from one count of the job table (every state, zeros included)."""
    for state, count in counts.items():
        JOBS.set(count, state=state)


def set_job_backlog(jobs: int, frames: int) -> None:
    """The batch backlog: queued and running jobs, and their remaining frames."""
    JOB_BACKLOG.set(jobs, unit="jobs")
    JOB_BACKLOG.set(frames, unit="frames")


def snapshot() -> dict[str, dict[TagValues, float]]:
    """In-process values of every metric (histograms: sums), for tests and debugging."""
    result: dict[str, dict[TagValues, float]] = {}
    for metric in ALL_METRICS:
        with metric._lock:
            result[metric.name] = dict(metric._values)
    return result


def reset() -> None:
    """Clear in-process values (tests)."""
    for metric in ALL_METRICS:
        metric.reset()
