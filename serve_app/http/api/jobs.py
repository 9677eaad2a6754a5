"""Mount the video job routes: ``install_jobs(app, jobs, summary_settings)``, then
``install_workspace(app)`` last."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.http.api.routes import job_views, summaries, videoinfer, workspace
from serve_app.jobs.context import JobsContext
from serve_app.summaries.service import Summaries
from serve_app.summaries.settings import SummarySettings


def install_jobs(
    app: FastAPI, jobs: JobsContext, summary_settings: SummarySettings, speech: bool = False
) -> None:
    """Store ``jobs`` on ``app.state``; include ``/videoinfer/``, the job views and the
    long-video summaries (``/api/video_summaries``), which run on the same job runner
    (``speech``: whether it transcribes their audio).

    Needs the accounts (``install_accounts``) for authentication and rate limits.
    """
    app.state.jobs = jobs
    app.state.summaries = Summaries(jobs, summary_settings, speech)
    app.include_router(videoinfer.router)
    app.include_router(job_views.router)
    app.include_router(summaries.router)


def install_workspace(app: FastAPI) -> None:
    """The SDK's account discovery (``POST /``, ``/<workspace>[/<model id>]``).

    Include it after every other route: its paths match anything one or two
    segments deep, so they must be the last resort.
    """
    app.include_router(workspace.router)
