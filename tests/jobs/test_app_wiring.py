"""build_app wires the Detector and JobRunner deployments, or leaves them out."""

from __future__ import annotations

from ray.serve._private.build_app import build_app as build_deployments

from serve_app.app import AppArgs, build_app


def deployment_names(args: AppArgs) -> set[str]:
    return {d.name for d in build_deployments(build_app(args), name="wiring").deployments}


def test_jobs_are_on_by_default_and_can_be_turned_off() -> None:
    assert {"Detector", "JobRunner", "Ingress"} <= deployment_names(AppArgs(story_model=None))
    off = deployment_names(AppArgs(story_model=None, detectors_config=None))
    assert "Detector" not in off and "JobRunner" not in off and "Ingress" in off
