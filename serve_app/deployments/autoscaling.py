"""Backlog-driven autoscaling of batch work: a Ray Serve custom policy for JobRunner.

JobRunner replicas pull jobs from the database instead of receiving requests, so
Serve's default policy (ongoing requests per replica) sees no load there. Instead each
replica reports the backlog through Serve's ``record_autoscaling_stats`` hook
(:data:`BACKLOG_JOBS`, :data:`BACKLOG_FRAMES`: queued and running jobs and their
remaining frames, read from the database, the same totals from every replica) and how
many jobs it runs itself (:data:`RUNNING_JOBS`). :class:`BacklogPolicy`, named in the
deployment's ``autoscaling_config.policy``, turns them into a replica count::

    max(ceil(jobs / jobs_per_replica), ceil(frames / frames_per_replica), busy replicas)

Serve then applies ``min_replicas``/``max_replicas``, the up/down delays and
``downscale_to_zero_delay_s`` as for any policy.

Scale to zero: a JobRunner at zero replicas cannot report the backlog nor poll. Every
submit goes through the Ingress, which calls ``JobRunner.wake`` through its handle
(fire and forget); a request queued for a deployment at zero replicas is Serve's own
cold-start signal, so the runner comes back within the handle's metrics push, claims
the job, and reports the backlog again. ``initial_replicas: 1`` makes a (re)deploy look
at the database once, so jobs left queued by a previous deployment are found too. A job
put into the database by anything other than the Ingress waits for the next submit or
deploy; keep ``min_replicas: 1`` if that matters.

This module imports only the standard library: Serve pickles the policy class by value
and runs it in its controller, which need not import the service.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Metric names a JobRunner replica reports (``record_autoscaling_stats``).
BACKLOG_JOBS = "backlog_jobs"
BACKLOG_FRAMES = "backlog_frames"
RUNNING_JOBS = "running_jobs"

#: Import path of :class:`BacklogPolicy` for ``autoscaling_config.policy``.
POLICY_PATH = "serve_app.deployments.autoscaling:BacklogPolicy"


def backlog_stats(jobs: int, frames: int, running: int) -> dict[str, float]:
    """What a JobRunner replica returns from ``record_autoscaling_stats``."""
    return {BACKLOG_JOBS: float(jobs), BACKLOG_FRAMES: float(frames), RUNNING_JOBS: float(running)}


def _largest(values: Mapping[Any, float] | None) -> float:
    return max(values.values(), default=0.0) if values else 0.0


class BacklogPolicy:
    """Ray Serve custom autoscaling policy: replicas for the batch backlog.

    Until a replica has reported, the current target is kept (a starting replica is not
    stopped before it has read the database once).

    Args:
        jobs_per_replica: jobs one replica works on at once (``jobs.concurrent_jobs``).
        frames_per_replica: remaining frames one replica should own (0: jobs only).
    """

    def __init__(self, jobs_per_replica: float = 2, frames_per_replica: float = 0) -> None:
        if jobs_per_replica <= 0 or frames_per_replica < 0:
            raise ValueError("jobs_per_replica must be > 0 and frames_per_replica >= 0")
        self.jobs_per_replica = jobs_per_replica
        self.frames_per_replica = frames_per_replica

    def __call__(self, ctx: Any) -> tuple[int, dict[str, Any]]:
        """``ctx`` is Serve's ``AutoscalingContext``; returns (replicas, policy state)."""
        reported: Mapping[str, Mapping[Any, float]] = ctx.aggregated_metrics or {}
        if not reported.get(BACKLOG_JOBS):
            # No replica has reported yet (one is starting, e.g. initial_replicas=1 on
            # deploy or a cold start): keep the target rather than stop it unheard.
            return ctx.target_num_replicas, {}
        jobs = _largest(reported.get(BACKLOG_JOBS))
        frames = _largest(reported.get(BACKLOG_FRAMES))
        busy = sum(1 for n in (reported.get(RUNNING_JOBS) or {}).values() if n > 0)
        desired = max(math.ceil(jobs / self.jobs_per_replica), busy)
        if self.frames_per_replica:
            desired = max(desired, math.ceil(frames / self.frames_per_replica))
        return desired, {BACKLOG_JOBS: jobs, BACKLOG_FRAMES: frames}


def backlog_autoscaling_config(
    *,
    max_replicas: int,
    jobs_per_replica: float,
    frames_per_replica: float = 0,
    min_replicas: int = 0,
    initial_replicas: int = 1,
    **timing: float,
) -> dict[str, Any]:
    """An ``autoscaling_config`` (as in a Serve config file) using :class:`BacklogPolicy`.

    ``timing`` are further ``AutoscalingConfig`` fields (``upscale_delay_s``,
    ``downscale_delay_s``, ``downscale_to_zero_delay_s``, ``look_back_period_s``, ...).
    """
    return {
        "min_replicas": min_replicas,
        "initial_replicas": max(min_replicas, min(initial_replicas, max_replicas)),
        "max_replicas": max_replicas,
        **timing,
        "policy": {
            "policy_function": POLICY_PATH,
            "policy_kwargs": {
                "jobs_per_replica": jobs_per_replica,
                "frames_per_replica": frames_per_replica,
            },
        },
    }
