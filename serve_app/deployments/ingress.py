"""Ingress: the FastAPI app as a Ray Serve deployment."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from ray import serve
from ray.serve.config import BackpressureConfig
from ray.serve.handle import DeploymentHandle

from serve_app.accounts.context import open_accounts
from serve_app.api.app import create_app
from serve_app.config import Settings
from serve_app.deployments.cluster_stats import RayClusterStats
from serve_app.deployments.handles import DispatchCounter, HandleModel, HandleVision
from serve_app.engines.profile import ModelProfile
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.jobs.context import JobsContext
from serve_app.observability.logging import configure_logging
from serve_app.pipeline.describe import DescribePipeline
from serve_app.story.pipeline import StoryPipeline

#: ``Retry-After`` (seconds) of the proxy's 503 when the Ingress queue is full.
BACKPRESSURE_RETRY_S = 2


@serve.deployment(
    ray_actor_options={"num_cpus": 0.25},
    max_ongoing_requests=64,
    max_queued_requests=256,
    # Requests the proxy refuses once max_queued_requests wait: 503 with Retry-After,
    # like every other 503 of the service (Ray sends no Retry-After by default).
    backpressure_config=BackpressureConfig(status_code=503, retry_after_s=BACKPRESSURE_RETRY_S),
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
        story_writer: DeploymentHandle | None = None,
        story_profile: ModelProfile | None = None,
        catalog: FrameModelCatalog | None = None,
        job_runner: DeploymentHandle | None = None,
    ) -> None:
        configure_logging(json=settings.log_json)
        dispatched = DispatchCounter()
        vision = {
            name: (profiles[name], HandleVision(frame_extractor, handle, dispatched))
            for name, handle in model_handles.items()
        }
        pipeline = DescribePipeline(vision, default_model)
        story = None
        if story_writer is not None and story_profile is not None:
            writer = HandleModel(story_writer, dispatched)
            story = StoryPipeline(pipeline, story_profile, writer, settings.story.vision_model)
        app_name = serve.get_replica_context().app_name
        # Each replica connects and runs the (locked, idempotent) migrations itself.
        accounts = open_accounts(settings, stats_provider=RayClusterStats(app_name, dispatched))
        jobs = None
        if catalog is not None and job_runner is not None:
            runner = job_runner
            jobs = JobsContext.build(
                settings,
                accounts.database,
                catalog,
                profiles=profiles,
                default_model=default_model,
                wake=lambda: runner.wake.remote(),
            )
        # Serve's proxy echoes X-Request-ID (the same id) on every response itself.
        self._app = create_app(
            pipeline, settings, accounts, story=story, jobs=jobs, echo_request_id=False
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._app
