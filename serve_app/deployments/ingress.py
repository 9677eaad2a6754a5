"""Ingress: the FastAPI app as a Ray Serve deployment."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve_app.accounts.context import open_accounts
from serve_app.config import Settings
from serve_app.deployments.cluster_stats import RayClusterStats
from serve_app.deployments.handles import (
    DispatchCounter,
    HandleModel,
    HandleSpeech,
    HandleVision,
    job_runner_waker,
)
from serve_app.engines.profile import ModelProfile
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.http.app import create_app
from serve_app.jobs.context import JobsContext
from serve_app.net.proxy_trust import proxy_trust_mismatch
from serve_app.observability.logging import configure_logging
from serve_app.pipeline.describe import DescribePipeline
from serve_app.story.pipeline import StoryPipeline

logger = logging.getLogger("serve_app.deployments.ingress")


def serve_listen_host() -> str | None:
    """The host Serve's HTTP proxies bind (``http_options.host``); None if unknown."""
    try:
        from ray.serve.context import _get_global_client

        client = _get_global_client()
        host = client.http_config.host if client is not None else None
    except Exception:  # an unknown bind is treated as public (fail closed)
        return None
    return str(host) if host else None


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
        audio_transcriber: DeploymentHandle | None = None,
    ) -> None:
        settings = settings.for_this_node()
        configure_logging(json=settings.log_json)
        # The proxy and this replica inherit the environment Ray was started with.
        mismatch = proxy_trust_mismatch(settings.http.trusted_proxies)
        if mismatch is not None:
            logger.warning(mismatch)
        dispatched = DispatchCounter()
        #: Speech (``settings.speech`` on): a SpeechBackend for the analyses' fusion.
        self.speech = (
            None if audio_transcriber is None else HandleSpeech(audio_transcriber, dispatched)
        )
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
                wake=job_runner_waker(runner),
            )
        # Serve's proxy echoes X-Request-ID (the same id) on every response itself.
        self._app = create_app(
            pipeline,
            settings,
            accounts,
            story=story,
            jobs=jobs,
            echo_request_id=False,
            listen_host=serve_listen_host(),
            speech=self.speech,
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._app
