"""Ingress: the FastAPI app as a Ray Serve deployment."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve_app.accounts.context import open_accounts
from serve_app.api.app import create_app
from serve_app.config import Settings
from serve_app.deployments.cluster_stats import DispatchCounter, RayClusterStats
from serve_app.deployments.serve_pipeline import ServePipeline
from serve_app.engines.profile import ModelProfile


@serve.deployment(
    ray_actor_options={"num_cpus": 0.25},
    max_ongoing_requests=64,
    max_queued_requests=256,
    graceful_shutdown_timeout_s=30,
)
@serve.ingress()
class Ingress:
    def __init__(
        self,
        frame_extractor: DeploymentHandle,
        model_handles: Mapping[str, DeploymentHandle],
        profiles: Mapping[str, ModelProfile],
        default_model: str,
        settings: Settings,
    ) -> None:
        models = {name: (profiles[name], handle) for name, handle in model_handles.items()}
        dispatched = DispatchCounter()
        pipeline = ServePipeline(frame_extractor, models, default_model, dispatched)
        app_name = serve.get_replica_context().app_name
        # Each replica connects and runs the (locked, idempotent) migrations itself.
        accounts = open_accounts(settings, stats_provider=RayClusterStats(app_name, dispatched))
        self._app = create_app(pipeline, settings, accounts)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._app
