"""Export the service's metrics through Ray (``ray.util.metrics``) from inside replicas."""

from __future__ import annotations

from typing import Any

import ray
from ray.util import metrics as ray_metrics

from serve_app.observability import metrics


def ray_metric(metric: metrics.Metric) -> Any:
    """The ``ray.util.metrics`` twin of ``metric`` (an :class:`~metrics.Exporter`).

    ``None`` in a process that has not joined Ray (a class constructed in a test).
    """
    if not ray.is_initialized():
        return None
    keys = metric.tag_keys or None
    if metric.kind == "counter":
        return ray_metrics.Counter(metric.name, metric.description, tag_keys=keys)
    if metric.kind == "gauge":
        return ray_metrics.Gauge(metric.name, metric.description, tag_keys=keys)
    return ray_metrics.Histogram(
        metric.name, metric.description, boundaries=metric.boundaries, tag_keys=keys
    )


def export_metrics_through_ray() -> None:
    """This process's metrics go to Ray's metrics agent (Prometheus) from now on."""
    metrics.set_exporter(ray_metric)
