"""The FastAPI app factory."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app import __version__
from serve_app.accounts.anonymous import AnonymousStory
from serve_app.accounts.context import AccountsContext
from serve_app.config import Settings
from serve_app.http.admission import AdmissionMiddleware
from serve_app.http.api.accounts import install_accounts
from serve_app.http.api.jobs import install_jobs, install_workspace
from serve_app.http.api.routes import analyze, capabilities, health, openai
from serve_app.http.api.routes import story as story_routes
from serve_app.http.context import AppContext
from serve_app.http.cors import install_cors
from serve_app.http.errors import install_error_handlers
from serve_app.http.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from serve_app.http.web.install import install_web
from serve_app.jobs.context import JobsContext
from serve_app.pipeline.protocol import Pipeline
from serve_app.speech.backend import SpeechBackend
from serve_app.storage.spool import renew_held, sweep_orphans
from serve_app.story.pipeline import StoryPipeline


def create_app(
    pipeline: Pipeline,
    settings: Settings,
    accounts: AccountsContext,
    story: StoryPipeline | None = None,
    jobs: JobsContext | None = None,
    echo_request_id: bool = True,
    listen_host: str | None = None,
    speech: SpeechBackend | None = None,
) -> FastAPI:
    """Build the HTTP app around ``pipeline`` (Ray handles or in-process engines).

    ``accounts`` comes from :func:`serve_app.accounts.context.open_accounts`. With a
    ``story`` pipeline the Story API (``POST /analyze/``) is mounted too, and with
    ``jobs`` the batch video inference routes (``/videoinfer/``). The web UI (``/ui/``)
    is always mounted and shows what is. Behind Ray Serve
    pass ``echo_request_id=False``: the proxy adds ``X-Request-ID`` to responses itself.
    ``listen_host`` is the address the HTTP server binds; only a loopback one allows
    anonymous local stories (:mod:`serve_app.accounts.anonymous`). ``speech`` serves
    the analyses' ``audio=transcribe`` (without it that option answers 400).
    """
    app = FastAPI(
        title="serve_app",
        version=__version__,
        description=(
            "Image and video understanding on Ray Serve: upload media, get descriptions "
            "from a vision-language model (Qwen2.5-VL)."
        ),
        # Served offline by install_web (FastAPI's own pages load a CDN).
        docs_url=None,
        redoc_url=None,
    )
    watch_spool(accounts, settings)
    app.state.context = AppContext(pipeline=pipeline, settings=settings, story=story, speech=speech)
    install_error_handlers(app)
    install_accounts(app, accounts)
    app.state.anonymous_story = AnonymousStory(
        accounts.settings, listen_host, trusted_proxies=tuple(settings.http.trusted_proxies)
    )
    app.include_router(health.router)
    app.include_router(analyze.router)
    app.include_router(capabilities.router)
    app.include_router(openai.router)
    if story is not None:
        app.include_router(story_routes.router)
    if jobs is not None:
        install_jobs(app, jobs, settings.summaries, settings.speech.enabled)
    install_web(app)
    if jobs is not None:
        install_workspace(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AdmissionMiddleware, accounts=accounts, settings=settings.admission)
    # Outside admission and auth: preflights are answered before either, and their
    # refusals (401, 429, 503) still carry CORS headers the calling page can read.
    install_cors(app, settings.http.cors_allow_origins)
    app.add_middleware(RequestIdMiddleware, echo=echo_request_id)
    return app


def watch_spool(accounts: AccountsContext, settings: Settings) -> None:
    """Lease this process's spooled uploads; remove orphans now and on every beat."""
    spool_dir, lease_s = settings.spool_dir, accounts.leases.lease_s

    def beat() -> None:
        renew_held()
        sweep_orphans(spool_dir, lease_s)

    sweep_orphans(spool_dir, lease_s)
    accounts.leases.add_hook(beat)
