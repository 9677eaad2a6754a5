"""The JobRunner's backlog policy, called as Serve's controller calls it (no cluster)."""

from __future__ import annotations

import pytest
from ray.serve._private.common import DeploymentID, ReplicaID
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from serve_app.deployments.autoscaling import (
    POLICY_PATH,
    BacklogPolicy,
    backlog_autoscaling_config,
    backlog_stats,
)

DEPLOYMENT = DeploymentID(name="JobRunner", app_name="app")


def context(*reports: dict[str, float], current: int | None = None) -> AutoscalingContext:
    """Serve's context for a deployment whose replicas reported ``reports``."""
    replicas = [ReplicaID(f"r{i}", DEPLOYMENT) for i in range(len(reports))]
    metrics: dict[str, dict[ReplicaID, float]] = {}
    for replica, report in zip(replicas, reports, strict=True):
        for name, value in report.items():
            metrics.setdefault(name, {})[replica] = value
    n = len(replicas) if current is None else current
    return AutoscalingContext(
        deployment_id=DEPLOYMENT,
        deployment_name=DEPLOYMENT.name,
        app_name=DEPLOYMENT.app_name,
        current_num_replicas=n,
        target_num_replicas=n,
        running_replicas=replicas,
        total_num_requests=0.0,
        total_queued_requests=0.0,
        aggregated_metrics=metrics,
        raw_metrics={},
        capacity_adjusted_min_replicas=0,
        capacity_adjusted_max_replicas=8,
        policy_state={},
        last_scale_up_time=None,
        last_scale_down_time=None,
        current_time=0.0,
        config=AutoscalingConfig(min_replicas=0, max_replicas=8),
    )


def test_replicas_follow_queued_jobs_and_frames() -> None:
    policy = BacklogPolicy(jobs_per_replica=2, frames_per_replica=100)
    # Every replica reads the same database: the totals are not added up.
    same = backlog_stats(jobs=5, frames=120, running=2)
    assert policy(context(same, same))[0] == 3  # ceil(5 / 2)
    assert policy(context(backlog_stats(jobs=1, frames=450, running=1)))[0] == 5  # frames
    assert policy(context(backlog_stats(jobs=0, frames=0, running=0)))[0] == 0


def test_replicas_running_jobs_are_kept_while_the_backlog_shrinks() -> None:
    policy = BacklogPolicy(jobs_per_replica=4)
    busy, idle = backlog_stats(2, 0, running=1), backlog_stats(2, 0, running=0)
    assert policy(context(busy, busy, idle))[0] == 2  # 2 jobs fit 1 replica; 2 are busy


def test_without_reports_the_target_is_kept() -> None:
    # At zero replicas Serve's cold start (a queued wake() call) brings one back.
    assert BacklogPolicy()(context(current=0))[0] == 0
    # A replica starting (initial_replicas=1, or a cold start) is not stopped unheard.
    assert BacklogPolicy()(context(current=1))[0] == 1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        BacklogPolicy(jobs_per_replica=0)


def test_the_config_names_the_policy_and_validates() -> None:
    raw = backlog_autoscaling_config(
        max_replicas=3, jobs_per_replica=2, frames_per_replica=500, downscale_delay_s=30
    )
    config = AutoscalingConfig(**raw)
    assert (config.min_replicas, config.initial_replicas, config.max_replicas) == (0, 1, 3)
    assert config.policy.policy_function == POLICY_PATH
    policy = config.policy.get_policy()(**config.policy.policy_kwargs)
    assert policy(context(backlog_stats(4, 0, 0)))[0] == 2


def test_serve_config_yaml_scales_the_job_runner_on_the_backlog() -> None:
    from pathlib import Path

    import yaml
    from ray.serve.schema import ServeDeploySchema

    shipped = yaml.safe_load((Path(__file__).parents[2] / "serve_config.yaml").read_text())
    [app] = ServeDeploySchema.model_validate(shipped).applications
    [runner] = [d for d in app.deployments if d.name == "JobRunner"]
    config = AutoscalingConfig(**runner.autoscaling_config)
    assert config.min_replicas == 0 and config.initial_replicas == 1
    assert config.policy.policy_function == POLICY_PATH
    policy = config.policy.get_policy()(**config.policy.policy_kwargs)
    assert policy(context(backlog_stats(jobs=7, frames=0, running=0)))[0] == 4
