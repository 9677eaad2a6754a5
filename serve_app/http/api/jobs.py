"""Mount the video inference job routes: ``install_jobs(app, jobs)``."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.http.api.routes import job_views, videoinfer
from serve_app.jobs.context import JobsContext


def install_jobs(app: FastAPI, jobs: JobsContext) -> None:
    """Store ``jobs`` on ``app.state``; include ``/videoinfer/`` and the job views.

    Needs the accounts (``install_accounts``) for authentication and rate limits.
    """
    app.state.jobs = jobs
    app.include_router(videoinfer.router)
    app.include_router(job_views.router)
