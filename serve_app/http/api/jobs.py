"""Mount the video inference job routes: ``install_jobs(app, jobs)``, then
``install_workspace(app)`` last."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.http.api.routes import job_views, videoinfer, workspace
from serve_app.jobs.context import JobsContext


def install_jobs(app: FastAPI, jobs: JobsContext) -> None:
    """Store ``jobs`` on ``app.state``; include ``/videoinfer/`` and the job views.

    Needs the accounts (``install_accounts``) for authentication and rate limits.
    """
    app.state.jobs = jobs
    app.include_router(videoinfer.router)
    app.include_router(job_views.router)


def install_workspace(app: FastAPI) -> None:
    """The SDK's account discovery (``POST /``, ``/<workspace>[/<model id>]``).

    Include it after every other route: its paths match anything one or two
    segments deep, so they must be the last resort.
    """
    app.include_router(workspace.router)
